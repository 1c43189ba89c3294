"""kNN on cosine neighbours (found by `contrastkit.index`): voting, predictions, kNN accuracy."""

from __future__ import annotations

import warnings

import numpy as np

from contrastkit.data.labels import factorize
from contrastkit.index import search, search_leave_one_out

from ._arrays import check_embeddings, check_labels, l2_normalise


def vote(neighbour_codes: np.ndarray) -> np.ndarray:
    """Majority label of each row of neighbour labels (nearest first).

    Ties go to the tied class whose first occurrence is nearest: for every position we count
    how often its label occurs in the row, and pick the first position holding the maximum.
    """
    n, k = neighbour_codes.shape
    out = np.empty(n, dtype=neighbour_codes.dtype)
    rows_per_chunk = max(1, 2**22 // (k * k))
    for start in range(0, n, rows_per_chunk):
        codes = neighbour_codes[start : start + rows_per_chunk]
        counts = (codes[:, :, None] == codes[:, None, :]).sum(axis=2)
        first_max = np.argmax(counts == counts.max(axis=1, keepdims=True), axis=1)
        out[start : start + len(codes)] = codes[np.arange(len(codes)), first_max]
    return out


def clamp_k(k: int, n_reference: int, what: str) -> int:
    """``k`` limited to ``n_reference`` (with a warning); k < 1 raises ValueError."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    if k > n_reference:
        warnings.warn(
            f"k={k} is larger than the {n_reference} {what}; using k={n_reference}.",
            stacklevel=3,
        )
        return n_reference
    return int(k)


def knn_predict(
    train_Z: np.ndarray, train_y: np.ndarray, test_Z: np.ndarray, k: int = 1
) -> np.ndarray:
    """Predict each test row's label by cosine kNN over the train rows.

    Rows are L2-normalised here. Majority vote of the ``k`` nearest train rows; a tie between
    classes goes to the class of the nearest row among them. ``k`` larger than the train set
    is clamped with a warning. Returns an array of train labels, one per test row.
    """
    return knn_predict_many(train_Z, train_y, test_Z, (k,))[k]


def knn_predict_many(
    train_Z: np.ndarray, train_y: np.ndarray, test_Z: np.ndarray, ks: tuple[int, ...] = (1, 10)
) -> dict[int, np.ndarray]:
    """`knn_predict` for several k from one search (the search is the cost): {k: labels}."""
    train_Z = check_embeddings(train_Z, "train_Z")
    test_Z = check_embeddings(test_Z, "test_Z")
    train_y = check_labels(train_y, len(train_Z), "train_y", "train_Z")
    if train_Z.shape[1] != test_Z.shape[1]:
        raise ValueError(
            f"train_Z has {train_Z.shape[1]} dims but test_Z has {test_Z.shape[1]}; "
            "both must come from the same encoder."
        )
    if not ks:
        raise ValueError("ks must name at least one k")
    clamped = {k: clamp_k(k, len(train_Z), "train rows") for k in ks}
    _, (codes,) = factorize(train_y)
    _, idx = search(
        l2_normalise(train_Z, "train_Z"), l2_normalise(test_Z, "test_Z"), max(clamped.values())
    )
    first = _first_index_of(codes)
    return {k: np.asarray(train_y)[first[vote(codes[idx[:, :c]])]] for k, c in clamped.items()}


def knn_predict_loo(Z: np.ndarray, y: np.ndarray, k: int = 1) -> np.ndarray:
    """Leave-one-out cosine kNN: predict each row from the other rows of the same set."""
    Z = check_embeddings(Z, "Z")
    y = check_labels(y, len(Z), "y", "Z")
    if len(Z) < 2:
        raise ValueError("leave-one-out kNN needs at least 2 rows; got 1.")
    k = clamp_k(k, len(Z) - 1, "other rows")
    _, (codes,) = factorize(y)
    idx = search_leave_one_out(l2_normalise(Z, "Z"), k)
    return np.asarray(y)[_first_index_of(codes)[vote(codes[idx])]]


def _first_index_of(codes: np.ndarray) -> np.ndarray:
    """For every code, the index of one row holding it (to map codes back to original labels)."""
    _, first = np.unique(codes, return_index=True)  # codes are 0..C-1, all present
    return first


def knn_score(
    train_Z: np.ndarray, train_y: np.ndarray, val_Z: np.ndarray, val_y: np.ndarray
) -> float:
    """kNN-1 accuracy of the validation rows against the training rows (cosine)."""
    predicted = knn_predict(train_Z, train_y, val_Z, k=1)
    return float(np.mean(predicted == val_y))
