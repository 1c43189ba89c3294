"""Stratified splits of labelled rows: validation rows for early stopping, evaluation rows when
there is no test file, and the two halves of a labelled test set."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def stratified_split(
    labels: np.ndarray,
    fraction: float,
    seed: int,
    *,
    stream: int = 7,
    rounding: Callable[[float], float] = round,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows): `rounding(fraction * rows)` of each class held out, at least
    one row of every class kept (classes with a single row stay whole). `stream` separates the
    random draws of different uses of the same seed."""
    rng = np.random.default_rng([seed, stream])
    kept, held = [], []
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        k = min(int(rounding(fraction * len(rows))), len(rows) - 1)
        held.extend(rows[:k].tolist())
        kept.extend(rows[k:].tolist())
    return np.sort(np.asarray(kept, dtype=np.int64)), np.sort(np.asarray(held, dtype=np.int64))


def stratified_halves(codes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference rows, query rows): half of each class each way (rounded down for the query
    half), seeded; a class with a single row goes to the reference half."""
    return stratified_split(codes, 0.5, seed, stream=11, rounding=math.floor)


def take(X, rows: np.ndarray):
    """Rows of an array or a list, by index."""
    return X[rows] if isinstance(X, np.ndarray) else [X[i] for i in rows]
