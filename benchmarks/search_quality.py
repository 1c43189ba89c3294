"""Search and duplicate quality on real data (../shared/data), through the library's own API:

- `banking77`: corpus train.csv, queries test.csv, a row is relevant when it has the query's
  intent: Recall@1, Recall@10 (hit rates), MRR@10, nDCG@10 of SearchIndex.search;
- `mrpc`: the duplicate threshold calibrated on MRPC's training pairs (F1-best), then AP,
  precision, recall, F1 and accuracy on its test pairs at that threshold.

A model is "frozen" (the shipped all-MiniLM-L6-v2) or the path of a model folder (a refined
model written by `contrastkit refine`, or a sentence-transformers folder).
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from contrastkit.apps.dedup import calibrate, score_pairs
from contrastkit.apps.embedder import load_embedder
from contrastkit.apps.search import SearchIndex
from contrastkit.apps.search.quality import search_quality

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _embedder(model: str):
    return load_embedder(None if model == "frozen" else model)


def banking77(model: str) -> dict:
    train = pd.read_csv(DATA / "banking77" / "train.csv")
    test = pd.read_csv(DATA / "banking77" / "test.csv")
    embedder = _embedder(model)
    start = time.perf_counter()
    index = SearchIndex.build(
        train["text"].tolist(), embedder=embedder, metadata={"category": train["category"].tolist()}
    )
    hits = index.search(test["text"].tolist(), k=10)
    seconds = time.perf_counter() - start
    metrics = search_quality(
        test["category"].tolist(),
        [[h.metadata["category"] for h in row] for row in hits],
        train["category"].tolist(),
    )
    return {"bench": "banking77", "model": model, "seconds": seconds, **metrics}


def mrpc(model: str) -> dict:
    train = pd.read_csv(DATA / "mrpc" / "train.csv")
    test = pd.read_csv(DATA / "mrpc" / "test.csv")
    embedder = _embedder(model)

    def pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
        return list(zip(frame["sentence1"], frame["sentence2"], strict=True))

    found = calibrate(embedder, pairs(train), train["label"].tolist())
    metrics = score_pairs(embedder, pairs(test), test["label"].tolist(), found.threshold)
    return {
        "bench": "mrpc", "model": model, "threshold": found.threshold, "train_f1": found.f1,
        **{k: float(v) for k, v in metrics.items()},
    }  # fmt: skip
