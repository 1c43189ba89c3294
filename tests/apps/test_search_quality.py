"""Search quality metrics (apps/search/quality.py) on rankings worked out by hand."""

from __future__ import annotations

import math

import pytest

from contrastkit.apps.search.quality import search_quality


def test_metrics_of_hand_ranked_queries():
    corpus = ["a", "a", "a", "b", "c"]  # 3 rows of a, 1 of b, 1 of c
    queries = ["a", "b", "z"]  # z has no relevant row: left out
    hits = [["b", "a", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    m = search_quality(queries, hits, corpus, ks=(1, 3))
    assert m["recall_at_1"] == 0.0
    assert m["recall_at_3"] == 1.0
    assert m["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["mrr_at_3"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    g = [1 / math.log2(i + 1) for i in (1, 2, 3)]
    ndcg_a = (g[1] + g[2]) / (g[0] + g[1] + g[2])
    ndcg_b = g[2] / g[0]  # one relevant row: the ideal ranking puts it first
    assert m["ndcg_at_3"] == pytest.approx((ndcg_a + ndcg_b) / 2)


def test_short_hit_lists_count_as_misses_and_no_relevant_row_is_an_error():
    m = search_quality(["a"], [["a"]], ["a", "a"], ks=(1, 10))
    assert (
        m["recall_at_10"] == 1.0
        and m["precision_at_10"] == 0.1
        and m["ndcg_at_10"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    )
    with pytest.raises(ValueError, match="no query has a relevant row"):
        search_quality(["z"], [["a"]], ["a"])
