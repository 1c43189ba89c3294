"""The self-supervised benchmark's target sentence, from rows with known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
ssl = pytest.importorskip("benchmarks.self_supervised")

BASELINE = {"name": "raw pixels (standardised)", "linear": 0.99}  # no budget: not a method


def _row(name: str, linear: float) -> dict:
    return {"name": name, "linear": linear, "budget": object()}


def test_target_is_judged_on_the_best_trained_method_only():
    line = ssl.target_line([BASELINE, _row("simclr", 0.85), _row("hcl", 0.881)], 2.5)
    assert "**MET**" in line and "hcl at 88.10 %" in line
    assert "**NOT MET**" in ssl.target_line([BASELINE, _row("simclr", 0.879)], 2.5)
    assert "**NOT MET**" in ssl.target_line([_row("hcl", 0.95)], 12.0)  # over the 10 min budget
    assert "NOT EVALUATED" in ssl.target_line([BASELINE], 2.5)


def test_budget_rows_trains_the_nearest_number_of_epochs():
    import numpy as np

    order = np.random.default_rng(0).permutation(1000)  # 10 steps of 100 an epoch
    rows, epochs = ssl.budget_rows(16, 10, 100, order)  # 1.6 epochs -> 2 epochs of 800 rows
    assert epochs == 2 and len(rows) == 800 and set(rows) == set(order[:800])
    rows, epochs = ssl.budget_rows(14, 10, 100, order)  # 1.4 epochs -> 1 epoch of every row
    assert epochs == 1 and len(rows) == 1000
    rows, epochs = ssl.budget_rows(3, 10, 100, order)  # under an epoch: a subset, once
    assert epochs == 1 and len(rows) == 300 and list(rows) == sorted(order[:300])
    rows, epochs = ssl.budget_rows(0, 10, 100, order)  # never fewer than one batch
    assert epochs == 1 and len(rows) == 100
