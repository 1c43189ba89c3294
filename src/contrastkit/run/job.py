"""`contrastkit refine`: files in; model, embeddings, metrics and report out, in one run folder.

The steps: read the data -> set the evaluation rows apart (the test data, else 10 % of the
training rows that neither train nor pick the epoch) -> open the run folder (locked; see
`contrastkit.io.run_folder`) -> `Refiner.fit` -> evaluate before vs after -> write the outputs.
Under torchrun every rank trains; rank 0 alone touches the run folder.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from contrastkit.data.labels import encode_labels
from contrastkit.data.readers import read_train_test
from contrastkit.data.splits import stratified_split, take
from contrastkit.errors import UserError
from contrastkit.evaluation.verdict import never_worse
from contrastkit.io.run_folder import RunFolder, check_run_dir, open_run_dir
from contrastkit.refiner import Refiner
from contrastkit.run import outputs
from contrastkit.run.check import MIN_CLASS_ROWS, advice, check_split, explain, run_check
from contrastkit.run.resume import check_resume, options_for_resume, run_config
from contrastkit.run.unlabelled import read_unlabelled
from contrastkit.training.distributed import leave_distributed

EVALUATION_FRACTION = 0.1  # of the training rows, held out when there is no test data
NOTHING_TO_EVALUATE = "nothing (no labelled test data)"
REFIT_DIR = "refit"  # under checkpoints/: the fit on every row after the check


@dataclass
class ReadOptions:
    text_column: str | None = None
    label_column: str | None = None
    vector_column: str | None = None
    pair_columns: tuple[str, str] | None = None  # two text columns: pairs (clip)

    def columns(self) -> dict:
        return dict(vars(self))


@dataclass
class RunResult:
    run_dir: Path
    before: dict
    after: dict
    timing: dict
    evaluated_on: str
    notes: list[str] = field(default_factory=list)
    writer: bool = True  # False on the ranks > 0 of a torchrun job: rank 0 wrote the folder
    check: dict | None = None  # the safety net's verdict (`contrastkit.run.check`)


@dataclass
class RunData:
    """The rows that train and the rows that measure, with the labels encoded once."""

    kind: str
    X: object
    y: object
    X_eval: object
    y_eval: object
    evaluated_on: str
    eval_split: str  # "test" or "validation" (in embeddings.parquet)
    train_source: str = ""
    test_source: str | None = None
    notes: list[str] = field(default_factory=list)
    check_rows: np.ndarray | None = None  # rows of X held out of training for the check
    X_unlabelled: object = None  # rows without labels beside the training rows (--unlabelled)
    unlabelled_source: str | None = None

    def fit_data(self) -> tuple[object, object]:
        """(X, y) of the rows that train: all but the check rows."""
        if self.check_rows is None:
            return self.X, self.y
        rows = np.setdiff1d(np.arange(len(self.X)), self.check_rows)
        return take(self.X, rows), np.asarray(self.y)[rows]


def refine_run(
    train: str,
    out: str | Path,
    *,
    test: str | None = None,
    unlabelled: str | None = None,
    read: ReadOptions | None = None,
    options: dict | None = None,
    resume: bool = False,
    overwrite: bool = False,
    report: bool = True,
    check: bool = True,
) -> RunResult:
    """Run the whole job and write the run folder. `options` are Refiner keywords; `check`
    holds training rows out to compare before and after (`contrastkit.run.check`)."""
    started = time.perf_counter()
    timing: dict[str, float] = {}
    read = read or ReadOptions()
    main_rank = int(os.environ.get("RANK", "0")) == 0
    # Everything that can be checked is checked before anything is written: the run folder,
    # the options, the data; a refused command leaves the folder as it was.
    run = check_run_dir(out, resume=resume, overwrite=overwrite) if main_rank else Path(out)
    given = dict(options or {})
    options = options_for_resume(run, given) if resume else given
    refiner = Refiner(**options)
    tick = time.perf_counter()
    data = read_run_data(train, test, read, refiner, int(options.get("seed", 0)), check)
    if unlabelled is not None:  # semi-supervised: see contrastkit.run.unlabelled
        data.X_unlabelled = read_unlabelled(unlabelled, read.columns(), data)
        data.unlabelled_source = str(unlabelled)
    timing["read_s"] = time.perf_counter() - tick
    config = run_config(refiner, data, train, test, read, options)
    if not main_rank:
        _fit(refiner, data, run / "checkpoints", resume, timing)
        return RunResult(run, {}, {}, timing, data.evaluated_on, data.notes, writer=False)
    folder = open_run_dir(run, overwrite=overwrite)
    try:
        if resume:
            check_resume(folder.saved_config(), config, given)
        folder.write_config(config)
        try:
            _fit(refiner, data, folder.work / "checkpoints", resume, timing)
            refiner, check = _check_then_refit(refiner, options, data, folder.work, resume, timing)
        except UserError:
            folder.abandon()
            raise
        result = _write_outputs(folder, refiner, data, config, timing, report, started, check)
        folder.finish()
    finally:
        folder.release()
    return result


def read_run_data(
    train, test, read: ReadOptions, refiner: Refiner, seed: int, check: bool = True
) -> RunData:
    """The training rows and the evaluation rows: the test data, else a stratified 10 % of
    the labelled training rows, held out of training and of the choice of epoch. With test
    data and `check`, the check rows (`check_split`) are held out of training too."""
    # no method named: the default for the data needs labels unless the data are pairs
    supervised = refiner.spec.needs_labels if refiner.spec is not None else "rows"
    train_ds, test_ds = read_train_test(train, test, require_labels=supervised, **read.columns())
    X, y, kind = train_ds.inputs, train_ds.labels, train_ds.kind
    if test_ds is not None:
        _warn_about_test_data(X, test_ds)
        where = f"test data {test_ds.source}"
        data = RunData(kind, X, y, test_ds.inputs, test_ds.labels, where, "test")
    elif y is not None and kind != "pairs":  # pair scores are not classes to split by
        data = _hold_out(train_ds, seed)
    else:
        data = RunData(kind, X, y, None, None, NOTHING_TO_EVALUATE, "test")
    if data.y is not None and data.y_eval is not None and kind != "pairs":
        encode_labels(data.y, data.y_eval)  # train and test labels must be comparable
        if check and test_ds is not None:
            _check_rows(data, seed)
    data.train_source = str(train)
    data.test_source = None if test is None else str(test)
    return data


def _check_rows(data: RunData, seed: int) -> None:
    """Hold the check rows (`check_split`) out of training, or say why there are none."""
    _, held = check_split(encode_labels(data.y).train, seed)
    if len(held):
        data.check_rows = held
        return
    data.notes.append(
        f"no class has {MIN_CLASS_ROWS} or more rows, so none were held out to check the "
        "refinement against the base embeddings: compare before and after on the test data"
    )


def _hold_out(train_ds, seed: int) -> RunData:
    """A stratified 10 % of the training rows (at least one row of every class of two or more:
    10 % of a small class rounds to none) that neither train nor pick the epoch."""
    X, y, kind = train_ds.inputs, train_ds.labels, train_ds.kind
    codes = encode_labels(y).train
    kept, held = stratified_split(codes, EVALUATION_FRACTION, seed, rounding=_at_least_one)
    if not len(held):
        data = RunData(kind, X, y, None, None, NOTHING_TO_EVALUATE, "test")
        data.notes.append(
            "every class has a single row, so none could be held out to measure the refinement; "
            "pass labelled --test data"
        )
        return data
    where = (
        f"a held-out {EVALUATION_FRACTION:.0%} of {train_ds.source} (used neither for training "
        "nor to pick the epoch)"
    )
    data = RunData(kind, take(X, kept), y[kept], take(X, held), y[held], where, "validation")
    data.notes.append("no --test given: metrics are on held-out training rows")
    return data


def _at_least_one(value: float) -> int:
    return max(1, round(value))


def _warn_about_test_data(X, test_ds) -> None:
    """Test data without labels measures nothing; test rows that are training rows measure
    memory, not generalisation. Both deserve a sentence before training starts."""
    if test_ds.labels is None:
        warnings.warn(
            f"the test data {test_ds.source} has no labels, so there will be no before/after "
            "metrics; give it a label column (or name it with --label-column)",
            stacklevel=3,
        )
    shared = overlap(X, test_ds.inputs)
    if shared >= 0.5:
        warnings.warn(
            f"{shared:.0%} of the test rows of {test_ds.source} are also training rows: the "
            "metrics measure memory rather than generalisation; test on rows the model has "
            "not seen",
            stacklevel=3,
        )


def overlap(X, X_test) -> float:
    """The fraction of the rows of X_test that are identical to a row of X."""

    def key(row):
        return row.tobytes() if isinstance(row, np.ndarray) else row

    seen = {key(row) for row in X}
    return sum(key(row) in seen for row in X_test) / max(1, len(X_test))


def _fit(refiner: Refiner, data: RunData, checkpoints: Path, resume: bool, timing: dict) -> None:
    tick = time.perf_counter()
    X, y = data.fit_data()
    refiner.fit(X, y, X_unlabelled=data.X_unlabelled, checkpoint_dir=checkpoints, resume=resume)
    timing["fit_s"] = time.perf_counter() - tick
    leave_distributed(refiner.dist_)  # training was the last collective work


def _check_then_refit(
    refiner: Refiner, options: dict, data: RunData, work: Path, resume: bool, timing: dict
) -> tuple[Refiner, dict | None]:
    """In adapter mode with check rows (and no torchrun): the safety net on the model trained
    without them, then the same options fit on every training row, the model the run keeps
    (a second adapter fit costs seconds to minutes; a second fine-tuning would double a long
    fit, so there the check rows stay out). (the refiner to keep, the check or None)."""
    if data.check_rows is None or refiner.mode_ != "adapter" or refiner.dist_.enabled:
        return refiner, None
    Z = dict(zip(("train_before", "train_after"), outputs.embed_both(refiner, data.X), strict=True))
    check = _safety_check(refiner, data, Z, {}, {})
    check["refit"] = True
    check["message"] += (
        " (a model trained the same way without those rows; the model kept was then trained "
        "on every row)"
    )
    if not refiner.config.quiet:
        print(f"checked on {len(data.check_rows):,} held-out rows; training again on all "
              f"{len(data.y):,} rows, the model kept", file=sys.stderr, flush=True)  # fmt: skip
    tick = time.perf_counter()
    final = Refiner(**options)
    final.fit(data.X, data.y, X_unlabelled=data.X_unlabelled,
              checkpoint_dir=work / "checkpoints" / REFIT_DIR, resume=resume)  # fmt: skip
    timing["refit_s"] = time.perf_counter() - tick
    if "advice" in check:  # in the options of the model kept (e.g. its epochs)
        check["advice"] = advice(final.mode_, final.plan_)
    return final, check


def _write_outputs(folder: RunFolder, refiner: Refiner, data: RunData, config: dict, timing: dict, report: bool, started: float, check: dict | None) -> RunResult:  # fmt: skip
    tick = time.perf_counter()
    Z = dict(zip(("train_before", "train_after"), outputs.embed_both(refiner, data.X), strict=True))
    if data.X_eval is not None:
        Z.update(
            zip(
                ("eval_before", "eval_after"), outputs.embed_both(refiner, data.X_eval), strict=True
            )
        )
    timing["embed_s"] = time.perf_counter() - tick
    before, after, labels, evaluated_on = _evaluate(refiner, data, Z, timing)
    if check is None:  # not made before a refit: on this model
        check = _safety_check(refiner, data, Z, before, after)
    config = {
        **refiner.config.model_dump(),  # flat, as in the model folder's manifest
        "method": refiner.method_,  # the ones trained (chosen from the data when unset)
        "mode": refiner.mode_,
        **config,
        "train": data.train_source,
        "test": data.test_source,
        "evaluated_on": evaluated_on,
        "rows": _rows(refiner, data),
    }
    tick = time.perf_counter()
    outputs.save_model(refiner, folder.work / "model")
    outputs.save_embeddings(
        folder.work / "embeddings.parquet",
        Z["train_after"],
        outputs.rows_per_label(data.y, Z["train_after"]),
        Z.get("eval_after"),
        outputs.rows_per_label(data.y_eval, Z.get("eval_after")),
        data.eval_split,
    )
    timing["save_s"] = time.perf_counter() - tick
    if report and before and data.kind != "pairs":
        tick = time.perf_counter()
        timing["total_s"] = time.perf_counter() - started
        outputs.save_report(folder.work / "report.html", refiner, before, after, Z, labels, data.X_eval, config, timing, check)  # fmt: skip
        timing["report_s"] = time.perf_counter() - tick
    timing["total_s"] = time.perf_counter() - started
    outputs.save_metrics(
        folder.work / "metrics.json", before, after, config, timing, refiner.history_, check
    )
    return RunResult(folder.path, before, after, timing, evaluated_on, data.notes, check=check)


def _safety_check(refiner: Refiner, data: RunData, Z: dict, before, after) -> dict | None:
    """The safety net (`contrastkit.run.check`) on the check rows, else on the evaluation rows
    when they are held-out training rows; None when there are neither."""
    if data.kind == "pairs" or data.y is None:
        return None
    if data.check_rows is not None:
        codes = encode_labels(data.y).train
        parts = {"fit": np.setdiff1d(np.arange(len(codes)), data.check_rows)}
        parts["check"] = data.check_rows
        Z_check = {f"{part}_{side}": Z[f"train_{side}"][rows]
                   for part, rows in parts.items() for side in ("before", "after")}  # fmt: skip
        result = run_check(Z_check, codes[parts["fit"]], codes[parts["check"]], refiner.config.seed)
    elif data.eval_split == "validation" and before and after:
        result = never_worse(before, after, len(data.y_eval))
    else:
        return None
    return explain(result, refiner.mode_, refiner.plan_)


def _evaluate(refiner: Refiner, data: RunData, Z: dict, timing: dict):
    """(before, after, encoded labels, evaluated_on) on the evaluation rows."""
    tick = time.perf_counter()
    seed, evaluated_on = refiner.config.seed, data.evaluated_on
    before: dict = {}
    after: dict = {}
    labels = None
    if data.y is not None and data.y_eval is not None and data.kind != "pairs":
        labels = encode_labels(data.y, data.y_eval)
        before, after = outputs.evaluate_before_after(Z, labels, seed)
        unseen = outputs.unseen_class_rows(labels)
        if unseen.any() and not unseen.all():
            seen_before, seen_after = outputs.seen_class_accuracies(Z, labels, seed)
            before.update(seen_before)
            after.update(seen_after)
            _warn_unseen(labels, unseen)
    elif data.y_eval is not None and data.kind == "pairs":
        before, after, how = outputs.evaluate_pairs(Z, data.y, data.y_eval)
        evaluated_on += f" ({how})"
    elif data.y_eval is not None:  # unlabelled training data (self-supervised)
        before, after, how = outputs.evaluate_on_test_only(
            Z["eval_before"], Z["eval_after"], data.y_eval, seed
        )
        evaluated_on += f" ({how})"
        labels = encode_labels(data.y_eval)
    if before:
        timing["evaluate_s"] = time.perf_counter() - tick
    for key, why in {**getattr(before, "undefined", {}), **getattr(after, "undefined", {})}.items():
        data.notes.append(f"{key} is left out: {why}")
    return before, after, labels, evaluated_on


def _warn_unseen(labels, unseen) -> None:
    classes = labels.unseen_test_classes()
    shown = ", ".join(repr(c) for c in classes[:3]) + (" ..." if len(classes) > 3 else "")
    warnings.warn(
        f"{int(unseen.sum())} of {len(unseen)} evaluation rows belong to {len(classes)} classes "
        f"never seen in training ({shown}); kNN and the linear probe cannot predict those, so "
        "the accuracies count them as wrong: the *_seen_classes accuracies leave them out",
        stacklevel=2,
    )


def _rows(refiner: Refiner, data: RunData) -> dict:
    return {**refiner.rows_, "evaluation": 0 if data.X_eval is None else len(data.X_eval)}
