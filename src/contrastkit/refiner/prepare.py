"""The first step of a fit: the rows checked, the mode chosen, the labels encoded, the
validation rows set apart. Nothing is computed yet."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from contrastkit.config.defaults import default_method
from contrastkit.data.inputs import check_input
from contrastkit.data.labels import check_no_missing, encode_labels, label_array
from contrastkit.data.splits import stratified_split, take
from contrastkit.errors import ConfigError, DataError, OptionError
from contrastkit.methods.base import MethodSpec
from contrastkit.methods.registry import get_method

MODES_BY_KIND = {"text": ("adapter", "finetune"), "vectors": ("adapter",), "images": ("finetune",)}


@dataclass
class FitInputs:
    """The rows of a fit and the method that trains on them. `labels` are class ids of every
    row (the scores of labelled pairs; None without labels); the model trains on
    `train_rows`; `val_X`/`val_y` (class ids, -1 for a class training never saw) pick the
    best epoch."""

    spec: MethodSpec
    X: object
    kind: str  # text, vectors, images or pairs
    mode: str
    labels: np.ndarray | None
    classes: list | None
    train_rows: np.ndarray
    val_X: object = None
    val_y: np.ndarray | None = None

    @property
    def base_kind(self) -> str:
        """What the encoder sees: both columns of text pairs are texts."""
        return "text" if self.kind == "pairs" else self.kind

    @property
    def n_classes(self) -> int | None:
        return len(self.classes) if self.classes else None

    @property
    def X_train(self):
        return take(self.X, self.train_rows)

    @property
    def y_train(self) -> np.ndarray | None:
        return None if self.labels is None else self.labels[self.train_rows]


def prepare_inputs(spec: MethodSpec | None, config, X, y, validation: tuple | None) -> FitInputs:
    """Check X (and y), choose the method when none is named (`default_method`), resolve the
    mode, encode the labels, and set the validation rows apart: the `validation` given, else
    `config.val_fraction` of each class, else none."""
    X, kind = check_input(X)
    spec = spec or _default_spec(kind, y)
    mode = resolve_mode(spec, config, kind)
    if len(X) < 2:
        raise DataError("training needs at least two rows")
    if kind == "pairs" and spec.needs_labels:
        return _labelled_pairs(spec, config, X, y, mode, validation)
    labels, classes = _labels(spec, y, len(X))
    inputs = FitInputs(spec, X, kind, mode, labels, classes, np.arange(len(X)))
    if labels is None:
        return inputs
    if validation is not None:
        val_X, val_kind = check_input(validation[0])
        if val_kind != kind:
            raise DataError(f"validation rows are {val_kind} but the training rows are {kind}")
        inputs.val_X, inputs.val_y = val_X, _encode_like(validation[1], classes, len(val_X))
    elif config.val_fraction:
        inputs.train_rows, held = stratified_split(labels, config.val_fraction, config.seed)
        if len(held):
            inputs.val_X, inputs.val_y = take(X, held), labels[held]
    return inputs


def resolve_mode(spec: MethodSpec, config, kind: str) -> str:
    """The mode for this input: the user's, else the method's default, else the kind's first;
    ConfigError/DataError when the method or mode does not apply to the input."""
    kinds = spec.kinds or ("text", "vectors", "images")
    if kind == "pairs" and kind not in kinds:
        raise DataError(
            f"pairs of texts are for paired methods (clip); method {spec.name} takes single texts"
        )
    if kind not in kinds:
        wanted = " or ".join("(a, b) text pairs" if k == "pairs" else k for k in kinds)
        raise DataError(
            f"method {spec.name} takes {wanted}, but was given {kind} ({spec.description})"
        )
    allowed = MODES_BY_KIND["text" if kind == "pairs" else kind]
    mode = config.mode or spec.default_modes.get(kind) or allowed[0]
    if mode not in allowed:
        why = {
            "vectors": "vectors have no base encoder to fine-tune; use mode adapter",
            "images": "no pretrained image model is shipped, so the CNN itself is trained; use mode finetune",
        }[kind]
        raise ConfigError(f"mode {mode} does not apply to {kind}: {why}")
    if spec.check_fit is not None:
        spec.check_fit(kind, mode, config.method_options())
    return mode


def _default_spec(kind: str, y) -> MethodSpec:
    name = default_method(kind, labelled=y is not None)
    if name is None:
        raise DataError(
            "the rows have no labels and no method was named: the default method supcon is "
            "supervised and needs labels; pass y, or name a self-supervised method (simclr, "
            "simcse, moco, byol, swav, ...)"
        )
    return get_method(name)


def _labelled_pairs(spec: MethodSpec, config, X, y, mode: str, validation) -> FitInputs:
    """Pairs with a score each (1 = duplicate, 0 = not, or a graded similarity)."""
    if y is None:
        raise DataError(
            f"method {spec.name} ranks labelled pairs and needs a score per pair: pass y (1 = "
            "duplicate, 0 = not), or use method clip for pairs without labels"
        )
    if validation is not None or config.val_fraction:
        raise OptionError(
            "val_fraction",
            "{option} (and validation rows) apply to labelled rows; pairs train for the "
            "planned epochs: leave it out",
        )
    scores = label_array(y, len(X)).astype(object)
    check_no_missing(scores, "pair scores")
    try:
        scores = scores.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(
            "pair labels must be numbers (1 = duplicate, 0 = not, or similarity scores)"
        ) from None
    if len(np.unique(scores)) < 2:
        raise DataError(
            "every pair has the same score, so there is nothing to rank; label some 0, some 1"
        )
    return FitInputs(spec, X, "pairs", mode, scores, None, np.arange(len(X)))


def _labels(spec: MethodSpec, y, n: int) -> tuple[np.ndarray | None, list | None]:
    """(class ids, classes) for a supervised method; (None, None) for the others, which
    ignore y."""
    if not spec.needs_labels:
        return None, None
    if y is None:
        raise DataError(f"method {spec.name} is supervised and needs labels: pass y")
    encoded = encode_labels(label_array(y, n))
    singletons = encoded.singleton_classes()
    if singletons:
        shown = ", ".join(map(str, singletons[:5]))
        warnings.warn(
            f"{len(singletons)} classes have a single row ({shown}...): they have no positive "
            "pair and only serve as negatives; add rows to them for better results",
            stacklevel=4,
        )
    return encoded.train, encoded.classes


def _encode_like(y, classes: list, n: int) -> np.ndarray:
    """Validation labels as the training class ids (-1 for classes training never saw)."""
    index = {c: i for i, c in enumerate(classes)}
    values = label_array(y, n).tolist()
    return np.asarray([index.get(v, -1) for v in values], dtype=np.int64)
