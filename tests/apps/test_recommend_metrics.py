"""Full-ranking metrics against hand-computed values and a brute-force ranking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from contrastkit.apps.recommend.metrics import (
    Ranking,
    coverage,
    ndcg_by_activity,
    rank_held_out,
    ranking_metrics,
    summarise,
    top_items,
)
from contrastkit.errors import UserError


def test_metrics_of_hand_ranks():
    # ranks 0, 3, 9, 10, 19, 25 (0-based)
    m = ranking_metrics(np.array([0, 3, 9, 10, 19, 25]))
    assert m["hr@10"] == pytest.approx(3 / 6)
    expected_ndcg = (1 / math.log2(2) + 1 / math.log2(5) + 1 / math.log2(11)) / 6
    assert m["ndcg@10"] == pytest.approx(expected_ndcg)
    assert m["recall@20"] == pytest.approx(5 / 6)
    assert m["mrr"] == pytest.approx(np.mean([1, 1 / 4, 1 / 10, 1 / 11, 1 / 20, 1 / 26]))
    assert m["users"] == 6


def test_no_users_gives_none_not_nan():
    m = ranking_metrics(np.zeros(0))
    assert m["hr@10"] is None and m["ndcg@10"] is None and m["users"] == 0


def _brute_rank(scores, target, excluded):
    """0-based rank of `target` among the items not excluded, scores all distinct."""
    others = [j for j in range(len(scores)) if j != target and j not in excluded]
    return sum(scores[j] > scores[target] for j in others)


def test_ranks_match_brute_force_and_leave_seen_items_out():
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 25
    scores = rng.normal(size=(n_users, n_items))
    seen = sp.random(n_users, n_items, density=0.3, format="csr", random_state=1)
    seen.data[:] = 1
    targets = rng.integers(0, n_items, n_users)
    users = np.arange(n_users)
    ranking = rank_held_out(lambda u: scores[u], users, targets, seen, chunk=7)
    for u in users:
        excluded = set(seen[u].indices.tolist())
        assert ranking.ranks[u] == _brute_rank(scores[u], targets[u], excluded)
        # the top 10 never holds a seen item (unless fewer items are left)
        assert not (set(ranking.top[u].tolist()) & (excluded - {targets[u]}))


def test_the_held_out_item_is_ranked_even_when_marked_seen():
    scores = np.array([[0.1, 0.9, 0.5]])
    seen = sp.csr_matrix(np.array([[0, 1, 1]], dtype=np.float32))
    ranking = rank_held_out(lambda u: scores[u], np.array([0]), np.array([2]), seen)
    assert ranking.ranks[0] == 0  # item 1 is seen and left out; item 2 is the held-out one


def test_ties_are_broken_at_random_so_a_constant_scorer_earns_chance():
    n_users, n_items = 4000, 50
    seen = sp.csr_matrix((n_users, n_items), dtype=np.float32)
    targets = np.zeros(n_users, dtype=np.int64)
    ranking = rank_held_out(
        lambda u: np.zeros((len(u), n_items)), np.arange(n_users), targets, seen
    )
    m = ranking_metrics(ranking.ranks)
    assert m["hr@10"] == pytest.approx(10 / n_items, abs=0.02)
    again = rank_held_out(lambda u: np.zeros((len(u), n_items)), np.arange(n_users), targets, seen)
    np.testing.assert_array_equal(ranking.ranks, again.ranks)  # seeded


def test_non_finite_scores_are_an_error_not_a_metric():
    seen = sp.csr_matrix((1, 3), dtype=np.float32)
    with pytest.raises(UserError, match="non-finite"):
        rank_held_out(lambda u: np.array([[0.0, np.nan, 1.0]]), np.array([0]), np.array([0]), seen)


def test_top_items_best_first():
    scores = np.array([[0.1, 0.7, 0.3, 0.9], [5, 4, 3, 2]])
    np.testing.assert_array_equal(top_items(scores, 2), [[3, 1], [0, 1]])
    assert top_items(scores, 10).shape == (2, 4)


def test_coverage_and_cold_subset():
    ranking = Ranking(np.array([0, 50, 5, 2]), np.array([[0, 1], [1, 2], [2, 3], [3, 3]]))
    assert coverage(ranking.top, 8) == pytest.approx(4 / 8)
    summary = summarise(ranking, 8, np.array([True, True, False, False]))
    assert summary["cold"]["users"] == 2
    assert summary["cold"]["hr@10"] == pytest.approx(0.5)
    assert summary["hr@10"] == pytest.approx(0.75)


def test_ndcg_by_activity_groups_users():
    groups = ndcg_by_activity(np.array([0, 0, 20, 20]), np.array([5, 10, 30, 500]))
    assert [g["group"] for g in groups] == ["1-20", "21-50", ">200"]
    assert [g["n"] for g in groups] == [2, 1, 1]
    assert groups[0]["ndcg@10"] == pytest.approx(1.0)
    assert groups[1]["ndcg@10"] == 0.0
