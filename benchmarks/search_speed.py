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


def timed(fn: Callable[[], object], repeats: int, warm_up: bool = True) -> dict:
    """`repeats` calls of fn (after one warm-up call unless `warm_up` is False): median wall
    seconds, every run's seconds, median CPU seconds of this process (all its threads: on a
    shared machine the wall time is other jobs' too), the load average after, the last result."""
    if warm_up:
        fn()
    runs, cpu = [], []
    result = None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        runs.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"seconds": statistics.median(runs), "runs": runs,
            "cpu_seconds": statistics.median(cpu), "load_average": os.getloadavg(),
            "result": result}  # fmt: skip


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    return clustered_vectors(n, DIM), clustered_vectors(QUERIES, DIM, seed=99)


def speed(n: int, repeats: int) -> list[dict]:
    """One record per method: exact top-10 of 1000 queries over n rows. The methods take turns
    (one call of each per round, `repeats` rounds after a warm-up round of 10 queries), so
    that a change in the machine's load falls on all of them alike."""
    import torch
    from sentence_transformers import util

    X, Q = data(n)
    vectors = load_embedder(None, vectors=True)
    index = SearchIndex.from_embeddings(X, vectors, kind="flat")
    flat = faiss.IndexFlatIP(DIM)
    flat.add(X)
    corpus = torch.from_numpy(X)

    def st(q: np.ndarray) -> object:
        return util.semantic_search(
            torch.from_numpy(q), corpus, top_k=K, score_function=util.dot_score
        )

    methods = {
        "contrastkit SearchIndex (flat)": lambda q: index.search_embeddings(q, K),
        "faiss IndexFlatIP": lambda q: flat.search(q, K),
        "sentence-transformers semantic_search": st,
    }
    for fn in methods.values():
        fn(Q[:10])
    runs: dict[str, list[dict]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            runs[name].append(timed(lambda fn=fn: fn(Q), 1, warm_up=False))
    return [
        {"bench": "speed", "rows": n, "method": name, "interleaved": True,
         "seconds": statistics.median(r["seconds"] for r in got),
         "runs": [r["seconds"] for r in got],
         "cpu_seconds": statistics.median(r["cpu_seconds"] for r in got),
         "load_average": [r["load_average"][0] for r in got]}
        for name, got in runs.items()
    ]  # fmt: skip


def saved_bytes(index: faiss.Index) -> int:
    """Bytes of the index as faiss writes it to disk."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.faiss")
        faiss.write_index(index, path)
        return Path(path).stat().st_size


def approx(n: int, repeats: int, kinds: tuple[str, ...]) -> list[dict]:
    """Exact (flat) and each approximate kind at n rows. The exact search at 1e6 rows takes a
    minute: it runs `repeats` times without a warm-up call, its last answer is the truth."""
    X, Q = data(n)
    vectors = load_embedder(None, vectors=True)
    records = []
    truth = None
    for kind in ("flat", *kinds):
        start, start_cpu = time.perf_counter(), time.process_time()
        index = SearchIndex.from_embeddings(X, vectors, kind=kind)
        build, build_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        t = timed(
            lambda index=index: index.search_embeddings(Q, K), repeats, warm_up=kind != "flat"
        )
        found = np.array([[h.id for h in hits] for hits in t.pop("result")])
        truth = found if truth is None else truth
        records.append({
            "bench": "approx", "rows": n, "kind": kind, "build_seconds": build,
            "build_cpu_seconds": build_cpu, **t, "recall_at_10": recall_at_k(found, truth),
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
    start, start_cpu = time.perf_counter(), time.process_time()
    index.add(X)
    build, build_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    records = []
    for ef in (16, 32, 64, 128):
        index.hnsw.efSearch = ef
        t = timed(lambda: index.search(Q, K), repeats)
        _, found = t.pop("result")
        records.append({
            "bench": "hnsw", "rows": n, "M": M, "ef_search": ef, "build_seconds": build,
            "build_cpu_seconds": build_cpu, **t, "recall_at_10": recall_at_k(found, truth),
            "bytes_per_row": saved_bytes(index) / n,
        })  # fmt: skip
    return records
