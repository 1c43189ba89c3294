"""Pseudo-labels: the class of an unlabelled row's nearest labelled rows, and how sure that is."""

from __future__ import annotations

import numpy as np

CHUNK_ROWS = 2048  # unlabelled rows scored at a time: a chunk x labelled rows matrix in memory


def nearest_class_margins(
    Z_labelled: np.ndarray, codes: np.ndarray, Z_unlabelled: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(class, margin) of each unlabelled row: the class of its most similar labelled row, and
    by how much that cosine beats the most similar row of any other class (0 for a tie; the
    largest possible, 2, when the labelled rows hold a single class). Rows are unit length."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    classes = sorted_codes[starts]
    reference = np.ascontiguousarray(Z_labelled[order], dtype=np.float32)
    best = np.empty(len(Z_unlabelled), dtype=np.int64)
    margin = np.empty(len(Z_unlabelled), dtype=np.float64)
    for start in range(0, len(Z_unlabelled), CHUNK_ROWS):
        part = np.asarray(Z_unlabelled[start : start + CHUNK_ROWS], dtype=np.float32)
        per_class = np.maximum.reduceat(part @ reference.T, starts, axis=1)
        stop = start + len(part)
        best[start:stop] = classes[per_class.argmax(axis=1)]
        if len(classes) == 1:
            margin[start:stop] = 2.0
            continue
        top_two = np.partition(per_class, -2, axis=1)[:, -2:]
        margin[start:stop] = top_two[:, 1].astype(np.float64) - top_two[:, 0]
    return best, margin


def confident_rows(
    Z_labelled: np.ndarray, codes: np.ndarray, Z_unlabelled: np.ndarray, min_margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, classes): the unlabelled rows whose nearest class wins by at least `min_margin`,
    and those classes."""
    best, margin = nearest_class_margins(Z_labelled, codes, Z_unlabelled)
    rows = np.flatnonzero(margin >= min_margin)
    return rows, best[rows]
