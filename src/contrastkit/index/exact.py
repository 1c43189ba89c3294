"""Exact cosine nearest neighbours: a faiss inner-product index over unit rows, searched in
chunks of queries."""

from __future__ import annotations

import faiss
import numpy as np

# Queries searched per faiss call: bounds the (chunk, k) result arrays for large k.
_QUERY_CHUNK = 4096


def build_index(reference: np.ndarray) -> faiss.IndexFlatIP:
    """Exact inner-product faiss index over unit rows (float32)."""
    index = faiss.IndexFlatIP(reference.shape[1])
    index.add(np.ascontiguousarray(reference, dtype=np.float32))
    return index


def search(
    reference: np.ndarray | faiss.IndexFlatIP, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner-product search; rows must already be unit length (float32).

    ``reference`` is an array of rows or an index from :func:`build_index`.
    Returns (similarities, indices), both of shape (len(queries), k), nearest first.
    """
    index = build_index(reference) if isinstance(reference, np.ndarray) else reference
    sims = np.empty((len(queries), k), dtype=np.float32)
    idx = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), _QUERY_CHUNK):
        stop = start + _QUERY_CHUNK
        chunk = np.ascontiguousarray(queries[start:stop], dtype=np.float32)
        sims[start:stop], idx[start:stop] = index.search(chunk, k)
    return sims, idx


def search_leave_one_out(
    Z: np.ndarray,
    k: int,
    rows: np.ndarray | None = None,
    index: faiss.IndexFlatIP | None = None,
) -> np.ndarray:
    """Indices of the ``k`` nearest other rows of ``Z`` for the query ``rows`` (default all).

    Searches k + 1 neighbours; the query's own index is removed wherever it appears (with
    duplicate vectors it need not come first), otherwise the last neighbour is dropped.
    """
    rows = np.arange(len(Z)) if rows is None else np.asarray(rows)
    _, idx = search(Z if index is None else index, Z[rows], k + 1)
    is_self = idx == rows[:, None]
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    return idx[~is_self].reshape(len(rows), k)
