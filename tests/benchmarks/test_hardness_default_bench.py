"""The hardness-default benchmark's protocols and section, without training: the few-shot
draws are disjoint per class and seeded, the folds cover every row once, and the section
reports each protocol's difference from its records."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

hd = pytest.importorskip("benchmarks.hardness_default")


@pytest.fixture
def labels() -> np.ndarray:
    return np.repeat(np.arange(4), [40, 35, 50, 45])


def test_few_shot_draws_take_k_rows_a_class_and_score_on_others(labels):
    X = np.zeros((len(labels), 2))
    draws = hd.folds("fs10", X, labels)
    assert len(draws) == 3
    for train, held_out in draws:
        assert not set(train) & set(held_out)
        assert (np.bincount(labels[train]) == 10).all()
        assert (np.bincount(labels[held_out]) == hd.EVAL_ROWS_PER_CLASS).all()
    again = hd.folds("fs10", X, labels)
    assert all((a[0] == b[0]).all() for a, b in zip(draws, again, strict=True))  # seeded
    assert not (draws[0][0] == draws[1][0]).all()  # three different draws


def test_cross_validation_holds_out_every_row_once(labels):
    held = np.concatenate([b for _, b in hd.folds("cv5", np.zeros((len(labels), 2)), labels)])
    assert sorted(held) == list(range(len(labels)))


def test_section_reports_the_tilt_minus_plain_per_protocol():
    def rec(protocol, hardness, folds):
        return {"protocol": protocol, "hardness": hardness, "seed": 0, "folds": folds,
                "knn1": float(np.mean(folds)), "machine": "cpu", "threads": 1}  # fmt: skip

    records = [rec("fs10", 0.0, [0.85, 0.86, 0.84]), rec("fs10", 1.0, [0.83, 0.85, 0.84]),
               rec("cv5", 0.0, [0.92] * 5), rec("cv5", 1.0, [0.925] * 5)]  # fmt: skip
    text = hd.section(records, "CMD")
    assert "| fs10 | 10 | 85.00 | 84.00 | -1.00 | -2.00, -1.00, +0.00 |" in text
    assert "| cv5 | about 104 (5-fold) | 92.00 | 92.50 | +0.50 |" in text
    assert "fs30" not in text.split("|---|")[1].split("The tilt")[0]  # no records: no row
    assert "`CMD`" in text and "torch threads 1" in text
