"""Banking77 runs for `benchmarks.quality`: frozen all-MiniLM-L6-v2, adapter and finetune refiners
with the library's defaults, scored on test.csv; every run appended to a JSONL file as it ends.

A run is keyed by (split, mode, config, seed, quick); with `reuse`, a key already in the JSONL
file is read back instead of trained again, so a crashed benchmark resumes where it stopped.
"""

from __future__ import annotations

import datetime
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "banking77"
SPLITS = ("train_5", "train_10", "train")
SPLIT_LABELS = {"train_5": "5-shot", "train_10": "10-shot", "train": "full"}
QUICK_CLASSES = 8  # --quick keeps this many classes (the first in sorted order)
QUICK_EPOCHS = 2  # --quick trains this many epochs: it proves the code runs, nothing more
DIAGNOSTIC_BATCH = 512  # the adapter's default batch size
DIAGNOSTIC_VIEW_DROPOUT = 0.3  # the adapter's own input dropout, used to make the two views
# Seconds per finetune step (64 texts, MiniLM forward + backward, 2 threads) on the 2-core CPU
# this benchmark is written for: the time budget's guess before a finetune run has been timed.
# 10-shot runs of 520 steps took 1.07 s a step on one thread beside another job since batches
# run in similar-length chunks (2.6 s before, when the prior was 1.4), i.e. ~0.55 s alone.
FINETUNE_STEP_S_PRIOR = 0.6

# The tilt supcon gets when compared with plain supcon: hscl's documented default beta = 1
# (LOSSES.md). Both weigh a negative by e^{h s / t} on top of its e^{s / t}, so h = 1 is the same
# relative tilt at either loss's temperature (as benchmarks/fashion_mnist.py uses).
HARDNESS = 1.0
# name -> (method, loss options). Every other setting is the library's default; "supcon" is the
# library's default refiner (the adapter's plan picks its hardness), "supcon (hardness=0)" is
# plain SupCon whatever the data.
CONFIGS: dict[str, tuple[str, dict]] = {
    "ce": ("ce", {}),
    "supcon": ("supcon", {}),
    "supcon (hardness=0)": ("supcon", {"hardness": 0.0}),
    f"supcon (hardness={HARDNESS:g})": ("supcon", {"hardness": HARDNESS}),
    "hscl (beta=0, SCL)": ("hscl", {"beta": 0.0}),
    "hscl (beta=0.5)": ("hscl", {"beta": 0.5}),
    "hscl (beta=1)": ("hscl", {"beta": 1.0}),
    "hscl (beta=2)": ("hscl", {"beta": 2.0}),
    "triplet (batch_hard)": ("triplet", {"mining": "batch_hard"}),
    "logistic_pair": ("logistic_pair", {}),
}
FINETUNE_CONFIGS = ("supcon", "ce", "hscl (beta=1)")  # the order they run in: supcon first


# The H-SCL claim's two main pairs: three seeds on the full train split even in the default
# profile (the claim is judged against the seed spread); the other configs get one seed there.
CLAIM_CONFIGS = (
    "supcon",
    "supcon (hardness=0)",
    f"supcon (hardness={HARDNESS:g})",
    "hscl (beta=0, SCL)",
    "hscl (beta=1)",
)


def while_budget_lasts(spec: RunSpec, profile: str) -> bool:
    """Runs the default profile starts only while its 60-minute budget lasts (after everything
    else but finetune): the full-train adapter configurations outside the H-SCL claim, ce
    excepted (the baseline every row is compared with)."""
    return (
        profile == "default"
        and spec.mode == "adapter"
        and spec.split == "train"
        and spec.config not in (*CLAIM_CONFIGS, "ce")
    )


def _adapter_seeds(profile: str, split: str, config: str) -> list[int]:
    if profile == "quick":
        return [0]
    if profile == "default" and split == "train" and config not in CLAIM_CONFIGS:
        return [0]
    return [0, 1, 2]


@dataclass(frozen=True)
class RunSpec:
    split: str
    mode: str  # "frozen", "adapter" or "finetune"
    config: str  # a key of CONFIGS ("frozen" for the frozen model)
    seed: int

    @property
    def label(self) -> str:
        return f"{self.mode} {self.config} on {self.split}, seed {self.seed}"


def plan(profile: str) -> tuple[list[RunSpec], list[RunSpec]]:
    """(adapter and frozen runs, finetune runs in priority order) of a profile:

    - quick: every adapter config and split with seed 0; finetune supcon on the 5-shot split.
    - default: adapter 5- and 10-shot with seeds 0-2, full train seeds 0-2 for CLAIM_CONFIGS and
      seed 0 for the others (all but ce only while the budget lasts: `while_budget_lasts`);
      finetune 5- and 10-shot with supcon, ce and hscl (beta=1), seed 0 (run while the time
      budget lasts).
    - full: adapter everywhere with seeds 0-2; finetune every config with seeds 0-2 on the 5- and
      10-shot splits, and supcon, ce and hscl (beta=1) with seed 0 on the full train split.
    """
    if profile not in ("quick", "default", "full"):
        raise ValueError(f"profile must be quick, default or full, got {profile!r}")
    frozen = [RunSpec(split, "frozen", "frozen", 0) for split in SPLITS]
    adapter = [
        RunSpec(split, "adapter", config, seed)
        for split in SPLITS
        for config in CONFIGS
        for seed in _adapter_seeds(profile, split, config)
    ]
    if profile == "quick":
        finetune = [RunSpec("train_5", "finetune", "supcon", 0)]
    elif profile == "default":
        finetune = [RunSpec("train_5", "finetune", "supcon", 0)]
        finetune += [RunSpec("train_10", "finetune", c, 0) for c in FINETUNE_CONFIGS]
        finetune += [RunSpec("train_5", "finetune", c, 0) for c in FINETUNE_CONFIGS[1:]]
    else:
        ordered = [*FINETUNE_CONFIGS, *(c for c in CONFIGS if c not in FINETUNE_CONFIGS)]
        finetune = [
            RunSpec(split, "finetune", c, seed)
            for seed in (0, 1, 2)
            for split in ("train_5", "train_10")
            for c in ordered
        ]
        finetune += [RunSpec("train", "finetune", c, 0) for c in FINETUNE_CONFIGS]
    return frozen + adapter, finetune


# ----------------------------------------------------------------------------- data


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray


def load_banking77(quick: bool = False, data_dir: Path = DATA) -> dict[str, Split]:
    """Every training split and "test"; --quick keeps QUICK_CLASSES classes and 20 test rows
    of each. Raises FileNotFoundError naming the missing file."""
    import pandas as pd

    out = {}
    for name in (*SPLITS, "test"):
        path = Path(data_dir) / f"{name}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: Banking77 belongs in ../shared/data/")
        frame = pd.read_csv(path)
        for column in ("text", "category"):
            if column not in frame.columns:
                raise ValueError(f"{path} has no {column!r} column; it needs text and category")
        out[name] = frame
    if quick:
        keep = sorted(out["train"]["category"].unique())[:QUICK_CLASSES]
        out = {k: f[f["category"].isin(keep)] for k, f in out.items()}
        out["test"] = out["test"].groupby("category").head(20)
    return {
        k: Split(f["text"].astype(str).tolist(), f["category"].to_numpy()) for k, f in out.items()
    }


# ----------------------------------------------------------------------------- the JSONL store


def run_key(record: dict) -> tuple:
    return (record["split"], record["mode"], record["config"], record["seed"], record["quick"])


def spec_key(spec: RunSpec, quick: bool) -> tuple:
    """`run_key` of the record `spec` gives."""
    return (spec.split, spec.mode, spec.config, spec.seed, quick)


def read_records(path: Path) -> list[dict]:
    """Every record of a JSONL file (none when it is missing); a torn last line is skipped."""
    if not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a run killed mid-write leaves a partial line: that run is redone
    return records


def append_record(path: Path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


# ----------------------------------------------------------------------------- scoring


def score(train_Z, train_y, test_Z, test_y, seed: int) -> dict[str, float]:
    from contrastkit import evaluate

    return evaluate(train_Z, train_y, test_Z, test_y, seed=seed)


def diagnostics(test_Z: np.ndarray, test_y: np.ndarray, seed: int = 0) -> dict:
    """The H-SCL paper's UCL, H-UCL, SCL and H-SCL on test embeddings (library defaults:
    temperature 0.5, tau_plus 0.1, beta 1), averaged over seeded batches of DIAGNOSTIC_BATCH rows.

    Two views of a row: its embedding with DIAGNOSTIC_VIEW_DROPOUT feature dropout (the
    adapter's own augmentation), twice with different masks, each renormalised. Returns the
    means, the number of batches and in how many of them H-SCL <= H-UCL held.
    """
    import torch
    import torch.nn.functional as F

    from contrastkit.losses.diagnostics import hard_negative_diagnostics

    rng = np.random.default_rng([seed, 77])
    order = rng.permutation(len(test_Z))
    batch = min(DIAGNOSTIC_BATCH, len(order))
    generator = torch.Generator().manual_seed(seed)
    z = torch.from_numpy(np.ascontiguousarray(test_Z, dtype=np.float32))
    _, codes = np.unique(test_y, return_inverse=True)
    labels = torch.from_numpy(codes.astype(np.int64))
    keep = 1 - DIAGNOSTIC_VIEW_DROPOUT
    sums = {"ucl": 0.0, "hucl": 0.0, "scl": 0.0, "hscl": 0.0}
    held = batches = 0
    for start in range(0, len(order) - batch + 1, batch):
        idx = torch.from_numpy(order[start : start + batch])
        views = [
            F.normalize(z[idx] * (torch.rand(z[idx].shape, generator=generator) < keep), dim=1)
            for _ in range(2)
        ]
        values = hard_negative_diagnostics(views[0], views[1], labels[idx])
        for k in sums:
            sums[k] += float(values[k])
        held += bool(values["hscl_le_hucl"])
        batches += 1
    return {**{k: v / batches for k, v in sums.items()}, "batches": batches, "held": held}


# ----------------------------------------------------------------------------- running


def encode_frozen(texts: list[str]) -> tuple[np.ndarray, float]:
    """Frozen all-MiniLM-L6-v2 embeddings (through the library's on-disk cache) and seconds."""
    import torch

    from contrastkit.models.backbones import FrozenTextBase

    started = time.perf_counter()
    Z = FrozenTextBase(None, torch.device("cpu")).encode(texts)
    return Z, time.perf_counter() - started


def run_one(
    spec: RunSpec, data: dict[str, Split], quick: bool, encode_s: dict, concurrent: int = 1
) -> dict:
    """Train (unless frozen) and score one run; returns its JSONL record. `encode_s`: seconds
    the frozen encoding of each split took, filled by the frozen runs and read by the adapter
    ones (their end-to-end time includes encoding). `concurrent`: runs training at the same
    time (recorded with the torch threads this one had)."""
    import torch

    train, test = data[spec.split], data["test"]
    record = {
        "split": spec.split,
        "mode": spec.mode,
        "config": spec.config,
        "seed": spec.seed,
        "quick": quick,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "threads": torch.get_num_threads(),
        "concurrent": concurrent,
    }
    if spec.mode == "frozen":
        Z_train, t_train = encode_frozen(train.texts)
        Z_test, t_test = encode_frozen(test.texts)
        encode_s[spec.split] = t_train + t_test
        started = time.perf_counter()
        metrics = score(Z_train, train.labels, Z_test, test.labels, spec.seed)
        record.update(encode_s=t_train + t_test, eval_s=time.perf_counter() - started)
        test_Z = Z_test
    else:
        from contrastkit import Refiner

        method, options = CONFIGS[spec.config]
        extra = {"epochs": QUICK_EPOCHS} if quick else {}
        started = time.perf_counter()
        refiner = Refiner(
            mode=spec.mode, method=method, seed=spec.seed, quiet=True, device="cpu",
            **options, **extra,
        )  # fmt: skip
        refiner.fit(train.texts, train.labels)
        Z_train, test_Z = refiner.transform(train.texts), refiner.transform(test.texts)
        after_fit = time.perf_counter()
        metrics = score(Z_train, train.labels, test_Z, test.labels, spec.seed)
        done = time.perf_counter()
        plan_ = refiner.plan_.as_dict()
        steps = plan_["epochs"] * math.ceil(len(train.texts) / plan_["batch_size"])
        record.update(
            method=method,
            options=options,
            plan=plan_,
            steps=steps,
            epochs_run=len(refiner.history_ or []) or None,
            fit_s=refiner.fit_seconds_,
            transform_s=after_fit - started - refiner.fit_seconds_,
            eval_s=done - after_fit,
        )
        if spec.mode == "adapter":
            # a user's run from texts: encode (cached from then on), fit, embed, evaluate
            encoded = encode_s.get(spec.split)  # None when the frozen run was not made here
            record["end_to_end_s"] = None if encoded is None else encoded + done - started
    record["metrics"] = metrics
    record["diagnostics"] = diagnostics(test_Z, test.labels, spec.seed)
    record["train_rows"], record["test_rows"] = len(train.texts), len(test.texts)
    return record


def run_all(
    specs: list[RunSpec],
    data: dict[str, Split],
    *,
    quick: bool,
    jsonl: Path,
    reuse: bool,
    encode_s: dict,
    deadline: float | None = None,
    step_s_prior: float = FINETUNE_STEP_S_PRIOR,
    workers: int = 1,
    log=print,
) -> tuple[list[dict], list[dict]]:
    """Run `specs`, appending each record to `jsonl`; returns (records in spec order, skipped:
    [{spec fields, "reason"}]).

    With `deadline` (a time.perf_counter() value) the runs go one at a time and a run predicted
    to end after it is skipped: the prediction is its optimiser steps times the largest seconds
    per step of the earlier runs of `specs` (before the first: `step_s_prior`), plus their
    largest embedding and scoring time. Without it, `workers` > 1 trains that many runs at once
    in child processes with an equal share of the cores each (frozen runs stay in this process,
    first: they fill the embedding cache the others read)."""
    done = {run_key(r): r for r in read_records(jsonl)} if reuse else {}
    by_key, skipped, per_step, overhead = {}, [], [], []
    todo = []
    for spec in specs:
        key = spec_key(spec, quick)
        if key not in done:
            todo.append(spec)
            continue
        log(f"reused: {spec.label}")
        if spec.mode == "frozen" and "encode_s" in done[key]:
            encode_s[spec.split] = done[key]["encode_s"]
        by_key[key] = done[key]

    def finished(spec: RunSpec, record: dict) -> None:
        append_record(jsonl, record)
        by_key[run_key(record)] = record
        if spec.mode != "frozen":
            per_step.append(record["fit_s"] / max(record["steps"], 1))
            overhead.append(record["transform_s"] + record["eval_s"])
        m = record["metrics"]
        log(
            f"{spec.label}: kNN-1 {100 * m['knn1_accuracy']:.2f} %, linear "
            f"{100 * m['linear_accuracy']:.2f} %, MAP@R {m['map_at_r']:.3f}, "
            f"fit {record.get('fit_s', 0):.0f} s"
        )

    for spec in [s for s in todo if s.mode == "frozen"]:
        finished(spec, run_one(spec, data, quick, encode_s))
    trained = [s for s in todo if s.mode != "frozen"]
    if workers > 1 and deadline is None and len(trained) > 1:
        for spec, record in _run_in_parallel(trained, data, quick, encode_s, workers):
            finished(spec, record)
        trained = []
    for spec in trained:
        if deadline is not None:
            step_s = max(per_step) if per_step else step_s_prior
            predicted = steps_of(spec, data) * step_s + (max(overhead) if overhead else 30.0)
            left = deadline - time.perf_counter()
            if predicted > left:
                reason = f"predicted {predicted / 60:.1f} min, {max(left, 0) / 60:.1f} min left"
                skipped.append({**spec.__dict__, "reason": reason})
                log(f"skipped ({reason}): {spec.label}")
                continue
        finished(spec, run_one(spec, data, quick, encode_s))
    keys = [spec_key(s, quick) for s in specs]
    return [by_key[k] for k in keys if k in by_key], skipped


def solo_step_seconds(records: list[dict], threads: int, default: float = 0.1) -> float:
    """Seconds per optimiser step a run alone with `threads` torch threads is expected to take,
    from the slowest of `records`: a run that had fewer threads because others trained beside
    it counts its time scaled by its share (1 of 2 threads: half). This predicts the runs
    `while_budget_lasts` starts one at a time after the parallel ones."""
    return max(
        (r["fit_s"] / max(r["steps"], 1) * min(1.0, r.get("threads", threads) / threads)
         for r in records),
        default=default,
    )  # fmt: skip


def _worker_threads(threads: int) -> None:
    import warnings

    import torch

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", category=UserWarning)


def _run_in_parallel(specs, data, quick, encode_s, workers):
    """(spec, record) of every spec as the runs end, `workers` at a time. Small adapter steps
    do not keep two threads busy: on 2 cores, two one-thread runs at once train 1.25x as many
    steps per second as one two-thread run (supcon on Banking77, 36 ms a step against 57 ms
    for each of two)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or workers) // workers)
    context = multiprocessing.get_context("spawn")  # no fork of a process that ran torch
    with ProcessPoolExecutor(workers, context, _worker_threads, (threads,)) as pool:
        futures = {pool.submit(run_one, spec, data, quick, dict(encode_s), workers): spec
                   for spec in specs}  # fmt: skip
        for future in as_completed(futures):
            yield futures[future], future.result()


def steps_of(spec: RunSpec, data: dict[str, Split]) -> int:
    """Optimiser steps the library's default plan gives `spec` on its split."""
    from contrastkit.config.defaults import plan_training
    from contrastkit.config.refine_config import make_config

    method, options = CONFIGS[spec.config]
    labels = data[spec.split].labels
    n = len(labels)
    p = plan_training(make_config(method=method, **options), "text", spec.mode, n,
                      len(np.unique(labels)))  # fmt: skip
    return p.epochs * math.ceil(n / p.batch_size)
