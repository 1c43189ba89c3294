"""The recommender's options, each checked once, with the defaults and why they are what they
are (measured on the MovieLens 100k validation items; the test items never chose anything)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from contrastkit.errors import OptionError


@dataclass(frozen=True)
class RecommenderOptions:
    # model
    item_text: bool = True  # embed the items' text with the frozen text model (if there is text)
    history: bool = True  # the user tower pools the user's history
    user_ids: bool = False  # add a learned user id embedding (users unseen in training: none)
    hidden: int = 384  # adapters' hidden width
    dim: int = 128  # tower width when items have no features (else the features' width)
    # loss
    temperature: float = 0.05
    logq: bool = True  # correct in-batch negatives for item popularity (Yi et al. 2019)
    mask_hits: bool = True  # leave batch items the user also interacted with out of negatives
    hard_negatives: int = 0  # mined hard negatives per training interaction
    id_dropout: float = 0.0  # chance of dropping a candidate's id embedding in training
    # training
    epochs: int = 5
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 0
    text_model: str | None = None  # None: the shipped all-MiniLM-L6-v2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RecommenderOptions:
        known = {f.name for f in fields(cls)}
        return make_options(**{k: v for k, v in values.items() if k in known})


_POSITIVE_INT = ("hidden", "dim", "epochs")
_NON_NEGATIVE_INT = ("hard_negatives", "seed")
_POSITIVE_FLOAT = ("temperature", "lr")
_BOOL = ("item_text", "history", "user_ids", "logq", "mask_hits")


def make_options(**values) -> RecommenderOptions:
    """Checked options; an unknown or bad one is an OptionError naming it."""
    known = [f.name for f in fields(RecommenderOptions)]
    for name in values:
        if name not in known:
            close = [k for k in known if k.startswith(name[:4])]
            raise OptionError(
                name,
                "unknown option {option}" + ("; did you mean {suggestion}?" if close else ""),
                close[0] if close else None,
            )
    options = RecommenderOptions(**values)
    for name in _BOOL:
        if not isinstance(getattr(options, name), bool):
            raise OptionError(name, "{option} must be True or False")
    for name in _POSITIVE_INT + _NON_NEGATIVE_INT + ("batch_size",):
        value, low = getattr(options, name), 0 if name in _NON_NEGATIVE_INT else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise OptionError(name, f"{{option}} must be a whole number >= {low}, got {value!r}")
    if options.batch_size < 2:
        raise OptionError(
            "batch_size", "{option} must be at least 2 (a batch's other items are its negatives)"
        )
    for name in _POSITIVE_FLOAT + ("weight_decay",):
        value = getattr(options, name)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < 0 or (value == 0 and name in _POSITIVE_FLOAT):
            raise OptionError(name, f"{{option}} must be a positive number, got {value!r}")
    if not isinstance(options.id_dropout, int | float) or not 0 <= options.id_dropout < 1:
        raise OptionError("id_dropout", f"{{option}} must be in [0, 1), got {options.id_dropout!r}")
    if options.seed >= 2**32:
        raise OptionError("seed", "{option} must be below 2**32")
    if not (options.history or options.user_ids):
        raise OptionError(
            "history", "the user tower needs {option} or {others}", others=("user_ids",)
        )
    return options
