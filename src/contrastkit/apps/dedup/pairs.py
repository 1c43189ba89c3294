"""Every pair of rows whose cosine reaches a threshold, found through a faiss index in chunks
of rows (a range search per chunk) and never through the n x n similarity matrix.

Rows with byte-identical embeddings (the same text twice) are set aside first and linked to
the first of them: k copies of a row give k - 1 pairs instead of k(k - 1)/2, so a text
repeated a hundred thousand times costs memory in proportion to that, not to its square.
Candidates from an approximate index are scored again exactly from the embeddings.
"""

from __future__ import annotations

import numpy as np

from contrastkit.apps.progress import progress_bar
from contrastkit.errors import UserError
from contrastkit.index.kinds import (
    EXACT_UP_TO,
    add_rows,
    choose_kind,
    make_index,
    range_keys,
    train_index,
)
from contrastkit.index.tuning import DEFAULT_RECALL, tune_nprobe

# Rows searched per faiss range search: from FIRST_CHUNK_ROWS up to CHUNK_ROWS, as many as
# keep a chunk's candidates near _HITS_PER_CHUNK.
FIRST_CHUNK_ROWS, CHUNK_ROWS, _HITS_PER_CHUNK = 64, 4096, 2_000_000
# How far below the threshold an index's own (rounded) scores may fall for a pair that reaches
# it exactly; the candidates are then scored exactly.
_SLACK = {"flat": 1e-4, "ivf": 1e-4, "ivf-sq8": 0.02, "ivf-pq": 0.1}
DEFAULT_MAX_PAIRS = 50_000_000
# float32 scores of unit rows differ from float64 ones by up to ~1e-7: a pair whose cosine is
# the threshold (a calibrated threshold is the score of some labelled pair) must still count.
_ROUNDING = 1e-6


def dedup_kind(n_rows: int, kind: str = "auto") -> str:
    """ "auto": exact up to EXACT_UP_TO rows, else IVF with 8-bit codes (a quarter of the
    memory of float rows; scores are checked exactly anyway)."""
    if kind == "auto":
        return "flat" if n_rows <= EXACT_UP_TO else "ivf-sq8"
    return choose_kind(n_rows, kind)


def identical_rows(Z: np.ndarray) -> np.ndarray:
    """For each row, the first row with the same bytes (the row itself when none is earlier)."""
    weights = np.random.default_rng(0).integers(1, 2**63, size=Z.shape[1], dtype=np.uint64)
    hashes = np.empty(len(Z), dtype=np.uint64)
    words = np.ascontiguousarray(Z, dtype=np.float32).view(np.uint32)
    with np.errstate(over="ignore"):  # the hash wraps around on purpose
        for start in range(0, len(Z), 65536):
            part = words[start : start + 65536].astype(np.uint64)
            hashes[start : start + 65536] = (part * (weights | np.uint64(1))).sum(axis=1)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    rep = first[inverse.ravel()]
    copies = np.flatnonzero(rep != np.arange(len(Z)))
    collided = copies[~(words[copies] == words[rep[copies]]).all(axis=1)]
    rep[collided] = collided  # equal hashes of different rows: not copies
    return rep


def duplicate_pairs(
    Z: np.ndarray,
    threshold: float,
    kind: str = "auto",
    recall: float = DEFAULT_RECALL,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b, score) of every pair a < b of unit rows with cos >= threshold (approximate kinds
    may miss some), sorted by a then b."""
    rep = identical_rows(Z)
    distinct = np.flatnonzero(rep == np.arange(len(Z)))
    U = Z if len(distinct) == len(Z) else Z[distinct]
    a, b, score = _pairs_of_distinct(
        U, threshold, dedup_kind(len(U), kind), recall, max_pairs, progress
    )
    copies = np.flatnonzero(rep != np.arange(len(Z)))
    if len(a) + len(copies) > max_pairs:
        raise _too_many(max_pairs, threshold)
    a = np.concatenate([distinct[a], rep[copies]])
    b = np.concatenate([distinct[b], copies])
    score = np.concatenate([score, np.ones(len(copies), dtype=np.float32)])
    order = np.lexsort((b, a))
    return a[order], b[order], score[order]


def _pairs_of_distinct(
    U: np.ndarray, threshold: float, kind: str, recall: float, max_pairs: int, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(U)
    index = make_index(kind, U.shape[1], n)
    train_index(index, U)
    add_rows(index, U, np.arange(n))
    nprobe = tune_nprobe(index, U, np.arange(n), target=recall).nprobe
    codes, scores, found, start, rows = [], [], 0, 0, FIRST_CHUNK_ROWS
    with progress_bar(n, "finding duplicates", progress and n > CHUNK_ROWS) as advance:
        while start < n:
            stop = min(start + rows, n)
            limits, _, hits = range_keys(index, U[start:stop], threshold - _SLACK[kind], nprobe)
            query = np.repeat(np.arange(start, stop), np.diff(limits.astype(np.int64)))
            a, b = np.minimum(query, hits), np.maximum(query, hits)
            a, b = a[a != b], b[a != b]
            exact = exact_scores(U, a, b)
            keep = exact >= threshold - _ROUNDING
            codes.append(a[keep] * n + b[keep])
            scores.append(exact[keep])
            found += int(keep.sum())
            if found > 2 * max_pairs:  # each pair can be found from both of its rows
                raise _too_many(max_pairs, threshold)
            advance(stop - start)
            # Start small and grow: the hits of one chunk are held at once, and a low
            # threshold can give every row thousands.
            per_row = len(hits) / (stop - start)
            rows = int(np.clip(_HITS_PER_CHUNK / max(per_row, 1.0), FIRST_CHUNK_ROWS, CHUNK_ROWS))
            start = stop
    codes_all = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    unique, first = np.unique(codes_all, return_index=True)
    score = np.concatenate(scores)[first] if len(first) else np.zeros(0, np.float32)
    if len(unique) > max_pairs:
        raise _too_many(max_pairs, threshold)
    return unique // n, unique % n, score


def exact_scores(U: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """cos(U[a_i], U[b_i]) of unit rows, float32, gathering `chunk` pairs at a time."""
    out = np.empty(len(a), dtype=np.float32)
    for start in range(0, len(a), chunk):
        part = slice(start, start + chunk)
        out[part] = np.einsum("ij,ij->i", U[a[part]], U[b[part]])
    return out


def _too_many(max_pairs: int, threshold: float) -> UserError:
    return UserError(
        f"more than {max_pairs:,} pairs of rows have a cosine of at least {threshold:g}; raise "
        "the threshold (most rows would be duplicates of each other at this one), or raise "
        "max_pairs (--max-pairs) if you have the memory"
    )
