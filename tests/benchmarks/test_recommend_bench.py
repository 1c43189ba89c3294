"""The recommendation benchmark's synthetic data, cold-item draw and Markdown, without training."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

bench = pytest.importorskip("benchmarks.recommend")
report = pytest.importorskip("benchmarks.recommend_report")


def test_synthetic_interactions_are_distinct_and_power_law():
    data = bench.synthetic_interactions(20_000, seed=0)
    assert len(data) == 20_000
    keys = data.users * data.n_items + data.items
    assert len(np.unique(keys)) == len(keys)
    counts = np.sort(np.bincount(data.items, minlength=data.n_items))[::-1]
    assert counts[0] > 20 * np.median(counts)  # a heavy head
    again = bench.synthetic_interactions(20_000, seed=0)
    np.testing.assert_array_equal(data.items, again.items)


def test_cold_items_are_a_fixed_fifth_of_the_rated_items():
    counts = np.array([0, 3, 1, 0, 5, 2, 2, 7, 1, 1, 4, 9])
    cold = bench.cold_items(len(counts), counts)
    assert len(cold) == 2 and (counts[cold] > 0).all()
    np.testing.assert_array_equal(cold, bench.cold_items(len(counts), counts))


def _metrics(ndcg: float, cold: float = 0.0) -> dict:
    test = {"hr@10": 2 * ndcg, "ndcg@10": ndcg, "recall@20": 3 * ndcg, "mrr": ndcg,
            "coverage@10": 0.5, "cold": {"hr@10": cold, "ndcg@10": cold, "mrr": cold, "users": 16}}  # fmt: skip
    return {"test": test, "validation": test, "fit_s": 10.0}


def _records(model_ndcg: list[float]) -> list[dict]:
    records = []
    for seed, value in enumerate(model_ndcg):
        timing = {"read_and_embed_s": 5.0, "fit_s": 100.0, "evaluate_s": 10.0, "total_s": 130.0}
        records.append({
            "section": "movielens", "variant": "default", "seed": seed, "machine": "cpu",
            "threads": 1, "timing": timing, "command": f"contrastkit recommend fit --seed {seed} --out run",
            "models": {"two-tower": _metrics(value), "item-kNN": _metrics(0.062), "BPR-MF": _metrics(0.060 + 0.001 * seed)},
        })  # fmt: skip
        records.append({
            "section": "coldstart", "variant": "default", "seed": seed, "cold_items": 300,
            "models": {"two-tower": _metrics(value, 0.02), "BPR-MF": _metrics(0.05, 0.002), "item-kNN": _metrics(0.05, 0.001), "most popular": _metrics(0.04, 0.0)},
        })  # fmt: skip
    records.append({"section": "scale", "interactions": 100_000, "users": 1000, "items": 1000, "steps": 98, "epoch_s": 12.0, "peak_rss_mb": 900.0, "command": "python -m benchmarks.recommend --scale-one 100000"})  # fmt: skip
    return records


def test_targets_are_judged_beyond_the_seed_spread():
    text = report.render(_records([0.084, 0.085, 0.083]))
    assert "NDCG@10 above every baseline beyond the seed spread: **met**" in text
    assert "Training plus evaluation under 5 minutes with the defaults: **met**" in text
    assert "0.0840 ± 0.0010" in text and "| 100,000 | 1,000 |" in text
    assert "Cold items clearly above the id-only models" in text
    close = report.render(_records([0.05, 0.09, 0.07]))  # mean 0.07, but a wide spread
    assert "NDCG@10 above every baseline beyond the seed spread: **not met**" in close
    assert text.startswith(report.BEGIN) and text.rstrip().endswith(report.END)
