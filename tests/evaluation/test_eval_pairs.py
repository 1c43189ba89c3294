"""Pair classification metrics against brute force and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from contrastkit.evaluation.pairs import calibrate_threshold, pair_classification


def _brute_force_best(scores, labels):
    best = (-1.0, None)
    for t in sorted(set(scores.tolist())):
        f1 = f1_score(labels, scores >= t, zero_division=0)
        if f1 >= best[0] - 1e-15:
            best = (f1, t) if f1 > best[0] + 1e-15 or best[1] is None or t > best[1] else best
    return best


@pytest.mark.parametrize("seed", range(6))
def test_calibrated_threshold_is_the_brute_force_best_f1(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(200) < 0.4
    scores = np.round(rng.normal(labels * 0.8, 0.6), 1)  # rounded: many ties
    found = calibrate_threshold(scores, labels)
    f1, threshold = _brute_force_best(scores, labels)
    assert found.f1 == pytest.approx(f1)
    assert f1_score(labels, scores >= found.threshold) == pytest.approx(found.f1)
    called = scores >= found.threshold
    assert found.precision == pytest.approx((called & labels).sum() / called.sum())
    assert found.recall == pytest.approx((called & labels).sum() / labels.sum())


def test_metrics_at_a_threshold_match_scikit_learn():
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        precision_score,
        recall_score,
    )

    rng = np.random.default_rng(7)
    labels = rng.random(300) < 0.6
    scores = rng.normal(labels * 0.5, 0.5)
    m = pair_classification(scores, labels.astype(int), threshold=0.3)
    called = scores >= 0.3
    assert m["average_precision"] == pytest.approx(average_precision_score(labels, scores))
    assert m["precision"] == pytest.approx(precision_score(labels, called))
    assert m["recall"] == pytest.approx(recall_score(labels, called))
    assert m["f1"] == pytest.approx(f1_score(labels, called))
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, called))
    assert m["best_f1"] >= m["f1"]


def test_bad_pair_labels_are_refused():
    with pytest.raises(ValueError, match="0 or 1"):
        calibrate_threshold(np.zeros(3), [0, 2, 1])
    with pytest.raises(ValueError, match="no positive"):
        calibrate_threshold(np.zeros(3), [0, 0, 0])
