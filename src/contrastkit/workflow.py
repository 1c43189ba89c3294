"""The main job behind `contrastkit refine`: data in; refined model, embeddings, metrics and a
report out, in one run folder.

    RUN_DIR/
      metrics.json        {"before": {...}, "after": {...}, "config": {...}, "timing": {...}}
      report.html         the before/after report
      model/              the refined model (Refiner.load / SentenceTransformer for finetuned text)
      embeddings.parquet  refined embeddings of every row (split, row, label, embedding)
      checkpoints/        one per epoch; `--resume` continues from the latest
      config.yaml         the options of this run (a resumed run must use the same)

Every output is written to a temporary name and renamed into place, so a run killed at any
moment leaves no half-written file.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from contrastkit.data import Dataset, encode_labels, has_split, read_dataset
from contrastkit.embeddings_io import write_embeddings
from contrastkit.errors import ConfigError, DataError
from contrastkit.refiner import Refiner
from contrastkit.training.atomic import (
    default_mode,
    fsync_dir,
    write_bytes_atomic,
    write_json_atomic,
)
from contrastkit.training.validation import stratified_split

RUN_FILES = (
    "metrics.json",
    "report.html",
    "model",
    "embeddings.parquet",
    "checkpoints",
    "config.yaml",
)


@dataclass
class ReadOptions:
    text_column: str | None = None
    label_column: str | None = None
    vector_column: str | None = None


@dataclass
class RunResult:
    run_dir: Path
    before: dict
    after: dict
    timing: dict
    evaluated_on: str
    notes: list[str] = field(default_factory=list)


def prepare_run_dir(out: str | Path, *, resume: bool, overwrite: bool) -> Path:
    """The run folder, created and checked writable; an existing run is refused unless asked."""
    run = Path(out)
    if run.exists() and not run.is_dir():
        raise ConfigError(f"--out {run} is a file, not a folder; choose another path")
    if run.is_dir() and any(run.iterdir()) and not (resume or overwrite):
        raise ConfigError(
            f"run folder {run} already exists and is not empty; pass --resume to continue that run "
            "or --overwrite to replace it (nothing in it was touched)"
        )
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other; pass one of them")
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=run, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise ConfigError(f"cannot write to the run folder {run}: {exc.strerror or exc}") from None
    for stale in run.glob(".*.tmp"):  # left by a run killed while writing
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(
            missing_ok=True
        )
    if overwrite:
        for name in RUN_FILES:
            target = run / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return run


def check_resume_config(run: Path, options: dict, resume: bool) -> dict:
    """On resume, the saved options win; a flag that contradicts them is an error."""
    saved_path = run / "config.yaml"
    if not resume:
        write_bytes_atomic(saved_path, yaml.safe_dump(options, sort_keys=True).encode())
        return options
    if not saved_path.is_file():
        if any(run.iterdir()):
            raise ConfigError(f"{run} holds no config.yaml, so it is not a run that can be resumed")
        write_bytes_atomic(saved_path, yaml.safe_dump(options, sort_keys=True).encode())
        return options
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    for key, value in options.items():
        if key in ("quiet", "device") or value is None:
            continue
        if key in saved and saved[key] != value:
            raise ConfigError(
                f"--{key.replace('_', '-')} {value} differs from the resumed run's {saved[key]}; "
                "resume with the same options, or start a new run folder"
            )
    return dict(saved, quiet=options.get("quiet", False), device=options.get("device", "auto"))


def read_train_test(
    train: str, test: str | None, opts: ReadOptions
) -> tuple[Dataset, Dataset | None]:
    kwargs = dict(
        text_column=opts.text_column,
        label_column=opts.label_column,
        vector_column=opts.vector_column,
    )
    train_ds = read_dataset(train, split="train" if has_split(train, "train") else None, **kwargs)
    if test is not None:
        test_ds = read_dataset(test, split="test" if has_split(test, "test") else None, **kwargs)
    elif has_split(train, "test"):
        test_ds = read_dataset(train, split="test", **kwargs)
    else:
        test_ds = None
    if test_ds is not None and test_ds.kind != train_ds.kind:
        raise DataError(
            f"the test data ({test_ds.source}) holds {test_ds.kind} but the training data holds {train_ds.kind}"
        )
    return train_ds, test_ds


def refine(
    train: str,
    out: str | Path,
    *,
    test: str | None = None,
    read: ReadOptions | None = None,
    options: dict | None = None,
    resume: bool = False,
    overwrite: bool = False,
    report: bool = True,
) -> RunResult:
    """Run the whole job and write the run folder. `options` are Refiner keywords."""
    from contrastkit.evaluation import evaluate

    timing: dict[str, float] = {}
    started = time.perf_counter()
    run = prepare_run_dir(out, resume=resume, overwrite=overwrite)
    options = check_resume_config(run, dict(options or {}), resume)

    tick = time.perf_counter()
    train_ds, test_ds = read_train_test(train, test, read or ReadOptions())
    timing["read_s"] = time.perf_counter() - tick
    refiner = Refiner(**options)
    supervised = refiner.spec.needs_labels
    if supervised and train_ds.labels is None:
        raise DataError(
            f"{train_ds.source} has no label column, and method {refiner.config.method} needs labels; "
            "name it with --label-column, or pick a self-supervised method"
        )

    # Where the before/after comparison is measured: the test data, else a held-out 10 %.
    X, y = train_ds.inputs, train_ds.labels
    validation = None
    notes: list[str] = []
    if test_ds is not None:
        X_eval, y_eval, evaluated_on = test_ds.inputs, test_ds.labels, f"test data {test_ds.source}"
    elif y is not None:
        fraction = options.get("val_fraction") or 0.1
        codes = encode_labels(y).train
        tr, va = stratified_split(codes, fraction, int(options.get("seed", 0)))
        X, y, X_eval, y_eval = _take(X, tr), y[tr], _take(X, va), y[va]
        validation = (X_eval, y_eval)
        evaluated_on = (
            f"a held-out {fraction:.0%} of {train_ds.source} (also used for early stopping)"
        )
        notes.append("no --test given: metrics are on held-out training rows")
    else:
        X_eval, y_eval, evaluated_on = None, None, "nothing (no labelled test data)"

    tick = time.perf_counter()
    refiner.fit(X, y, validation=validation, checkpoint_dir=run / "checkpoints", resume=resume)
    timing["fit_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    Z_train_before, Z_train = refiner.base_transform(X), refiner.transform(X)
    Z_eval_before = Z_eval = None
    if X_eval is not None:
        Z_eval_before, Z_eval = refiner.base_transform(X_eval), refiner.transform(X_eval)
    timing["embed_s"] = time.perf_counter() - tick

    before: dict = {}
    after: dict = {}
    if y is not None and y_eval is not None:
        tick = time.perf_counter()
        labels = encode_labels(y, y_eval)
        seed = int(options.get("seed", 0))
        before = evaluate(Z_train_before, labels.train, Z_eval_before, labels.test, seed=seed)
        after = evaluate(Z_train, labels.train, Z_eval, labels.test, seed=seed)
        timing["evaluate_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    _save_model(refiner, run / "model")
    _write_embeddings(run / "embeddings.parquet", Z_train, y, Z_eval, y_eval, test_ds is not None)
    timing["save_s"] = time.perf_counter() - tick
    timing["total_s"] = time.perf_counter() - started

    config = {
        **refiner.config.model_dump(),
        "resolved": {**refiner.plan_.as_dict(), "kind": refiner.kind_, "mode": refiner.mode_},
        "train": str(train),
        "test": None if test is None else str(test),
        "evaluated_on": evaluated_on,
        "rows": {"train": len(X), "evaluation": 0 if X_eval is None else len(X_eval)},
        "stopped_early": refiner.training_state_.stopped_early,
        "best_epoch": refiner.training_state_.best_epoch,
    }
    if report and before:
        tick = time.perf_counter()
        _write_report(
            run / "report.html",
            refiner,
            before,
            after,
            Z_eval_before,
            Z_eval,
            y_eval,
            Z_train_before,
            Z_train,
            y,
            X_eval,
            config,
            timing,
        )
        timing["report_s"] = time.perf_counter() - tick
        timing["total_s"] = time.perf_counter() - started
    write_json_atomic(
        run / "metrics.json",
        _json_safe(
            {
                "before": before,
                "after": after,
                "config": config,
                "timing": timing,
                "history": refiner.history_,
            }
        ),
    )
    return RunResult(run, before, after, timing, evaluated_on, notes)


def _take(X, idx):
    return X[idx] if isinstance(X, np.ndarray) else [X[i] for i in idx]


def _save_model(refiner: Refiner, target: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".model.", suffix=".tmp"))
    os.chmod(tmp, default_mode(directory=True))
    try:
        refiner.save(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_embeddings(path: Path, Z_train, y_train, Z_eval, y_eval, eval_is_test: bool) -> None:
    splits = [("train", len(Z_train))]
    Z, labels = [Z_train], list(y_train) if y_train is not None else [None] * len(Z_train)
    if Z_eval is not None:
        splits.append(("test" if eval_is_test else "validation", len(Z_eval)))
        Z.append(Z_eval)
        labels += list(y_eval) if y_eval is not None else [None] * len(Z_eval)
    write_embeddings(path, np.concatenate(Z), labels, splits)


def _write_report(
    path,
    refiner,
    before,
    after,
    Z_eval_before,
    Z_eval,
    y_eval,
    Z_train_before,
    Z_train,
    y_train,
    X_eval,
    config,
    timing,
) -> None:
    from contrastkit.evaluation import write_report

    labels = encode_labels(y_train, y_eval)
    examples = list(X_eval) if refiner.kind_ == "text" else None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".report.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, default_mode())
    try:
        write_report(
            tmp,
            before=before,
            after=after,
            test_before=Z_eval_before,
            test_after=Z_eval,
            test_labels=labels.test,
            class_names=[str(c) for c in labels.classes],
            history=refiner.history_,
            train_before=Z_train_before,
            train_after=Z_train,
            train_labels=labels.train,
            examples=examples,
            config=config,
            timing=timing,
            seed=refiner.config.seed,
        )
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_safe(value):
    """NaN/inf -> null (metrics.json must be standard JSON)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value
