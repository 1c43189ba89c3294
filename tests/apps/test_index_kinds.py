"""The faiss index kinds (index/kinds.py) and the nprobe tuning (index/tuning.py), against
brute-force numpy search: the exact kind equals it, the approximate kinds reach the recall
they measured, removed and filtered-out rows never come back."""

from __future__ import annotations

import numpy as np
import pytest
from search_helpers import brute_pairs, brute_top_k, clustered

from contrastkit.errors import ConfigError
from contrastkit.index.kinds import (
    EXACT_UP_TO,
    KINDS,
    add_rows,
    cells_for,
    choose_kind,
    index_kind,
    make_index,
    range_keys,
    remove_keys,
    search_keys,
    train_index,
)
from contrastkit.index.tuning import recall_at_k, tune_nprobe

X = clustered(4000, seed=0)
Q = clustered(200, seed=1)
KEYS = np.arange(4000, dtype=np.int64) * 3 + 7  # keys need not be row numbers


def _built(kind: str):
    index = make_index(kind, X.shape[1], len(X))
    train_index(index, X)
    add_rows(index, X, KEYS)
    return index


@pytest.fixture(scope="module", params=KINDS)
def built(request):
    return request.param, _built(request.param)


def test_auto_is_exact_up_to_the_limit_and_ivf_above():
    assert choose_kind(EXACT_UP_TO) == "flat"
    assert choose_kind(EXACT_UP_TO + 1) == "ivf"
    assert choose_kind(10, "ivf-pq") == "ivf-pq"
    with pytest.raises(ConfigError, match="unknown index kind 'hnsw'"):
        choose_kind(10, "hnsw")


def test_product_codes_need_enough_rows_to_learn():
    with pytest.raises(ConfigError, match="ivf-pq .* needs at least 1000 rows, got 999"):
        make_index("ivf-pq", 32, 999)


def test_cells_keep_39_training_rows_each():
    assert cells_for(1_000_000) == 4000
    assert cells_for(100) == 2 and cells_for(10) == 1


def test_each_kind_reports_itself(built):
    kind, index = built
    assert index_kind(index) == kind and index.ntotal == len(X)


def test_flat_equals_brute_force():
    index = _built("flat")
    scores, keys = search_keys(index, Q, 10)
    want_scores, want_rows = brute_top_k(X, Q, 10)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert (keys == KEYS[want_rows]).mean() > 0.999  # ties may swap


def test_approximate_kinds_reach_the_recall_they_measured(built):
    kind, index = built
    probe = tune_nprobe(index, X, KEYS, k=10, target=0.95)
    _, want_rows = brute_top_k(X, Q, 10)
    _, keys = search_keys(index, Q, 10, nprobe=probe.nprobe)
    held_out = recall_at_k(keys, KEYS[want_rows])
    if kind == "flat":
        assert probe.nprobe == 1 and probe.recall == 1.0 and held_out > 0.999
    elif kind == "ivf-pq":  # product codes cap the recall; the tuning says so
        assert probe.recall < 0.95 and abs(held_out - probe.recall) < 0.1
    else:
        assert probe.recall >= 0.95 and held_out >= 0.9
        assert probe.nprobe & (probe.nprobe - 1) == 0 or probe.nprobe == cells_for(len(X))


def test_removed_keys_never_come_back(built):
    kind, _ = built
    index = _built(kind)
    gone = KEYS[::2]
    assert remove_keys(index, gone) == len(gone)
    _, keys = search_keys(index, X[::2], 5, nprobe=64)
    assert not np.isin(keys, gone).any() and index.ntotal == len(X) - len(gone)


def test_a_filter_keeps_only_allowed_keys_and_finds_the_best_of_them(built):
    kind, index = built
    allowed_rows = np.flatnonzero(np.arange(len(X)) % 7 == 0)
    scores, keys = search_keys(index, Q, 5, nprobe=4, allowed=KEYS[allowed_rows])
    assert np.isin(keys[keys >= 0], KEYS[allowed_rows]).all()
    _, want = brute_top_k(X[allowed_rows], Q, 5)
    recall = recall_at_k(keys, KEYS[allowed_rows][want])
    assert recall > (0.999 if kind == "flat" else 0.15 if kind == "ivf-pq" else 0.85)


def test_fewer_allowed_rows_than_k_pad_with_minus_one():
    index = _built("flat")
    scores, keys = search_keys(index, Q[:3], 5, allowed=KEYS[:2])
    assert (keys[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all()
    assert set(keys[:, :2].ravel()) == set(KEYS[:2])


def test_flat_range_search_finds_every_pair_above_the_radius():
    Y = clustered(600, spread=0.2, seed=3)
    index = make_index("flat", Y.shape[1], len(Y))
    add_rows(index, Y, np.arange(len(Y)))
    limits, scores, keys = range_keys(index, Y, 0.8)
    found = {
        (min(i, int(j)), max(i, int(j)))
        for i in range(len(Y))
        for j in keys[limits[i] : limits[i + 1]]
        if j != i
    }
    assert brute_pairs(Y, 0.8 + 1e-5) <= found <= brute_pairs(Y, 0.8 - 1e-5)
    assert len(found) > 100


def test_recall_at_k_counts_overlaps_and_ignores_padding():
    found = np.array([[1, 2, 3], [4, 5, -1]])
    truth = np.array([[3, 2, 9], [4, -1, -1]])
    assert recall_at_k(found, truth) == pytest.approx(3 / 4)
