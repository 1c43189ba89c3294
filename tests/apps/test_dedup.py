"""find_duplicates against brute-force all-pairs cosines and a reference connected-components
search: pairs, groups, identical rows, the threshold (given, calibrated, default) and the
limits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from search_helpers import brute_pairs, clustered, toy_embedder, unit

from contrastkit.apps.dedup import (
    DEFAULT_THRESHOLD,
    calibrate,
    duplicates_of_embeddings,
    find_duplicates,
    score_pairs,
)
from contrastkit.apps.dedup.groups import connected_groups, first_of_group
from contrastkit.apps.dedup.pairs import identical_rows
from contrastkit.errors import ConfigError, DataError, UserError


def _near_copies(n: int = 1200, copies: int = 300, seed: int = 0) -> np.ndarray:
    """Clustered rows plus near (not identical) copies of some of them."""
    X = clustered(n, dim=48, clusters=60, spread=0.6, seed=seed)
    rng = np.random.default_rng(seed + 1)
    picked = rng.integers(0, n, copies)
    return np.concatenate([X, unit(X[picked] + 0.04 * rng.normal(size=(copies, 48)))])


def _pairs(found) -> set[tuple[int, int]]:
    return set(zip(found.pairs["a"].tolist(), found.pairs["b"].tolist(), strict=True))


def _reference_groups(n: int, pairs: set[tuple[int, int]]) -> list[frozenset]:
    """Connected components by breadth-first search."""
    neighbours = {i: set() for i in range(n)}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, groups = set(), []
    for start in range(n):
        if start in seen:
            continue
        group, frontier = {start}, [start]
        while frontier:
            for j in neighbours[frontier.pop()] - group:
                group.add(j)
                frontier.append(j)
        seen |= group
        groups.append(frozenset(group))
    return groups


def _groups_as_sets(groups: np.ndarray) -> set[frozenset]:
    return {frozenset(np.flatnonzero(groups == g).tolist()) for g in np.unique(groups)}


Y = _near_copies()


@pytest.mark.parametrize("threshold", [0.9, 0.97])
def test_exact_pairs_equal_brute_force(threshold):
    found = duplicates_of_embeddings(Y, threshold, kind="flat")
    got = _pairs(found)
    assert brute_pairs(Y, threshold + 1e-5) <= got <= brute_pairs(Y, threshold - 1e-5)
    assert len(got) > 50
    sims = np.einsum("ij,ij->i", Y[found.pairs["a"]], Y[found.pairs["b"]])
    np.testing.assert_allclose(found.pairs["score"], sims, atol=1e-5)
    assert (found.pairs["a"] < found.pairs["b"]).all()


@pytest.mark.parametrize("kind", ["ivf", "ivf-sq8"])
def test_approximate_pairs_are_true_pairs_and_nearly_all_of_them(kind):
    want = brute_pairs(Y, 0.9)
    got = _pairs(duplicates_of_embeddings(Y, 0.9, kind=kind))
    assert got <= brute_pairs(Y, 0.9 - 1e-5)  # candidates are scored exactly
    assert len(got & want) / len(want) >= 0.95


def test_groups_are_the_connected_components_of_the_pairs():
    found = duplicates_of_embeddings(Y, 0.9, kind="flat")
    assert _groups_as_sets(found.groups) == set(_reference_groups(len(Y), _pairs(found)))
    firsts = [np.flatnonzero(found.groups == g)[0] for g in range(found.groups.max() + 1)]
    assert firsts == sorted(firsts)  # numbered in the order of their first row
    assert (found.keep == first_of_group(found.groups)).all()
    summary = found.summary()
    assert summary["rows_kept"] == found.groups.max() + 1 == found.keep.sum()
    assert summary["pairs"] == len(found.pairs) and summary["threshold_source"] == "given"


def test_connected_groups_on_a_small_graph():
    groups = connected_groups(6, np.array([4, 1, 2]), np.array([5, 2, 3]))
    assert groups.tolist() == [0, 1, 1, 1, 2, 2]
    assert connected_groups(3, np.array([], int), np.array([], int)).tolist() == [0, 1, 2]
    assert first_of_group(np.array([0, 1, 1, 0, 2])).tolist() == [True, True, False, False, True]


def test_identical_rows_link_to_their_first_copy_only():
    X = clustered(50, dim=16, seed=2)
    Z = np.concatenate([X, np.repeat(X[:1], 400, axis=0), X[3:4]])
    rep = identical_rows(Z)
    assert (rep[50:450] == 0).all() and rep[450] == 3 and (rep[:50] == np.arange(50)).all()
    found = duplicates_of_embeddings(Z, 0.99, kind="flat")
    copies = found.pairs[found.pairs["a"] == 0]
    assert len(copies) == 400 and (copies["score"] == 1.0).all()  # 400 pairs, not 401 * 400 / 2
    assert ((found.pairs["a"] == 3) & (found.pairs["b"] == 450)).sum() == 1
    assert (found.groups[50:450] == found.groups[0]).all() and found.groups[450] == found.groups[3]


def test_too_many_pairs_stop_with_a_message():
    with pytest.raises(UserError, match="more than 100 pairs .* raise the threshold"):
        duplicates_of_embeddings(Y, 0.0, kind="flat", max_pairs=100)
    with pytest.raises(UserError, match="more than 10 pairs"):
        duplicates_of_embeddings(np.repeat(Y[:1], 20, axis=0), 0.9, max_pairs=10)


def test_ids_travel_with_pairs_and_groups():
    ids = [f"row-{i}" for i in range(len(Y))]
    found = duplicates_of_embeddings(Y, 0.95, ids=ids, kind="flat")
    first = found.pairs.iloc[0]
    assert (first["id_a"], first["id_b"]) == (ids[first["a"]], ids[first["b"]])
    assert found.table()["id"].tolist() == ids
    with pytest.raises(DataError, match="ids repeat"):
        duplicates_of_embeddings(Y[:3], 0.9, ids=["a", "a", "b"])


TABLE = {
    "a": np.array([1.0, 0, 0]), "a'": np.array([0.95, 0.3, 0]), "b": np.array([0, 1.0, 0]),
    "b'": np.array([0.1, 1.0, 0.1]), "c": np.array([0, 0, 1.0]), "c'": np.array([0.5, 0, 1.0]),
}  # fmt: skip
PAIRS = [("a", "a'"), ("b", "b'"), ("c", "c'"), ("a", "b"), ("b", "c"), ("a", "c'")]
LABELS = [1, 1, 1, 0, 0, 0]


def test_calibration_picks_the_f1_best_threshold_on_labelled_pairs():
    toy = toy_embedder(TABLE)
    cos = {p: float((unit(TABLE[p[0]][None]) @ unit(TABLE[p[1]][None]).T)[0, 0]) for p in PAIRS}
    found = calibrate(toy, PAIRS, LABELS)
    assert found.threshold == pytest.approx(
        min(cos[p] for p, y in zip(PAIRS, LABELS, strict=True) if y)
    )
    assert found.f1 == 1.0
    metrics = score_pairs(toy, PAIRS, LABELS, found.threshold)
    assert metrics["accuracy"] == 1.0 and metrics["average_precision"] == 1.0
    dup = find_duplicates(list(TABLE), embedder=toy, calibration=(PAIRS, LABELS))
    assert dup.threshold == found.threshold and dup.threshold_source.startswith(
        "calibrated on 6 labelled pairs (F1 1.000"
    )
    assert _pairs(dup) == {(0, 1), (2, 3), (4, 5)}
    with pytest.raises(DataError, match="cannot calibrate a threshold: pair labels must be 0 or 1"):
        calibrate(toy, PAIRS, [2, 1, 1, 0, 0, 0])
    with pytest.raises(DataError, match="no positive"):
        calibrate(toy, PAIRS, [0] * 6)


def test_the_threshold_is_given_calibrated_or_the_default_with_a_warning_off_its_model():
    toy = toy_embedder(TABLE)
    with pytest.raises(DataError, match="not both"):
        find_duplicates(list(TABLE), embedder=toy, threshold=0.5, calibration=(PAIRS, LABELS))
    with pytest.raises(ConfigError, match="in \\[-1, 1\\]"):
        find_duplicates(list(TABLE), embedder=toy, threshold=1.5)
    with pytest.warns(UserWarning, match="default threshold 0.9 was chosen for the shipped"):
        found = find_duplicates(Y, kind="flat")  # plain vectors are not the shipped model
    assert found.threshold == DEFAULT_THRESHOLD and found.threshold_source == "default"


def test_the_default_threshold_on_the_shipped_model_is_silent(minilm):
    texts = [
        "How do I reset my PIN?",
        "how do i reset my pin",
        "My card was stolen",
        "Where is my card?",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = find_duplicates(texts, embedder=minilm)
    assert _pairs(found) == {(0, 1)} and found.groups.tolist() == [0, 0, 1, 2]
