"""Choose how many IVF cells a search probes: the fewest that reach a recall target against
exact search, measured on a sample of the indexed rows themselves."""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from contrastkit.index.kinds import cell_count, search_keys

# Recall@10 an approximate index aims at unless told otherwise.
DEFAULT_RECALL = 0.95


@dataclass(frozen=True)
class Probe:
    """The cells to probe, and the recall@k they reached on the sample (1.0 when exact)."""

    nprobe: int
    recall: float
    k: int
    sample: int


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found_i & truth_i| / |truth_i| (ids < 0 are padding)."""
    hits = total = 0
    for got, want in zip(found, truth, strict=True):
        want = want[want >= 0]
        hits += len(np.intersect1d(got[got >= 0], want))
        total += len(want)
    return hits / total if total else 1.0


def tune_nprobe(
    index: faiss.Index,
    X: np.ndarray,
    keys: np.ndarray,
    k: int = 10,
    target: float = DEFAULT_RECALL,
    sample: int = 256,
    seed: int = 0,
) -> Probe:
    """The smallest nprobe (1, 2, 4, ... cells) whose recall@k on `sample` rows of X (stored
    under `keys`) reaches `target`. Each sampled row is a query with itself left out of both
    result lists. A kind that cannot reach the target (product quantisation) gets the smallest
    nprobe within 0.005 of the best recall seen."""
    nlist = cell_count(index)
    if nlist == 0:
        return Probe(1, 1.0, k, 0)
    rows = np.random.default_rng(seed).choice(len(X), min(sample, len(X)), replace=False)
    queries = np.ascontiguousarray(X[rows], dtype=np.float32)
    k = min(k, len(X) - 1)
    if k < 1:
        return Probe(1, 1.0, k, 0)
    _, exact = faiss.knn(
        queries, np.ascontiguousarray(X, dtype=np.float32), k + 1, faiss.METRIC_INNER_PRODUCT
    )
    truth = _without_self(keys[exact], keys[rows], k)
    tried: list[Probe] = []
    nprobe = 1
    while True:
        _, found = search_keys(index, queries, k + 1, nprobe=nprobe)
        probe = Probe(nprobe, recall_at_k(_without_self(found, keys[rows], k), truth), k, len(rows))
        tried.append(probe)
        if probe.recall >= target or nprobe >= nlist:
            break
        nprobe = min(2 * nprobe, nlist)
    if tried[-1].recall >= target:
        return tried[-1]
    best = max(p.recall for p in tried)
    return next(p for p in tried if p.recall >= best - 0.005)


def _without_self(found: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """The first k keys of each row of `found` other than the query's own key."""
    out = np.full((len(found), k), -1, dtype=np.int64)
    for i, (row, key) in enumerate(zip(found, own, strict=True)):
        kept = row[row != key][:k]
        out[i, : len(kept)] = kept
    return out
