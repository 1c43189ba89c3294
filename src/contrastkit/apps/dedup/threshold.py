"""The similarity threshold above which two rows are duplicates: given, calibrated on labelled
pairs (the F1-best cosine, `evaluation.pairs.calibrate_threshold`), or the default."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from contrastkit.apps.embedder import Embedder
from contrastkit.errors import ConfigError, DataError
from contrastkit.evaluation.pairs import (
    Threshold,
    calibrate_threshold,
    pair_classification,
    pair_cosines,
)

# The default for the shipped all-MiniLM-L6-v2, meant for "says the same thing". On MRPC's
# test pairs (hard negatives: the two sentences share most of their words) a cosine >= 0.9
# is a paraphrase with precision 0.88 (recall 0.32); the F1-best threshold there, 0.60,
# has precision 0.71 on a set that is two-thirds paraphrases, and would call many merely
# related rows duplicates in a corpus where duplicates are rare. Other models, refined ones
# above all, spread their cosines differently: calibrate on labelled pairs.
DEFAULT_THRESHOLD = 0.9


def check_threshold(threshold: float) -> float:
    if not isinstance(threshold, (int, float, np.floating)) or not -1 <= threshold <= 1:
        raise ConfigError(f"the threshold is a cosine similarity in [-1, 1], got {threshold!r}")
    return float(threshold)


def pair_similarities(embedder: Embedder, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """cos(a, b) of each pair, every text embedded once by `embedder`."""
    if len(pairs) == 0:
        raise DataError("no labelled pairs were given to calibrate on")
    texts = sorted({t for pair in pairs for t in pair})
    Z = embedder.encode(texts)
    row = {t: i for i, t in enumerate(texts)}
    a = Z[[row[p[0]] for p in pairs]]
    b = Z[[row[p[1]] for p in pairs]]
    return pair_cosines(a, b)


def calibrate(embedder: Embedder, pairs: Sequence[tuple[str, str]], labels) -> Threshold:
    """The cosine threshold that maximises F1 on labelled pairs (label 1 = duplicates), with
    the precision, recall and F1 it reached on them."""
    scores = pair_similarities(embedder, pairs)
    try:
        return calibrate_threshold(scores, labels)
    except ValueError as exc:  # labels not 0/1, or no positive pair
        raise DataError(f"cannot calibrate a threshold: {exc}") from None


def score_pairs(
    embedder: Embedder, pairs: Sequence[tuple[str, str]], labels, threshold: float
) -> dict:
    """How the threshold does on labelled pairs: average precision, precision, recall, F1 and
    accuracy at `threshold`, and the best F1 any threshold reaches on these very pairs."""
    scores = pair_similarities(embedder, pairs)
    try:
        return pair_classification(scores, labels, check_threshold(threshold))
    except ValueError as exc:
        raise DataError(f"cannot score the pairs: {exc}") from None
