"""What a run folder knows about its run (config.yaml), and the checks of `--resume` against it.

config.yaml:
  options:  the options as the user gave them (flags over the config file)
  resolved: every option's value in the run (the plan's and the loss's choices included)
  plan:     the hyper-parameters the plan chose (batch, epochs, learning rates...)
  data:     train/test (and unlabelled) paths with their size and sha256, and the column options
"""

from __future__ import annotations

from pathlib import Path

from contrastkit.errors import ConfigError
from contrastkit.io.run_folder import fingerprint, read_saved_config
from contrastkit.run.unlabelled import unlabelled_config

# Options that may change between a run and its resumption: how it runs, not what it trains.
RUNTIME_OPTIONS = ("quiet", "device")


def run_config(refiner, data, train, test, read, options: dict) -> dict:
    """config.yaml's content for this run: what it trains with and on (how it runs, quiet or
    on which device, is left out: a resumed run may change it)."""
    plan = refiner.plan(*data.fit_data(), X_unlabelled=data.X_unlabelled)
    resolved = refiner.resolved_options(plan)
    unlabelled, unlabelled_options = unlabelled_config(
        refiner, data.unlabelled_source, plan, data.kind
    )
    resolved.update(unlabelled_options)
    return {
        "options": {k: v for k, v in options.items() if k not in RUNTIME_OPTIONS},
        "resolved": {k: v for k, v in resolved.items() if k not in RUNTIME_OPTIONS},
        "plan": plan.as_dict(),
        "data": {
            "train": {"path": str(train), **fingerprint(train)},
            "test": None if test is None else {"path": str(test), **fingerprint(test)},
            "unlabelled": unlabelled,
            "columns": {k: v for k, v in read.columns().items() if v is not None},
            "check_rows": 0 if data.check_rows is None else len(data.check_rows),
        },
    }


def options_for_resume(run: Path, given: dict) -> dict:
    """The resumed run's own options; an option given now that contradicts them is refused."""
    saved = read_saved_config(run) or {}
    if "options" not in saved:  # a config.yaml of an earlier version: the options themselves
        saved = {"options": saved, "resolved": saved}
    resolved = saved.get("resolved") or {}
    for key, value in given.items():
        if key in RUNTIME_OPTIONS or value is None or key not in resolved:
            continue
        if resolved[key] != value:
            raise ConfigError(
                f"--{key.replace('_', '-')} {value} differs from the resumed run's "
                f"{resolved[key]}; resume with the same options, or start a new run folder"
            )
    runtime = {k: given[k] for k in RUNTIME_OPTIONS if given.get(k) is not None}
    return {**(saved.get("options") or {}), **runtime}


def check_resume(saved: dict | None, config: dict, given: dict) -> None:
    """Refuse to resume when the data or what the defaults chose differ from the saved run's."""
    if not saved or "data" not in saved:
        return  # an earlier version's run: no fingerprint to compare
    for split in ("train", "test", "unlabelled"):
        old, new = saved["data"].get(split), config["data"].get(split)
        if (old and old.get("sha256")) != (new and new.get("sha256")):
            raise ConfigError(
                f"the {split} data {_describe(new)} is not the data this run was started with "
                f"({_describe(old)}); resume with the same --{split} file, or start a new run folder"
            )
    if saved["data"].get("columns", {}) != config["data"]["columns"]:
        raise ConfigError(
            f"the column options {config['data']['columns']} differ from the resumed run's "
            f"{saved['data'].get('columns', {})}; resume with the same ones"
        )
    old_check, new_check = saved["data"].get("check_rows", 0), config["data"]["check_rows"]
    if old_check != new_check:
        raise ConfigError(
            f"this run would hold {new_check} training rows out for the check but the resumed "
            f"run held {old_check}; resume with the same --check/--no-check"
        )
    old_resolved, new_resolved = saved.get("resolved", {}), config["resolved"]
    for key, value in new_resolved.items():
        if key not in RUNTIME_OPTIONS and key in old_resolved and old_resolved[key] != value:
            raise ConfigError(
                f"{key} would be {value} now but the resumed run used {old_resolved[key]}; "
                "resume with the contrastkit version and options that started it"
            )


def _describe(data: dict | None) -> str:
    if not data:
        return "none"
    return f"{data['path']}, {data['bytes']} bytes, sha256 {data['sha256'][:12]}"
