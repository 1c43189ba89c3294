"""P@1, R-precision and MAP@R against pytorch-metric-learning's AccuracyCalculator (oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from eval_references import clustered, retrieval_reference, unit

from contrastkit.evaluation._arrays import l2_normalise
from contrastkit.evaluation.retrieval import retrieval_metrics

PML_KEYS = {
    "precision_at_1": "precision_at_1",
    "r_precision": "r_precision",
    "map_at_r": "mean_average_precision_at_r",
}


def pml_retrieval(Z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    torch = pytest.importorskip("torch")
    accuracy = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    calculator = accuracy.AccuracyCalculator(
        include=tuple(PML_KEYS.values()), k="max_bin_count", device=torch.device("cpu")
    )
    Zt = torch.from_numpy(unit(Z).astype(np.float32))
    yt = torch.from_numpy(np.asarray(y))
    result = calculator.get_accuracy(Zt, yt, Zt, yt, ref_includes_query=True)
    return {ours: result[theirs] for ours, theirs in PML_KEYS.items()}


def ours(Z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return retrieval_metrics(l2_normalise(Z.astype(np.float32), "Z"), np.asarray(y))


@pytest.mark.parametrize(
    ("n_classes", "sizes", "spread", "seed"),
    [
        (10, None, 0.6, 0),  # clustered, equal classes
        (6, [2, 3, 9, 25, 40, 1], 0.9, 1),  # uneven classes, one singleton (left out)
        (7, None, 50.0, 2),  # essentially random data
    ],
)
def test_matches_pytorch_metric_learning(n_classes, sizes, spread, seed):
    Z, y = clustered(n_classes, 30, 16, spread, seed, sizes=sizes)
    expected = pml_retrieval(Z, y)
    got = ours(Z, y)
    for key in PML_KEYS:
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key


def test_matches_plain_loop_reference():
    Z, y = clustered(5, 0, 12, 0.8, seed=3, sizes=[4, 11, 2, 17, 6])
    expected = retrieval_reference(Z, y)
    got = ours(Z, y)
    for key in PML_KEYS:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key


def test_self_is_removed_by_index_not_by_position():
    # Rows 0 and 1 are the same vector with different labels, so each is the other's nearest
    # other row (a miss) whichever of the two faiss lists first; rows 2 and 3 are each
    # other's nearest (a miss too). Every P@1 is 0; dropping position 0 instead of the query's
    # own index would sometimes keep the query itself and count a hit.
    Z = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.995, 0.0998]])
    y = np.array([0, 1, 0, 1])
    for order in (np.arange(4), np.array([1, 0, 3, 2])):
        got = ours(Z[order], y[order])
        assert got == {"precision_at_1": 0.0, "r_precision": 0.0, "map_at_r": 0.0}


def test_identical_rows_of_one_class_score_one():
    Z = np.repeat(np.eye(4), 5, axis=0)
    y = np.repeat(np.arange(4), 5)
    assert ours(Z, y) == {"precision_at_1": 1.0, "r_precision": 1.0, "map_at_r": 1.0}


def test_map_at_r_penalises_late_hits_unlike_r_precision():
    # Query 0 (class 0, R = 2): neighbours in order: other class, same, same -> the first R=2
    # hold one hit at rank 2: R-precision 1/2, MAP@R (1/2) * (1/2) = 1/4.
    Z = np.array([[1.0, 0.0], [0.99, 0.141], [0.9, 0.436], [0.8, 0.6], [-1.0, 0.0]])
    y = np.array([0, 1, 0, 0, 1])
    got = ours(Z, y)
    expected = retrieval_reference(Z, y)
    assert got == pytest.approx(expected)
    per_query = retrieval_reference(Z[:4], y[:4])
    assert per_query["r_precision"] != per_query["map_at_r"]
