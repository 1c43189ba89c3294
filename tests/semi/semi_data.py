"""Tiny data for the tests of unlabelled rows: scikit-learn's digits as vectors (or 8x8
images), a few labelled rows a class and the rest of a training part unlabelled."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


def few_labelled(per_class: int = 3, unlabelled: int = 200, test: int = 200):
    """(X, y, X_unlabelled, y_unlabelled, X_test, y_test) of seeded, disjoint digit rows."""
    X, y = digits()
    order = np.random.default_rng(0).permutation(len(X))
    labelled = np.concatenate([order[y[order] == c][:per_class] for c in range(10)])
    rest = np.setdiff1d(order, labelled)
    rest = rest[np.random.default_rng(1).permutation(len(rest))]
    u, t = rest[:unlabelled], rest[unlabelled : unlabelled + test]
    return X[labelled], y[labelled], X[u], y[u], X[t], y[t]


def as_images(X: np.ndarray) -> np.ndarray:
    """Digit vectors as uint8 images (n, 8, 8)."""
    return (X.reshape(-1, 8, 8) * 16).clip(0, 255).astype(np.uint8)


def write_files(folder: Path) -> dict[str, Path]:
    """labelled.npz, unlabelled.npz (its labels kept: they must be ignored), unlabelled.npy
    (the same rows without labels) and test.npz."""
    X, y, U, yu, T, yt = few_labelled()
    files = {name: folder / name for name in ("labelled.npz", "unlabelled.npz", "unlabelled.npy", "test.npz")}  # fmt: skip
    np.savez(files["labelled.npz"], x=X, y=y)
    np.savez(files["unlabelled.npz"], x=U, y=(yu + 3) % 10)  # wrong labels: ignored
    np.save(files["unlabelled.npy"], U)
    np.savez(files["test.npz"], x=T, y=yt)
    return files
