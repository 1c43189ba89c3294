"""The validation split and score used for early stopping."""

from __future__ import annotations

import numpy as np


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): `fraction` of each class held out, at least one row of
    every class kept for training (classes with a single row stay whole)."""
    rng = np.random.default_rng([seed, 7])
    train, val = [], []
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        k = min(int(round(fraction * len(rows))), len(rows) - 1)
        val.extend(rows[:k].tolist())
        train.extend(rows[k:].tolist())
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))


def knn_score(
    train_Z: np.ndarray, train_y: np.ndarray, val_Z: np.ndarray, val_y: np.ndarray
) -> float:
    """kNN-1 accuracy of the validation rows against the training rows (cosine)."""
    from contrastkit.evaluation import knn_predict

    predicted = knn_predict(train_Z, train_y, val_Z, k=1)
    return float(np.mean(predicted == val_y))
