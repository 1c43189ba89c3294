"""Alignment and uniformity of unit embeddings (Wang & Isola 2020). Lower is better for both.

- alignment  = mean over ordered positive pairs (i != j, same label) of ||z_i - z_j||^2.
  Exact in O(n d) without pairs: per class c with n_c rows and sum s_c of its unit rows,
  sum_{i,j in c} ||z_i - z_j||^2 = 2 n_c^2 - 2 ||s_c||^2, over n_c (n_c - 1) ordered pairs.
- uniformity = log mean over pairs i != j of exp(-2 ||z_i - z_j||^2) (t = 2). With unit rows
  ||z_i - z_j||^2 = 2 - 2 z_i.z_j, so each term is exp(4 z_i.z_j - 4), within [e^-8, 1]
  (no overflow or underflow): float32 products summed in float64 over row chunks, never an n x n matrix. Above ``max_rows`` rows it is
  estimated on a seeded uniform subset of ``max_rows`` rows (the mean over the subset's pairs
  is an unbiased estimate of the mean over all pairs).
"""

from __future__ import annotations

import numpy as np

UNIFORMITY_MAX_ROWS = 10_000
_ROW_CHUNK = 1024


def alignment(Z_unit: np.ndarray, codes: np.ndarray) -> float:
    """Mean squared distance over same-label pairs of unit rows; NaN when there are none."""
    n_classes = int(codes.max()) + 1
    sums = np.zeros((n_classes, Z_unit.shape[1]), dtype=np.float64)
    np.add.at(sums, codes, Z_unit.astype(np.float64))
    sizes = np.bincount(codes, minlength=n_classes).astype(np.float64)
    sq_norms = (Z_unit.astype(np.float64) ** 2).sum(axis=1)
    # General form 2 n_c sum ||z||^2 - 2 ||s_c||^2 (equals 2 n_c^2 - 2 ||s_c||^2 on unit rows).
    per_class_sq = np.bincount(codes, weights=sq_norms, minlength=n_classes)
    total = (2 * sizes * per_class_sq - 2 * (sums**2).sum(axis=1)).sum()
    pairs = (sizes * (sizes - 1)).sum()
    if pairs == 0:
        return float("nan")
    return float(max(total, 0.0) / pairs)


def uniformity(Z_unit: np.ndarray, seed: int = 0, max_rows: int = UNIFORMITY_MAX_ROWS) -> float:
    """log of the mean of exp(-2 ||z_i - z_j||^2) over pairs i != j; NaN for fewer than 2 rows."""
    n = len(Z_unit)
    if n < 2:
        return float("nan")
    if n > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
        Z_unit, n = Z_unit[rows], max_rows
    Z = np.ascontiguousarray(Z_unit, dtype=np.float32)  # float32 products, float64 sums
    sq = (Z.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    total = 0.0
    for start in range(0, n, _ROW_CHUNK):
        block = Z[start : start + _ROW_CHUNK]
        dist2 = sq[start : start + _ROW_CHUNK, None] + sq[None, :] - 2.0 * block @ Z.T
        terms = np.exp(-2.0 * np.maximum(dist2, 0.0))
        terms[np.arange(len(block)), np.arange(start, start + len(block))] = 0.0
        total += terms.sum(dtype=np.float64)
    return float(np.log(total / (n * (n - 1))))
