"""Before/after metrics when only the test data has labels (self-supervised runs on unlabelled
training data).

`evaluate_test_only`: the training rows have no labels to serve as kNN reference or probe
training set, so the labelled test set is split in two stratified, seeded halves: kNN and the
linear probe use one half as reference/training rows and score the other; retrieval (P@1,
R-precision, MAP@R), clustering (NMI/AMI) and geometry (alignment/uniformity) use all test rows.
"""

from __future__ import annotations

import numpy as np

from contrastkit.data.splits import stratified_halves
from contrastkit.evaluation._arrays import l2_normalise
from contrastkit.evaluation.metrics import Metrics, accuracies, evaluate

HALF_METRICS = ("knn1_accuracy", "knn10_accuracy", "linear_accuracy")
TEST_ONLY_NOTE = (
    "no training labels: kNN and linear probe use one stratified half of the test rows "
    "(seeded) as reference for the other half; retrieval, clustering and geometry use all test rows"
)


def evaluate_test_only(Z: np.ndarray, codes: np.ndarray, *, seed: int = 0) -> Metrics:
    """The `evaluate` keys for labelled test embeddings alone (see the module docstring)."""
    codes = np.asarray(codes)
    reference, query = stratified_halves(codes, seed)
    # All test rows as the evaluated set: its retrieval, clustering and geometry keys are kept.
    metrics = evaluate(Z[reference], codes[reference], Z, codes, seed=seed)
    undefined = {k: v for k, v in metrics.undefined.items() if k not in HALF_METRICS}
    values = {k: v for k, v in metrics.items() if k not in HALF_METRICS}
    if len(query) == 0:
        why = "every class has a single row, so no half of the test rows is left to score"
        return Metrics(values, {**undefined, **dict.fromkeys(HALF_METRICS, why)})
    halves = accuracies_of_half(Z, codes, reference, query, seed)
    return Metrics({**values, **halves}, undefined)


def accuracies_of_half(Z, codes, reference, query, seed: int) -> dict[str, float]:
    """kNN and linear-probe accuracy of the query half against the reference half."""
    unit = l2_normalise(Z, "Z")
    return accuracies(unit[reference], codes[reference], unit[query], codes[query], seed=seed)
