"""The baselines against brute-force references on tiny matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from contrastkit.apps.recommend.baselines import BPR, ContentOnly, ItemKNN, MostPopular


@pytest.fixture
def train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((30, 12)) < 0.3).astype(np.float32)
    dense[:, 0] = 1  # a very popular item
    return sp.csr_matrix(dense)


def test_most_popular_scores_are_counts(train):
    scores = MostPopular(train).scores(np.array([0, 5]), train)
    np.testing.assert_array_equal(scores[0], train.toarray().sum(0))
    np.testing.assert_array_equal(scores[1], scores[0])


@pytest.mark.parametrize("neighbours", [3, 100])
def test_item_knn_matches_brute_force_cosine(train, neighbours):
    dense = train.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=0)
    sims = (dense.T @ dense) / np.outer(norms, norms)
    np.fill_diagonal(sims, 0.0)
    kept = np.zeros_like(sims)
    for j in range(sims.shape[1]):  # each target item keeps its `neighbours` best items
        k = min(neighbours, sims.shape[0] - 1)
        best = np.argsort(-sims[:, j], kind="stable")[:k]
        kept[best, j] = sims[best, j]
    expected = dense[[1, 2]] @ kept
    got = ItemKNN(train, neighbours).scores(np.array([1, 2]), train)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_bpr_is_seeded_and_learns_co_occurrence():
    pytest.importorskip("implicit")
    # two groups of users, each with its own items: BPR must rank a user's group first
    dense = np.zeros((40, 10), dtype=np.float32)
    dense[:20, :5] = 1
    dense[20:, 5:] = 1
    rng = np.random.default_rng(0)
    dense[np.arange(40), rng.integers(0, 5, 40) + 5 * (np.arange(40) >= 20)] = 0  # one held out
    train = sp.csr_matrix(dense)
    a, b = BPR(train, seed=3), BPR(train, seed=3)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    scores = a.scores(np.arange(40), train)
    own = np.where(
        np.arange(40)[:, None] < 20,
        scores[:, :5].mean(1, keepdims=True),
        scores[:, 5:].mean(1, keepdims=True),
    )
    other = np.where(
        np.arange(40)[:, None] < 20,
        scores[:, 5:].mean(1, keepdims=True),
        scores[:, :5].mean(1, keepdims=True),
    )
    assert (own > other).mean() > 0.9


def test_content_only_is_cosine_to_the_mean_history_feature(train):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(12, 4)).astype(np.float32)
    got = ContentOnly(features).scores(np.array([3]), train)[0]
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    profile = unit[train[3].indices].mean(0)
    expected = unit @ (profile / np.linalg.norm(profile))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
