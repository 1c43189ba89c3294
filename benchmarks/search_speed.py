"""Search speed and memory on synthetic clustered vectors (d = 384, 1000 queries, k = 10):

- `speed`: exact search with contrastkit's SearchIndex against bare faiss IndexFlatIP and
  sentence-transformers' util.semantic_search (dot_score, the right score for unit rows),
  medians of repeats, all in one run so that the ratios share the machine's state;
- `approx`: the approximate kinds against exact search at one size: build time, search time,
  recall@10 on held-out queries, bytes a row of the saved index;
- `hnsw`: faiss HNSW at one size, to compare with IVF (the reason IVF is the kind offered).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from benchmarks.search_data import clustered_vectors

from contrastkit.apps.embedder import load_embedder
from contrastkit.apps.search import SearchIndex
from contrastkit.index.tuning import recall_at_k

DIM, QUERIES, K = 384, 1000, 10


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """(median seconds, every run's seconds) of `repeats` calls after one warm-up call."""
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    return clustered_vectors(n, DIM), clustered_vectors(QUERIES, DIM, seed=99)


def speed(n: int, repeats: int) -> list[dict]:
    """One record per method: exact top-10 of 1000 queries over n rows."""
    import torch
    from sentence_transformers import util

    X, Q = data(n)
    vectors = load_embedder(None, vectors=True)
    index = SearchIndex.from_embeddings(X, vectors, kind="flat")
    flat = faiss.IndexFlatIP(DIM)
    flat.add(X)
    corpus, queries = torch.from_numpy(X), torch.from_numpy(Q)

    def st() -> object:
        return util.semantic_search(queries, corpus, top_k=K, score_function=util.dot_score)

    methods = {
        "contrastkit SearchIndex (flat)": lambda: index.search_embeddings(Q, K),
        "faiss IndexFlatIP": lambda: flat.search(Q, K),
        "sentence-transformers semantic_search": st,
    }
    records = []
    for name, fn in methods.items():
        median, runs = timed(fn, repeats)
        records.append(
            {"bench": "speed", "rows": n, "method": name, "seconds": median, "runs": runs}
        )
    return records


def saved_bytes(index: faiss.Index) -> int:
    """Bytes of the index as faiss writes it to disk."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.faiss")
        faiss.write_index(index, path)
        return Path(path).stat().st_size


def approx(n: int, repeats: int, kinds: tuple[str, ...]) -> list[dict]:
    """Exact (flat) and each approximate kind at n rows."""
    X, Q = data(n)
    vectors = load_embedder(None, vectors=True)
    records = []
    truth = None
    for kind in ("flat", *kinds):
        start = time.perf_counter()
        index = SearchIndex.from_embeddings(X, vectors, kind=kind)
        build = time.perf_counter() - start
        median, runs = timed(lambda index=index: index.search_embeddings(Q, K), repeats)
        found = np.array([[h.id for h in hits] for hits in index.search_embeddings(Q, K)])
        truth = found if truth is None else truth
        records.append({
            "bench": "approx", "rows": n, "kind": kind, "build_seconds": build,
            "seconds": median, "runs": runs, "recall_at_10": recall_at_k(found, truth),
            "nprobe": index.probe.nprobe, "tuned_recall": index.probe.recall,
            "bytes_per_row": saved_bytes(index.index) / n,
        })  # fmt: skip
        del index
    return records


def hnsw(n: int, repeats: int, M: int = 32) -> list[dict]:
    """faiss HNSW{M} at n rows: build time, and for each efSearch the search time and recall."""
    X, Q = data(n)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(X)
    _, truth = flat.search(Q, K)
    index = faiss.IndexHNSWFlat(DIM, M, faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    index.add(X)
    build = time.perf_counter() - start
    records = []
    for ef in (16, 32, 64, 128):
        index.hnsw.efSearch = ef
        median, runs = timed(lambda: index.search(Q, K), repeats)
        _, found = index.search(Q, K)
        records.append({
            "bench": "hnsw", "rows": n, "M": M, "ef_search": ef, "build_seconds": build,
            "seconds": median, "runs": runs, "recall_at_10": recall_at_k(found, truth),
            "bytes_per_row": saved_bytes(index) / n,
        })  # fmt: skip
    return records
