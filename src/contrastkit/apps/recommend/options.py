"""The recommender's options, each checked once, with the defaults and why they are what they
are.

The defaults follow the literature where it speaks (logQ correction: Yi et al. 2019; in-batch
negatives with a normalised temperature around 0.05; adapters that start as the identity, so
training starts from the content-only model) and were then checked on the MovieLens 100k
VALIDATION items only (NDCG@10, leave-last-out, seed 0, one CPU thread; the test items chose
nothing). Each line changes one thing from the defaults:

    defaults (5 epochs, temperature 0.05, hidden 384, batch 1024)   0.0948
    adapters' hidden width 1536 (ResidualAdapter's 4 x dim)          0.0953, twice the time
    temperature 0.1 / 0.02                                           0.0921 / 0.0897
    epochs 3 / 8 / 10 (the cosine schedule spans them)               0.0903 / 0.0925 / 0.0885
    batch size 512                                                   0.0931
    no logQ correction / no accidental-hit mask                      0.0689 / 0.0741
    user id embedding added                                          0.0876
    5 mined hard negatives per interaction                           0.0940, 1.5 x the time
    id dropout 0.3                                                   0.0908

Id dropout trades accuracy on known items for accuracy on new ones. With the training
interactions of a fifth of the items removed (`python -m benchmarks.recommend`'s cold-start
protocol), validation NDCG@10 of all users / of the 183 whose item is one of those: id dropout
0 -> 0.0766 / 0.0075, 0.3 -> 0.0699 / 0.0098, 0.5 -> 0.0677 / 0.0117 (id-only models: 0.0000).
The default keeps 0: the text tower alone already ranks new items, and most traffic is known
items; raise it for a catalogue where new items matter most.
"""

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
