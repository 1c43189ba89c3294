"""evaluate(), knn_predict and the per-class helpers against plain references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from eval_references import (
    alignment_reference,
    clustered,
    knn_predict_reference,
    retrieval_reference,
    uniformity_reference,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from contrastkit.evaluation import (
    METRIC_KEYS,
    confusion_pairs,
    evaluate,
    knn_predict,
    knn_predict_loo,
    knn_predict_many,
    per_class_accuracy,
)
from contrastkit.evaluation.geometry import alignment, uniformity
from contrastkit.evaluation.neighbours import vote


@pytest.fixture(scope="module")
def split():
    Z, y = clustered(n_classes=8, per_class=60, dim=24, spread=0.5, seed=3)
    return Z[:300], y[:300], Z[300:], y[300:]


@pytest.fixture(scope="module")
def metrics(split):
    return evaluate(*split)


def test_returns_every_documented_key_as_float(metrics):
    assert set(METRIC_KEYS) <= set(metrics)
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("k", [1, 3, 10])
def test_knn_predict_matches_brute_force(split, k):
    train_Z, train_y, test_Z, _ = split
    expected = knn_predict_reference(train_Z, train_y, test_Z, k)
    np.testing.assert_array_equal(knn_predict(train_Z, train_y, test_Z, k), expected)


def test_knn_predict_many_matches_brute_force_for_every_k(split):
    train_Z, train_y, test_Z, _ = split
    got = knn_predict_many(train_Z, train_y, test_Z, (10, 1, 3))
    assert sorted(got) == [1, 3, 10]
    for k, labels in got.items():
        np.testing.assert_array_equal(labels, knn_predict_reference(train_Z, train_y, test_Z, k))
    with pytest.raises(ValueError, match="at least one k"):
        knn_predict_many(train_Z, train_y, test_Z, ())


def test_knn_accuracies_match_brute_force(split, metrics):
    train_Z, train_y, test_Z, test_y = split
    for k in (1, 10):
        expected = np.mean(knn_predict_reference(train_Z, train_y, test_Z, k) == test_y)
        assert metrics[f"knn{k}_accuracy"] == pytest.approx(expected)


def test_retrieval_and_geometry_match_plain_definitions(split, metrics):
    _, _, test_Z, test_y = split
    for key, value in retrieval_reference(test_Z, test_y).items():
        assert metrics[key] == pytest.approx(value, abs=1e-9)
    assert metrics["alignment"] == pytest.approx(alignment_reference(test_Z, test_y), abs=1e-5)
    assert metrics["uniformity"] == pytest.approx(uniformity_reference(test_Z), abs=1e-5)


def test_vote_tie_goes_to_the_nearest_tied_class():
    np.testing.assert_array_equal(vote(np.array([[4, 7]])), [4])  # 1-1 tie: nearest
    codes = np.array(
        [
            [7, 4, 4, 7],  # 2-2 tie: 7 is nearest
            [1, 2, 2, 3],  # a majority beats the nearest
            [5, 5, 5, 5],
        ]
    )
    np.testing.assert_array_equal(vote(codes), [7, 2, 5])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=5, max_size=5), min_size=1, max_size=20))
def test_vote_matches_plain_loop(rows):
    codes = np.array(rows)
    expected = []
    for row in rows:
        counts = {c: row.count(c) for c in row}
        expected.append(next(c for c in row if counts[c] == max(counts.values())))
    np.testing.assert_array_equal(vote(codes), expected)


def test_knn_tie_break_on_geometry():
    # Test point at angle 0; train: class "b" at 10 degrees (nearest), "a" at 20, 30 degrees,
    # "b" at 40 degrees: k=4 is a 2-2 tie, won by "b" (nearest).
    angles = np.deg2rad([10, 20, 30, 40])
    train = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = np.array(["b", "a", "a", "b"])
    test = np.array([[1.0, 0.0]])
    assert knn_predict(train, labels, test, k=4)[0] == "b"
    assert knn_predict(train, labels, test, k=3)[0] == "a"


def test_inputs_need_not_be_normalised(split, metrics):
    train_Z, train_y, test_Z, test_y = split
    rng = np.random.default_rng(0)
    scaled = evaluate(
        train_Z * rng.uniform(0.1, 10, size=(len(train_Z), 1)),
        train_y,
        test_Z * rng.uniform(0.1, 10, size=(len(test_Z), 1)),
        test_y,
    )
    for key in METRIC_KEYS:
        assert scaled[key] == pytest.approx(metrics[key], abs=1e-3), key


def test_string_and_integer_labels_agree(split, metrics):
    train_Z, train_y, test_Z, test_y = split
    named = evaluate(train_Z, [f"c{v}" for v in train_y], test_Z, [f"c{v}" for v in test_y])
    for key in METRIC_KEYS:
        assert named[key] == pytest.approx(metrics[key], abs=1e-9), key


def test_perfectly_separated_data_scores_one():
    rng = np.random.default_rng(1)
    centres = np.eye(6, 16)
    train_y = np.repeat(np.arange(6), 12)
    test_y = np.repeat(np.arange(6), 5)
    train = centres[train_y] + 0.01 * rng.normal(size=(len(train_y), 16))
    test = centres[test_y] + 0.01 * rng.normal(size=(len(test_y), 16))
    m = evaluate(train, train_y, test, test_y)
    for key in (
        "knn1_accuracy",
        "knn10_accuracy",
        "linear_accuracy",
        "precision_at_1",
        "r_precision",
        "map_at_r",
        "nmi",
        "ami",
    ):
        assert m[key] == pytest.approx(1.0), key
    assert m["alignment"] == pytest.approx(alignment_reference(test, test_y), abs=1e-6)
    assert m["alignment"] < 0.01  # noise 0.01 in 16 dims: about 2 * 16 * 1e-4
    # Six orthogonal classes: almost every pair is at squared distance 2.
    assert m["uniformity"] == pytest.approx(uniformity_reference(test), abs=1e-5)


def test_random_labels_score_near_chance():
    rng = np.random.default_rng(2)
    Z = rng.normal(size=(600, 32))
    y = rng.integers(0, 5, size=600)
    m = evaluate(Z[:400], y[:400], Z[400:], y[400:])
    assert abs(m["ami"]) < 0.05
    assert m["knn1_accuracy"] < 0.4


def test_alignment_and_uniformity_match_references_with_uneven_classes():
    Z, y = clustered(5, 0, 8, 0.7, seed=4, sizes=[1, 2, 7, 30, 12])
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    assert alignment(Z, y) == pytest.approx(alignment_reference(Z, y), abs=1e-6)
    assert uniformity(Z) == pytest.approx(uniformity_reference(Z), abs=1e-6)


def test_uniformity_subsample_is_seeded_and_close():
    Z, _ = clustered(10, 60, 16, 0.8, seed=5)
    Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    exact = uniformity(Z)
    sub = uniformity(Z, seed=1, max_rows=300)
    assert sub == uniformity(Z, seed=1, max_rows=300)
    assert sub != exact
    assert sub == pytest.approx(exact, abs=0.1)


def test_test_class_absent_from_train_counts_as_wrong():
    train_Z = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    train_y = np.array([0, 0, 1, 1])
    test_Z = np.array([[1.0, 0.05], [0.05, 1.0], [0.7, 0.7], [0.6, 0.8]])
    test_y = np.array([0, 1, 2, 2])  # class 2 never seen in train
    with pytest.warns(UserWarning, match="using k=4"):
        m = evaluate(train_Z, train_y, test_Z, test_y)
    assert m["knn1_accuracy"] == pytest.approx(0.5)
    assert m["linear_accuracy"] <= 0.5


def test_one_test_class_gives_documented_clustering_scores():
    Z, y = clustered(3, 20, 8, 0.3, seed=6)
    test_Z = Z[y == 0]
    m = evaluate(Z, y, test_Z, np.zeros(len(test_Z), dtype=int))
    assert m["nmi"] == 1.0 and m["ami"] == 1.0
    assert m["precision_at_1"] == 1.0 and m["map_at_r"] == 1.0


def test_singleton_test_classes_are_left_out_of_retrieval():
    Z, y = clustered(4, 10, 8, 0.4, seed=7)
    test_Z = np.vstack([Z[:12], Z[y == 3][:1] + 5.0])
    test_y = np.concatenate([y[:12], [99]])  # class 99 has one row
    m = evaluate(Z, y, test_Z, test_y)
    expected = retrieval_reference(test_Z, test_y)
    for key, value in expected.items():
        assert m[key] == pytest.approx(value)


def test_all_singleton_test_classes_leave_retrieval_and_alignment_out_with_a_reason():
    """Undefined metrics are never NaN: they are left out, and `undefined` says why."""
    Z, y = clustered(3, 10, 8, 0.4, seed=8)
    m = evaluate(Z, y, Z[:3], np.array([0, 1, 2]))
    for key in ("precision_at_1", "r_precision", "map_at_r", "alignment"):
        assert key not in m and "two rows" in m.undefined[key]
    assert math.isfinite(m["uniformity"]) and math.isfinite(m["knn1_accuracy"])
    assert all(math.isfinite(v) for v in m.values())


def test_a_one_row_test_set_gives_only_finite_metrics():
    Z, y = clustered(3, 10, 8, 0.4, seed=8)
    m = evaluate(Z, y, Z[:1], np.array([0]))
    assert all(math.isfinite(v) for v in m.values()) and "knn1_accuracy" in m
    assert "uniformity" in m.undefined and "map_at_r" in m.undefined


def test_k_larger_than_train_is_clamped_with_warning():
    train_Z = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.2]])
    train_y = np.array([0, 1, 0])
    test_Z = np.array([[1.0, 0.1], [0.1, 1.0]])
    with pytest.warns(UserWarning, match="k=10 is larger than the 3 train rows"):
        m = evaluate(train_Z, train_y, test_Z, np.array([0, 1]))
    assert m["knn1_accuracy"] == 1.0
    # k=3 covers the whole train set: majority class 0 for both rows.
    assert m["knn10_accuracy"] == 0.5


def test_knn_predict_loo_excludes_the_query_itself():
    Z = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    y = np.array(["a", "b", "c", "c"])
    # Rows 0 and 1 are identical: each must be predicted from the other, never from itself.
    np.testing.assert_array_equal(knn_predict_loo(Z, y, k=1), ["b", "a", "c", "c"])


def test_per_class_accuracy_and_confusion_pairs_by_hand():
    y_true = np.array(["a", "a", "a", "b", "b", "c", "c", "c", "c"])
    y_pred = np.array(["a", "b", "b", "a", "b", "c", "a", "c", "c"])
    assert per_class_accuracy(y_true, y_pred) == pytest.approx({"a": 1 / 3, "b": 0.5, "c": 0.75})
    pairs = confusion_pairs(y_true, y_pred)
    assert pairs[0] == {"a": "a", "b": "b", "a_as_b": 2, "b_as_a": 1, "total": 3}
    assert pairs[1] == {"a": "a", "b": "c", "a_as_b": 0, "b_as_a": 1, "total": 1}
    assert len(pairs) == 2
    assert confusion_pairs(y_true, y_pred, top=1) == pairs[:1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_y": np.zeros(5)}, r"train_y has 5 labels but train_Z has 40 rows"),
        ({"test_Z": np.ones((10, 3))}, r"shape \(40, 4\) but test_Z has shape \(10, 3\)"),
        ({"test_y": np.zeros(11)}, r"test_y has 11 labels but test_Z has 10 rows"),
        ({"train_Z": np.ones(40)}, r"train_Z must be 2-D"),
        ({"test_Z": np.zeros((10, 4))}, r"test_Z has all-zero rows 0, 1, 2, 3, 4 and 5 more"),
    ],
)
def test_bad_shapes_raise_value_error(kwargs, message):
    rng = np.random.default_rng(0)
    args = {
        "train_Z": rng.normal(size=(40, 4)),
        "train_y": rng.integers(0, 3, 40),
        "test_Z": rng.normal(size=(10, 4)),
        "test_y": rng.integers(0, 3, 10),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        evaluate(**args)


def test_nan_rows_are_named():
    rng = np.random.default_rng(0)
    test_Z = rng.normal(size=(10, 4))
    test_Z[[2, 7], 1] = np.nan
    with pytest.raises(ValueError, match=r"test_Z has NaN or infinite values in rows 2, 7"):
        evaluate(rng.normal(size=(20, 4)), rng.integers(0, 2, 20), test_Z, np.zeros(10))


def test_missing_labels_are_named():
    rng = np.random.default_rng(0)
    labels = np.array(["a", None, "b", "a"], dtype=object)
    with pytest.raises(ValueError, match=r"test_y: missing labels .* row 1"):
        evaluate(rng.normal(size=(6, 3)), [0, 1, 0, 1, 0, 1], rng.normal(size=(4, 3)), labels)


def test_deterministic_for_a_seed(split, metrics):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = evaluate(*split)
    assert again == metrics
