"""Before/after metrics when only the test data has labels (self-supervised runs on unlabelled
training data), and for text pairs with similarity scores (STS-style).

`evaluate_test_only`: the training rows have no labels to serve as kNN reference or probe
training set, so the labelled test set is split in two stratified, seeded halves: kNN and the
linear probe use one half as reference/training rows and score the other; retrieval (P@1,
R-precision, MAP@R), clustering (NMI/AMI) and geometry (alignment/uniformity) use all test rows.

`pair_scores`: the Spearman correlation between the cosine similarity of each pair's two
embeddings and its score (the STS benchmark's measure).
"""

from __future__ import annotations

import numpy as np

from contrastkit.evaluation.metrics import evaluate

HALF_METRICS = ("knn1_accuracy", "knn10_accuracy", "linear_accuracy")
TEST_ONLY_NOTE = (
    "no training labels: kNN and linear probe use one stratified half of the test rows "
    "(seeded) as reference for the other half; retrieval, clustering and geometry use all test rows"
)


def stratified_halves(codes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference rows, query rows): half of each class each way, seeded; a class with a single
    row goes to the reference half."""
    rng = np.random.default_rng([seed, 11])
    reference, query = [], []
    for cls in np.unique(codes):
        rows = rng.permutation(np.flatnonzero(codes == cls))
        k = len(rows) // 2
        query.extend(rows[:k].tolist())
        reference.extend(rows[k:].tolist())
    return np.sort(np.asarray(reference, np.int64)), np.sort(np.asarray(query, np.int64))


def evaluate_test_only(Z: np.ndarray, codes: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """The `evaluate` keys for labelled test embeddings alone (see the module docstring)."""
    codes = np.asarray(codes)
    reference, query = stratified_halves(codes, seed)
    # All test rows as the evaluated set: its retrieval, clustering and geometry keys are kept.
    metrics = evaluate(Z[reference], codes[reference], Z, codes, seed=seed)
    if len(query) == 0:
        return {**metrics, **dict.fromkeys(HALF_METRICS, float("nan"))}
    halves = evaluate(Z[reference], codes[reference], Z[query], codes[query], seed=seed)
    return {**metrics, **{k: halves[k] for k in HALF_METRICS}}


def pair_scores(Z_a: np.ndarray, Z_b: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """{"spearman": rank correlation of cos(a_i, b_i) with scores_i}; NaN when undefined."""
    from scipy.stats import spearmanr

    if Z_a.shape != Z_b.shape or len(Z_a) != len(scores):
        raise ValueError(
            f"pair embeddings {Z_a.shape} and {Z_b.shape} and {len(scores)} scores do not match"
        )
    a = Z_a / np.linalg.norm(Z_a, axis=1, keepdims=True)
    b = Z_b / np.linalg.norm(Z_b, axis=1, keepdims=True)
    cosine = (a * b).sum(axis=1)
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(cosine) == 0:
        return {"spearman": float("nan")}
    return {"spearman": float(spearmanr(cosine, np.asarray(scores, np.float64)).statistic)}
