"""The before/after comparisons of `contrastkit.evaluation.verdict`, against hand-worked values."""

from __future__ import annotations

import pytest

from contrastkit.evaluation.verdict import describe, never_worse, noise, versus_frozen_linear

BEFORE = {"knn1_accuracy": 0.80, "knn10_accuracy": 0.82, "linear_accuracy": 0.85, "map_at_r": 0.40}


def test_versus_frozen_linear_puts_the_frozen_probe_beside_every_refined_accuracy():
    after = {"knn1_accuracy": 0.86, "knn10_accuracy": 0.84, "linear_accuracy": 0.87, "nmi": 0.9}
    out = versus_frozen_linear(BEFORE, after)
    assert out["frozen_linear_accuracy"] == 0.85
    assert out["knn1_accuracy"] == pytest.approx(0.01)
    assert out["knn10_accuracy"] == pytest.approx(-0.01)
    assert out["linear_accuracy"] == pytest.approx(0.02)
    assert "nmi" not in out  # not an accuracy: not comparable with a probe's accuracy


def test_versus_frozen_linear_is_empty_without_the_frozen_probe():
    assert versus_frozen_linear({"map_at_r": 0.4}, {"knn1_accuracy": 0.9}) == {}


def test_never_worse_when_every_guarded_metric_holds_and_a_classifier_beats_the_probe():
    after = {"knn1_accuracy": 0.86, "linear_accuracy": 0.85, "map_at_r": 0.55}
    check = never_worse(BEFORE, after, rows=200)
    assert check["verdict"] == "better" and check["worse"] == []
    assert check["beats_frozen_linear"] is True
    assert set(check["before"]) == {"knn1_accuracy", "linear_accuracy", "map_at_r"}
    assert "at least as good" in describe(check)


@pytest.mark.parametrize(
    ("after", "worse", "beats"),
    [
        ({"knn1_accuracy": 0.86, "linear_accuracy": 0.80, "map_at_r": 0.55}, ["linear_accuracy"], True),
        ({"knn1_accuracy": 0.75, "linear_accuracy": 0.86, "map_at_r": 0.39}, ["knn1_accuracy", "map_at_r"], True),
    ],
)  # fmt: skip
def test_never_worse_names_each_metric_that_went_down(after, worse, beats):
    check = never_worse(BEFORE, after, rows=400)
    assert check["verdict"] == "worse"
    assert check["worse"] == worse and check["beats_frozen_linear"] is beats
    sentence = describe(check)
    assert sentence.startswith("refinement made things worse") and "400 held-out" in sentence
    assert "one row is 0.25 points" in sentence


def test_a_one_row_drop_is_not_called_worse():
    # the demo's case: 126 rows, one row is 0.79 points; kNN-1 and the probe each lose one row
    before = {"knn1_accuracy": 125 / 126, "linear_accuracy": 121 / 126, "map_at_r": 0.513}
    after = {"knn1_accuracy": 124 / 126, "linear_accuracy": 120 / 126, "map_at_r": 0.757}
    check = never_worse(before, after, rows=126)
    assert check["worse"] == [] and check["within_noise"] == ["knn1_accuracy", "linear_accuracy"]
    assert check["verdict"] == "better"  # kNN-1 98.4 % beats the frozen probe's 96.0 %
    assert "within one row" in describe(check)
    # two rows of 77 (2.6 points) is a drop: the old 5-shot plan's probe
    two = never_worse({"linear_accuracy": 60 / 77}, {"linear_accuracy": 58 / 77}, rows=77)
    assert two["worse"] == ["linear_accuracy"]


@pytest.mark.parametrize(("rows", "want"), [(126, 1 / 126), (77, 1 / 77), (1000, 0.005)])
def test_noise_is_one_row_and_at_least_half_a_point(rows, want):
    assert noise(rows) == pytest.approx(want)
