"""Retrieval metrics of a labelled set against itself, query left out (Musgrave et al. 2020).

For a query q of class c, R = (number of rows of class c) - 1, its other same-class rows.
Rank every other row by cosine similarity to q; rel(i) = 1 if the i-th nearest shares c.

- precision_at_1 = mean over queries of rel(1)
- r_precision    = mean over queries of (1/R) * sum_{i<=R} rel(i)
- map_at_r       = mean over queries of (1/R) * sum_{i<=R} P(i) * rel(i),
                   P(i) = (1/i) * sum_{j<=i} rel(j)

Queries whose class has no other member (R = 0) are left out of all three; if every query
is left out the metrics are NaN.
"""

from __future__ import annotations

import numpy as np

from contrastkit.index import build_index, search_leave_one_out

# Bound on (queries per chunk) x (max R): keeps the neighbour arrays near 64 MB for huge classes.
_CELLS_PER_CHUNK = 8_000_000


def retrieval_metrics(Z_unit: np.ndarray, codes: np.ndarray) -> dict[str, float]:
    """P@1, R-precision and MAP@R of unit rows ``Z_unit`` with integer labels ``codes``."""
    R = np.bincount(codes)[codes] - 1
    queries = np.flatnonzero(R > 0)
    nan = float("nan")
    if len(queries) == 0:
        return {"precision_at_1": nan, "r_precision": nan, "map_at_r": nan}
    max_r = int(R.max())
    index = build_index(Z_unit)
    ranks = np.arange(1, max_r + 1)[None, :]
    p1_sum = rp_sum = ap_sum = 0.0
    chunk = max(1, _CELLS_PER_CHUNK // max_r)
    for start in range(0, len(queries), chunk):
        rows = queries[start : start + chunk]
        neighbours = search_leave_one_out(Z_unit, max_r, rows=rows, index=index)
        r = R[rows]
        rel = (codes[neighbours] == codes[rows, None]) & (ranks <= r[:, None])
        hits = np.cumsum(rel, axis=1)
        p1_sum += rel[:, 0].sum()
        rp_sum += (hits[:, -1] / r).sum()
        ap_sum += ((hits / ranks * rel).sum(axis=1) / r).sum()
    n = len(queries)
    return {
        "precision_at_1": float(p1_sum / n),
        "r_precision": float(rp_sum / n),
        "map_at_r": float(ap_sum / n),
    }
