"""The self-supervised benchmark's target sentence, from rows with known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
ssl = pytest.importorskip("benchmarks.self_supervised")

BASELINE = {"name": "raw pixels (standardised)", "linear": 0.99}  # no budget: not a method


def _row(name: str, linear: float, minutes: float = 2.5) -> dict:
    return {"name": name, "linear": linear, "budget": ssl.Budgeted(1, 1, 1, 1.0, 60 * minutes)}


def test_target_is_judged_on_the_best_trained_method_only():
    line = ssl.target_line([BASELINE, _row("simclr", 0.85), _row("hcl", 0.881)])
    assert "**MET**" in line and "hcl at 88.10 % after 2.5 min" in line
    assert "**NOT MET**" in ssl.target_line([BASELINE, _row("simclr", 0.879)])
    assert "**NOT MET**" in ssl.target_line([_row("hcl", 0.95, minutes=12.0)])  # over 10 min
    assert "**NOT MET**" in ssl.target_line([_row("hcl", 0.95, minutes=10.3)])  # overshot it
    assert "**MET**" in ssl.target_line([_row("hcl", 0.95, minutes=10.0)])
    assert "NOT EVALUATED" in ssl.target_line([BASELINE])


def test_budget_rows_fills_the_budget_in_whole_epochs():
    import numpy as np

    order = np.random.default_rng(0).permutation(1000)  # 10 steps of 100 an epoch
    rows, epochs = ssl.budget_rows(16, 10, 100, order)  # 1.6 epochs -> 2 epochs of 800 rows
    assert epochs == 2 and len(rows) == 800 and set(rows) == set(order[:800])
    rows, epochs = ssl.budget_rows(24, 10, 100, order)  # 2.4: 2 epochs would leave 1/6 unused
    assert epochs == 3 and len(rows) == 800
    rows, epochs = ssl.budget_rows(21, 10, 100, order)  # 2.1: 2 epochs use over 90 %
    assert epochs == 2 and len(rows) == 1000 and list(rows) == list(range(1000))
    rows, epochs = ssl.budget_rows(3, 10, 100, order)  # under an epoch: a subset, once
    assert epochs == 1 and len(rows) == 300 and list(rows) == sorted(order[:300])
    rows, epochs = ssl.budget_rows(0, 10, 100, order)  # never fewer than one batch
    assert epochs == 1 and len(rows) == 100


def test_one_part_rewrites_only_its_own_table():
    doc = "# benchmarks\n\n<!-- other:begin -->\nkept\n<!-- other:end -->\n"
    both = ssl.updated_document(doc, "images v1", "text v1")
    assert both.index(ssl.TITLE) < both.index("images v1") < both.index("text v1")
    assert "kept" in both
    images_again = ssl.updated_document(both, "images v2", None)
    assert "images v2" in images_again and "images v1" not in images_again
    assert "text v1" in images_again and images_again.count(ssl.TITLE) == 1
    text_again = ssl.updated_document(images_again, None, "text v2")
    assert "images v2" in text_again and "text v2" in text_again and "text v1" not in text_again
    assert text_again.count(ssl.BEGIN) == 1 and text_again.count(ssl.IMAGES[0]) == 1
