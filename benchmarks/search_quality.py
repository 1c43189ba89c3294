"""Search and duplicate quality on real data (../shared/data), through the library's own API:

- `banking77`: corpus train.csv, queries test.csv, a row is relevant when it has the query's
  intent: Recall@1, Recall@10 (hit rates), MRR@10, nDCG@10 of SearchIndex.search;
- `mrpc`: the duplicate threshold calibrated on MRPC's training pairs (F1-best), then AP,
  precision, recall, F1 and accuracy on its test pairs at that threshold.

A model is "frozen" (the shipped all-MiniLM-L6-v2) or the path of a model folder (a refined
model written by `contrastkit refine`, or a sentence-transformers folder), optionally named
for the tables: "Banking77 adapter=/tmp/b77_adapter/model". A refined model's record also
holds the `contrastkit refine` command that made it, rebuilt from its run's config.yaml.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import yaml

from contrastkit.apps.dedup import calibrate, score_pairs
from contrastkit.apps.embedder import load_embedder
from contrastkit.apps.search import SearchIndex
from contrastkit.apps.search.quality import search_quality

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


FROZEN = "frozen all-MiniLM-L6-v2"


def _embedder(model: str):
    return load_embedder(None if model == "frozen" else model)


def describe(spec: str) -> tuple[str, str, dict]:
    """(model to load, its name in the tables, what made it) of "NAME=PATH", "PATH" or
    "frozen"."""
    name, _, path = spec.rpartition("=")
    if path == "frozen":
        return path, name or FROZEN, {}
    made_by = refine_command(Path(path))
    return path, name or path, {"model_path": path, **({"made_by": made_by} if made_by else {})}


def refine_command(model: Path) -> str | None:
    """`contrastkit refine ...` as the run folder holding `model` records it (its train and
    test files and the options given), or None when there is no config.yaml beside it."""
    config = model.parent / "config.yaml"
    if not config.exists():
        return None
    saved = yaml.safe_load(config.read_text())
    data = saved.get("data", {})
    words = ["contrastkit refine", "--train", _short(data["train"]["path"])]
    if data.get("test"):
        words += ["--test", _short(data["test"]["path"])]
    for key, value in (saved.get("options") or {}).items():
        words += [f"--{key.replace('_', '-')}", str(value)]
    for key, value in (data.get("columns") or {}).items():
        words += [f"--{key.replace('_', '-')}", str(value)]
    return " ".join([*words, "--out", str(model.parent)])


def banking77(spec: str) -> dict:
    model, name, made_by = describe(spec)
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
    return {"bench": "banking77", "model": name, **made_by, "seconds": seconds, **metrics}


def mrpc(spec: str) -> dict:
    model, name, made_by = describe(spec)
    train = pd.read_csv(DATA / "mrpc" / "train.csv")
    test = pd.read_csv(DATA / "mrpc" / "test.csv")
    embedder = _embedder(model)

    def pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
        return list(zip(frame["sentence1"], frame["sentence2"], strict=True))

    found = calibrate(embedder, pairs(train), train["label"].tolist())
    metrics = score_pairs(embedder, pairs(test), test["label"].tolist(), found.threshold)
    return {
        "bench": "mrpc", "model": name, **made_by, "threshold": found.threshold, "train_f1": found.f1,
        **{k: float(v) for k, v in metrics.items()},
    }  # fmt: skip


def _short(path: str) -> str:
    """A shared data file as the project names it (../shared/data/...)."""
    head, found, tail = path.partition("/shared/data/")
    return f"../shared/data/{tail}" if found else path
