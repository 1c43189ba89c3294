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
from contrastkit.errors import ConfigError, DataError, UserError
from contrastkit.refiner import Refiner
from contrastkit.training.atomic import (
    default_mode,
    fsync_dir,
    write_bytes_atomic,
    write_json_atomic,
)
from contrastkit.training.distributed import (
    barrier,
    init_distributed,
    leave_distributed,
    resolve_device,
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
    pair_columns: tuple[str, str] | None = None  # two text columns: pairs (clip)


@dataclass
class RunResult:
    run_dir: Path
    before: dict
    after: dict
    timing: dict
    evaluated_on: str
    notes: list[str] = field(default_factory=list)
    writer: bool = True  # False on the ranks > 0 of a torchrun job: rank 0 wrote the folder


def check_run_dir(out: str | Path, *, resume: bool, overwrite: bool) -> Path:
    """The run folder, checked without writing anything: an existing run is refused unless
    `resume` or `overwrite` is asked for."""
    run = Path(out)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other; pass one of them")
    if run.exists() and not run.is_dir():
        raise ConfigError(f"--out {run} is a file, not a folder; choose another path")
    if run.is_dir() and any(run.iterdir()) and not (resume or overwrite):
        raise ConfigError(
            f"run folder {run} already exists and is not empty; pass --resume to continue that run "
            "or --overwrite to replace it (nothing in it was touched)"
        )
    if resume and run.is_dir() and any(run.iterdir()) and not (run / "config.yaml").is_file():
        raise ConfigError(f"{run} holds no config.yaml, so it is not a run that can be resumed")
    return run


def prepare_run_dir(run: Path, *, overwrite: bool) -> bool:
    """Create the run folder and check it is writable; clear what a killed run left half-written
    and, with `overwrite`, the previous run's outputs. True when the folder did not exist."""
    created = not run.exists()
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=run, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as exc:
        raise ConfigError(
            f"cannot write to the run folder {run} ({exc.strerror or exc}); choose a writable --out"
        ) from None
    # Temporary files and folders left by a run killed while writing (outputs, checkpoints).
    for stale in [*run.glob(".*.tmp"), *(run / "checkpoints").glob(".*.tmp")]:
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
    return created


def resolve_options(run: Path, options: dict, resume: bool) -> dict:
    """The run's options; on resume the saved ones win and a flag that contradicts them is an
    error. Reads only."""
    saved_path = run / "config.yaml"
    if not (resume and saved_path.is_file()):
        return options
    try:
        saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        saved = None
    if not isinstance(saved, dict):
        raise ConfigError(
            f"{saved_path} is damaged, so the run cannot be resumed; start again with --overwrite"
        )
    for key, value in options.items():
        if key in ("quiet", "device") or value is None:
            continue
        if key in saved and saved[key] != value:
            raise ConfigError(
                f"--{key.replace('_', '-')} {value} differs from the resumed run's {saved[key]}; "
                "resume with the same options, or start a new run folder"
            )
    return dict(saved, quiet=options.get("quiet", False), device=options.get("device", "auto"))


def _forget_failed_start(run: Path, created: bool) -> None:
    """A run that failed before its first checkpoint leaves the folder as it found it, so the
    corrected command runs without --overwrite."""
    if (run / "checkpoints" / "latest.json").exists():
        return
    (run / "config.yaml").unlink(missing_ok=True)
    shutil.rmtree(run / "checkpoints", ignore_errors=True)
    if created and not any(run.iterdir()):
        run.rmdir()


def read_train_test(
    train: str, test: str | None, opts: ReadOptions, *, require_labels: bool = False
) -> tuple[Dataset, Dataset | None]:
    """The training data (which must hold labels when `require_labels`) and the test data: the
    --test file, else the training file's test split, else None."""
    kwargs = dict(
        text_column=opts.text_column,
        label_column=opts.label_column,
        vector_column=opts.vector_column,
        pair_columns=opts.pair_columns,
    )
    train_ds = read_dataset(
        train,
        split="train" if has_split(train, "train") else None,
        require_labels=require_labels,
        **kwargs,
    )
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
    # Everything that can be checked is checked before anything is written: the run folder,
    # the options, the data; a refused command leaves the folder as it was.
    run = check_run_dir(out, resume=resume, overwrite=overwrite)
    options = resolve_options(run, dict(options or {}), resume)
    refiner = Refiner(**options)
    # Under torchrun every rank trains, rank 0 alone writes the run folder; the barrier keeps
    # rank 0 from creating it before the others have checked it.
    dist_info = init_distributed(resolve_device(refiner.config.device))
    barrier(dist_info)
    supervised = refiner.spec.needs_labels

    tick = time.perf_counter()
    train_ds, test_ds = read_train_test(
        train, test, read or ReadOptions(), require_labels=supervised
    )
    timing["read_s"] = time.perf_counter() - tick
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
    elif y is not None and train_ds.kind != "pairs":  # pair scores are not classes to split by
        fraction = options.get("val_fraction") or 0.1
        codes = encode_labels(y).train
        tr, va = stratified_split(codes, fraction, int(options.get("seed", 0)))
        X, y, X_eval, y_eval = _take(X, tr), y[tr], _take(X, va), y[va]
        validation = (X_eval, y_eval)
        evaluated_on = f"a held-out {fraction:.0%} of {train_ds.source}" + (
            " (also used for early stopping)" if supervised else ""
        )
        notes.append("no --test given: metrics are on held-out training rows")
    else:
        X_eval, y_eval, evaluated_on = None, None, "nothing (no labelled test data)"
    if y is not None and y_eval is not None and train_ds.kind != "pairs":
        encode_labels(y, y_eval)  # train and test labels must be comparable: found out now

    created = False
    if dist_info.is_main:
        created = prepare_run_dir(run, overwrite=overwrite)
        if not (run / "config.yaml").is_file():
            config_text = yaml.safe_dump(options, sort_keys=True).encode()
            write_bytes_atomic(run / "config.yaml", config_text)
    barrier(dist_info)
    tick = time.perf_counter()
    try:
        refiner.fit(X, y, validation=validation, checkpoint_dir=run / "checkpoints", resume=resume)
    except UserError:
        if dist_info.is_main:
            _forget_failed_start(run, created)
        raise
    timing["fit_s"] = time.perf_counter() - tick
    # Training was the last collective work: rank 0 evaluates and writes alone.
    leave_distributed(dist_info)
    if not dist_info.is_main:
        return RunResult(run, {}, {}, timing, evaluated_on, notes, writer=False)

    tick = time.perf_counter()
    Z_train_before, Z_train = _embed_both(refiner, X)
    Z_eval_before = Z_eval = None
    if X_eval is not None:
        Z_eval_before, Z_eval = _embed_both(refiner, X_eval)
    timing["embed_s"] = time.perf_counter() - tick

    before: dict = {}
    after: dict = {}
    if y is not None and y_eval is not None and train_ds.kind != "pairs":
        tick = time.perf_counter()
        labels = encode_labels(y, y_eval)
        seed = int(options.get("seed", 0))
        before = evaluate(Z_train_before, labels.train, Z_eval_before, labels.test, seed=seed)
        after = evaluate(Z_train, labels.train, Z_eval, labels.test, seed=seed)
        timing["evaluate_s"] = time.perf_counter() - tick
    elif y_eval is not None:  # unlabelled training data (self-supervised), or scored pairs
        tick = time.perf_counter()
        before, after, how = _evaluate_on_test(
            train_ds.kind, Z_eval_before, Z_eval, y_eval, int(options.get("seed", 0))
        )
        evaluated_on += f" ({how})"
        timing["evaluate_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    _save_model(refiner, run / "model")
    _write_embeddings(
        run / "embeddings.parquet",
        Z_train,
        _per_row(y, Z_train),
        Z_eval,
        _per_row(y_eval, Z_eval),
        test_ds is not None,
    )
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
    if report and before and train_ds.kind != "pairs":
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


def _embed_both(refiner: Refiner, X) -> tuple[np.ndarray, np.ndarray]:
    """(base, refined) embeddings of X; text pairs give their a texts' rows, then their b's."""
    if isinstance(X, list) and X and isinstance(X[0], tuple):
        X = [a for a, _ in X] + [b for _, b in X]
    return refiner.base_transform(X), refiner.transform(X)


def _per_row(labels, Z):
    """Labels per embedding row: pairs have two rows (a, then b) per label."""
    if labels is None or Z is None or len(labels) == len(Z):
        return labels
    return np.concatenate([labels, labels])


def _evaluate_on_test(kind: str, Z_before, Z_after, y_eval, seed: int) -> tuple[dict, dict, str]:
    """(before, after, how) from the test data alone: scored pairs -> Spearman of the pairs'
    cosine with their scores; labelled rows -> `evaluate_test_only` (split test set)."""
    from contrastkit.evaluation.test_only import TEST_ONLY_NOTE, evaluate_test_only, pair_scores

    if kind == "pairs":
        scores = np.asarray(y_eval)
        if scores.dtype.kind not in "biuf":
            return {}, {}, "no metrics: the test pairs' labels are not numeric scores"
        n = len(scores)
        how = "Spearman correlation of each pair's cosine similarity with its score"
        before = pair_scores(Z_before[:n], Z_before[n:], scores)
        return before, pair_scores(Z_after[:n], Z_after[n:], scores), how
    codes = encode_labels(y_eval).train
    before = evaluate_test_only(Z_before, codes, seed=seed)
    return before, evaluate_test_only(Z_after, codes, seed=seed), TEST_ONLY_NOTE


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

    if y_train is None:  # no training labels: per-class figures are leave-one-out on the test set
        labels = encode_labels(y_eval)
        test_codes, train_codes, Z_train_before, Z_train = labels.train, None, None, None
    else:
        labels = encode_labels(y_train, y_eval)
        test_codes, train_codes = labels.test, labels.train
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
            test_labels=test_codes,
            class_names=[str(c) for c in labels.classes],
            history=refiner.history_,
            train_before=Z_train_before,
            train_after=Z_train,
            train_labels=train_codes,
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
