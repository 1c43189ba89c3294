"""Unlabelled rows beside the labelled ones (`Refiner.fit(X, y, X_unlabelled=...)`): the stages
of a semi-supervised fit, as planned by `contrastkit.config.unlabelled`.

1. self-supervised, only when `unlabelled_method` names a method: the unlabelled and the
   training rows, labels dropped (contrastive pre-training, as CPFT);
2. supervised: the fit's own method on the labelled rows, exactly as without unlabelled rows;
3. in finetune mode with pseudo-labels only: the fine-tuned model frozen, an adapter over its
   embeddings (`models.stacked.StackedBackbone`) trained on the labelled rows as an adapter
   fit would be; the stage after it trains that adapter, never the fine-tuned model;
4. pseudo-labelled, unless `pseudo_labels` is off: the unlabelled rows whose nearest labelled
   class is clear (`pseudo_label_margin`) take that class and train with the labelled rows,
   continuing the adapter of the stage before with the plan of an adapter fit on those rows;
   each later round (`pseudo_label_rounds`) labels them anew with the model so far and trains
   a fresh adapter over the same base.

Each stage has its own trainer and checkpoints (stage 2 in the checkpoint folder itself, the
others in its `self-supervised/`, `adapter/` and `pseudo-labelled/` sub-folders), so a killed
run resumes in the stage it was in: the finished stages are read back from their last
checkpoints.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from contrastkit.config.defaults import Plan, plan_training
from contrastkit.config.unlabelled import (
    UNLABELLED_OPTIONS,
    UnlabelledPlan,
    adapter_stage_config,
    plan_unlabelled,
    self_supervised_config,
    self_supervised_plan,
)
from contrastkit.data.inputs import check_input
from contrastkit.data.splits import take
from contrastkit.errors import ConfigError, DataError, OptionError
from contrastkit.methods.registry import get_method
from contrastkit.models.stacked import StackedBackbone
from contrastkit.refiner.assemble import build_trainer
from contrastkit.refiner.prepare import FitInputs
from contrastkit.refiner.pseudo_labels import confident_rows
from contrastkit.training.trainer import Trainer, TrainState

SELF_SUPERVISED_DIR = "self-supervised"
PSEUDO_LABELLED_DIR = "pseudo-labelled"
ADAPTER_DIR = "adapter"


@dataclass
class Unlabelled:
    """The unlabelled rows of a fit, the plan for them, and what the pseudo-labelled stage made
    of them."""

    X: object
    plan: UnlabelledPlan
    pseudo_labelled: int | None = None  # rows that took a pseudo-label (None: no such stage)
    trained: str | None = None  # what the pseudo-labelled rows trained, when not the model itself

    def summary(self) -> dict:
        """What the unlabelled rows did in the fit (for metrics.json and the report)."""
        trained = {} if self.trained is None else {"pseudo_labels_trained": self.trained}
        return {"rows": len(self.X), **self.plan.resolved(), **self.rows(), **trained}

    def rows(self) -> dict:
        counts = {"unlabelled": len(self.X)}
        if self.pseudo_labelled is not None:
            counts["pseudo_labelled"] = self.pseudo_labelled
        return counts


def prepare_unlabelled(inputs: FitInputs, config, X_unlabelled) -> Unlabelled | None:
    """The checked unlabelled rows and their plan; None without them (then the unlabelled
    options are refused: they would do nothing)."""
    if X_unlabelled is None:
        given = [name for name in UNLABELLED_OPTIONS if getattr(config, name) is not None]
        if given:
            raise OptionError(
                given[0], "{option} applies to unlabelled rows (--unlabelled); leave it out"
            )
        return None
    if not inputs.spec.needs_labels or inputs.kind == "pairs" or inputs.labels is None:
        what = "pairs of texts" if inputs.kind == "pairs" else f"method {inputs.spec.name}"
        raise ConfigError(
            f"unlabelled rows join a fit on labelled rows, but {what} trains without classes; "
            "add the unlabelled rows to the training rows instead"
        )
    X_u = _check_rows(X_unlabelled, inputs)
    plan = plan_unlabelled(config, inputs.kind, inputs.mode)
    if plan.method is None and not plan.pseudo_labels:
        raise ConfigError(
            "the unlabelled rows would not be used: pseudo-labels are off (the default in "
            f"{inputs.mode} mode) and no unlabelled_method is named; turn pseudo_labels on or "
            "name an unlabelled_method (e.g. simcse)"
        )
    if plan.method is not None:
        _check_method(plan.method, inputs)
    return Unlabelled(X_u, plan)


def _check_rows(X_unlabelled, inputs: FitInputs):
    try:
        X_u, kind = check_input(X_unlabelled)
    except DataError as exc:
        raise DataError(f"unlabelled rows: {exc}") from None
    if kind != inputs.kind:
        raise DataError(f"the unlabelled rows are {kind} but the training rows are {inputs.kind}")
    if len(X_u) == 0:
        raise DataError("the unlabelled rows are empty: give at least one")
    shape, expected = np.shape(X_u)[1:], np.shape(inputs.X)[1:]
    if kind == "vectors" and shape != expected:
        raise DataError(
            f"the unlabelled vectors have {shape[0]} dimensions but the training vectors "
            f"{expected[0]}; embed both with the same model"
        )
    if kind == "images" and shape != expected:
        raise DataError(
            f"the unlabelled images have shape {shape} but the training images {expected}; "
            "resize them to the training size"
        )
    return X_u


def _check_method(name: str, inputs: FitInputs) -> None:
    spec = get_method(name)
    if spec.kinds and inputs.kind not in spec.kinds:
        raise ConfigError(
            f"unlabelled_method {name} takes {' or '.join(spec.kinds)}, but the rows are "
            f"{inputs.kind}; choose simclr (or another method for {inputs.kind})"
        )
    if spec.check_fit is not None:
        spec.check_fit(inputs.kind, inputs.mode, {})


def fit_with_unlabelled(
    spec, config, plan: Plan, inputs: FitInputs, unlabelled: Unlabelled, backbone, dist_info,
    checkpoint_dir, resume: bool,
) -> tuple[TrainState, object]:  # fmt: skip
    """Train the stages in turn: the state of the last one, with every stage's history, and the
    backbone that embeds (in finetune mode with pseudo-labels, an adapter over `backbone`)."""
    fit = _Stages(config, inputs, unlabelled, backbone, dist_info, checkpoint_dir, resume)
    histories: list[tuple[str, list[dict]]] = []
    if unlabelled.plan.method is not None:
        histories.append(("self_supervised", fit.self_supervised().history))
    fit.say(f"supervised ({spec.name}) on the {len(inputs.train_rows):,} labelled rows")
    trainer = build_trainer(spec, config, plan, inputs, backbone, dist_info, fit.root)
    state = trainer.fit(resume=resume)
    histories.append(("supervised", state.history))
    if unlabelled.plan.pseudo_labels:
        try:
            state = _pseudo_labelled_stages(fit, spec, trainer, state, plan, histories)
        finally:
            if isinstance(fit.backbone, StackedBackbone):
                fit.backbone.forget()
    state.history = combined_history(histories)
    return state, fit.backbone


def _pseudo_labelled_stages(
    fit: _Stages, spec, trainer: Trainer, state: TrainState, plan: Plan,
    histories: list[tuple[str, list[dict]]],
) -> TrainState:  # fmt: skip
    """[The adapter over the fine-tuned model,] then the pseudo-labelled rounds; each stage's
    history is appended to `histories`."""
    if fit.inputs.mode == "finetune":
        trainer, state, plan = fit.adapter_over_tuned(spec)
        histories.append(("adapter", state.history))
    fit.residual_scale = plan.residual_scale
    for round_ in range(1, fit.unlabelled.plan.pseudo_label_rounds + 1):
        trainer, state = fit.pseudo_labelled(spec, trainer, state, round_)
        if state.history is not histories[-1][1]:
            name = "pseudo_labelled" + ("" if round_ == 1 else f"_{round_}")
            histories.append((name, state.history))
    if isinstance(fit.backbone, StackedBackbone):
        fit.backbone.encoder.scale = plan.residual_scale
    return state


class _Stages:
    """What the stages around the supervised one share."""

    def __init__(
        self, config, inputs: FitInputs, unlabelled: Unlabelled, backbone, dist_info,
        checkpoint_dir, resume: bool,
    ) -> None:  # fmt: skip
        self.config, self.inputs, self.unlabelled = config, inputs, unlabelled
        self.backbone, self.dist_info, self.resume = backbone, dist_info, resume
        self.root = Path(checkpoint_dir) if checkpoint_dir else None
        plan = unlabelled.plan
        adapter = plan.pseudo_labels and inputs.mode == "finetune"
        rounds = plan.pseudo_label_rounds if plan.pseudo_labels else 0
        self.stages = 1 + (plan.method is not None) + rounds + adapter
        self.quiet = config.quiet or not dist_info.is_main
        self.done = 0
        self.residual_scale: float | None = None  # the adapter's, for the pseudo-labels

    def say(self, message: str) -> None:
        """'stage i of n: ...' on stderr before each stage, unless quiet."""
        self.done += 1
        if not self.quiet:
            print(f"stage {self.done} of {self.stages}: {message}", file=sys.stderr, flush=True)

    def _sub(self, name: str) -> Path | None:
        return None if self.root is None else self.root / name

    def self_supervised(self) -> TrainState:
        inputs, method = self.inputs, self.unlabelled.plan.method
        X = _concat(self.unlabelled.X, inputs.X_train)
        ssl_inputs = FitInputs(get_method(method), X, inputs.kind, inputs.mode, None, None,
                               np.arange(len(X)))  # fmt: skip
        plan = self_supervised_plan(self.config, inputs.kind, inputs.mode, len(X))
        self.say(f"self-supervised ({method}) on {len(X):,} rows, labels dropped")
        trainer = build_trainer(ssl_inputs.spec, self_supervised_config(self.config), plan,
                                ssl_inputs, self.backbone, self.dist_info,
                                self._sub(SELF_SUPERVISED_DIR))  # fmt: skip
        return trainer.fit(resume=self.resume)

    def adapter_over_tuned(self, spec) -> tuple[Trainer, TrainState, Plan]:
        """Finetune mode's third stage: the fine-tuned model frozen, an adapter over its
        embeddings trained on the labelled rows as an adapter fit would be; the stages after it
        train that adapter (see `contrastkit.config.unlabelled`)."""
        self.config = adapter_stage_config(self.config)
        self.inputs = replace(self.inputs, mode="adapter")
        self.backbone = StackedBackbone.over(self.backbone, self.config)
        self.unlabelled.trained = "an adapter over the fine-tuned model"
        inputs = self.inputs
        plan = plan_training(self.config, inputs.kind, "adapter", len(inputs.train_rows),
                             inputs.n_classes, spec.name)  # fmt: skip
        self.say(f"the fine-tuned model frozen, an adapter over it on the "
                 f"{len(inputs.train_rows):,} labelled rows")  # fmt: skip
        trainer = build_trainer(spec, self.config, plan, inputs, self.backbone, self.dist_info,
                                self._sub(ADAPTER_DIR))  # fmt: skip
        return trainer, trainer.fit(resume=self.resume), plan

    def pseudo_labelled(
        self, spec, trainer: Trainer, state: TrainState, round_: int = 1
    ) -> tuple[Trainer, TrainState]:
        """A pseudo-labelled stage: the unlabelled rows labelled by the model so far, then, in
        the first round, `trainer`'s module continuing on them and the labelled rows; in a
        later round a fresh adapter over the same base. (`trainer`, `state`) themselves when
        no row took a label."""
        inputs, unlabelled = self.inputs, self.unlabelled
        with _scaled(self.backbone, self.residual_scale):
            pl_inputs = _pseudo_labelled_inputs(inputs, unlabelled, self.backbone)
        margin = unlabelled.plan.pseudo_label_margin
        if not unlabelled.pseudo_labelled:
            warnings.warn(
                f"no unlabelled row's nearest class won by the margin {margin:g}, so none took a "
                "pseudo-label and the model of the stage before is the result; lower "
                "pseudo_label_margin to use them",
                stacklevel=4,
            )
            return trainer, state
        module, folder = trainer.method, PSEUDO_LABELLED_DIR
        if round_ > 1:
            self.backbone, module = self.backbone.fresh(self.config), None
            folder = f"{PSEUDO_LABELLED_DIR}-{round_}"
        n_rows = len(pl_inputs.train_rows)
        plan = plan_training(self.config, inputs.kind, inputs.mode, n_rows, inputs.n_classes,
                             spec.name)  # fmt: skip
        fresh = "" if round_ == 1 else f"round {round_}, a fresh adapter: "
        self.say(f"{fresh}{unlabelled.pseudo_labelled:,} of {len(unlabelled.X):,} unlabelled rows "
                 f"took a pseudo-label (margin >= {margin:g}); supervised on {n_rows:,} rows")  # fmt: skip
        trainer = build_trainer(spec, self.config, plan, pl_inputs, self.backbone, self.dist_info,
                                self._sub(folder), module=module)  # fmt: skip
        return trainer, trainer.fit(resume=self.resume)


@contextmanager
def _scaled(backbone, scale: float | None):
    """The adapter at the residual scale it will be used at (it trains at 1): pseudo-labels
    come from the embeddings the supervised stage hands the user."""
    encoder = getattr(backbone, "encoder", None)
    if scale is None or not hasattr(encoder, "scale"):
        yield
        return
    encoder.scale = scale
    try:
        yield
    finally:
        encoder.scale = 1.0


def _concat(a, b):
    """Rows of `b` after the rows of `a` (lists of texts, or arrays)."""
    if isinstance(a, np.ndarray):
        return np.concatenate([a, np.asarray(b, dtype=a.dtype)])
    return list(a) + list(b)


def _pseudo_labelled_inputs(inputs: FitInputs, unlabelled: Unlabelled, backbone) -> FitInputs:
    """The labelled training rows, then the unlabelled rows that took a pseudo-label."""
    X_train, y_train = inputs.X_train, inputs.y_train
    rows, classes = confident_rows(
        backbone.embed(X_train),
        y_train,
        backbone.embed(unlabelled.X),
        unlabelled.plan.pseudo_label_margin,
    )
    unlabelled.pseudo_labelled = len(rows)
    X = _concat(X_train, take(unlabelled.X, rows))
    labels = np.concatenate([y_train, classes]).astype(np.int64)
    return replace(inputs, X=X, labels=labels, train_rows=np.arange(len(X)))


def combined_history(histories: list[tuple[str, list[dict]]]) -> list[dict]:
    """One history of the stages in turn: epochs and steps counted on from the stage before,
    each row naming its stage; the loss of the stages around the supervised one is logged as
    `<stage>_loss` (a loss of another objective, on another scale)."""
    rows: list[dict] = []
    epochs = steps = 0
    for stage, history in histories:
        for row in history:
            row = dict(row, stage=stage)
            row["epoch"] = row.get("epoch", 0) + epochs
            row["step"] = row.get("step", 0) + steps
            if stage != "supervised" and "loss" in row:
                row[f"{stage}_loss"] = row.pop("loss")
            rows.append(row)
        if history:
            epochs, steps = rows[-1]["epoch"], rows[-1]["step"]
    return rows
