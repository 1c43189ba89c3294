"""SearchIndex on vectors, against brute-force numpy cosine top-k: exact and approximate
search, adding, removing, ids, metadata filters, and the checks on what it is given."""

from __future__ import annotations

import numpy as np
import pytest
from search_helpers import brute_top_k, clustered

from contrastkit.apps.search import SearchIndex, hits_frame
from contrastkit.errors import ConfigError, DataError, UserError
from contrastkit.index.tuning import recall_at_k

X = clustered(1500, seed=0)
Q = clustered(40, seed=1)
COLOURS = np.array(["red", "green", "blue"])[np.arange(len(X)) % 3]
SIZES = (np.arange(len(X)) % 5).tolist()


def _index(kind: str = "flat", **kwargs) -> SearchIndex:
    meta = {"colour": COLOURS.tolist(), "size": SIZES}
    return SearchIndex.build(X, metadata=meta, kind=kind, **kwargs)


def _ids(results) -> np.ndarray:
    return np.array([[h.id for h in hits] for hits in results])


def test_exact_search_equals_brute_force():
    index = _index()
    results = index.search(Q, k=7)
    want_scores, want_rows = brute_top_k(X, Q, 7)
    assert (_ids(results) == want_rows).mean() > 0.999
    scores = np.array([[h.score for h in hits] for hits in results])
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert results[0][0].metadata == {
        "colour": COLOURS[want_rows[0, 0]],
        "size": SIZES[want_rows[0, 0]],
    }


def test_ivf_reaches_its_recall_on_held_out_queries():
    index = _index("ivf", recall=0.95)
    assert index.kind == "ivf" and index.probe.recall >= 0.95
    _, want_rows = brute_top_k(X, Q, 10)
    assert recall_at_k(_ids(index.search(Q, k=10)), want_rows) >= 0.9


def test_filters_match_brute_force_over_the_matching_rows():
    index = _index()
    where = {"colour": ["red", "blue"], "size": 2}
    rows = np.flatnonzero(np.isin(COLOURS, ["red", "blue"]) & (np.array(SIZES) == 2))
    _, want = brute_top_k(X[rows], Q, 5)
    assert (_ids(index.search(Q, k=5, where=where)) == rows[want]).all()
    # numbers typed as text (the command line) match numeric columns
    assert (
        _ids(index.search(Q[:3], k=5, where={"size": "2", "colour": ["red", "blue"]})).tolist()
        == rows[want[:3]].tolist()
    )


def test_a_filter_matching_nothing_gives_empty_lists_and_fewer_rows_give_fewer_hits():
    index = _index()
    assert index.search(Q[:2], k=3, where={"colour": "purple"}) == [[], []]
    only = index.search(Q[:1], k=10, where={"id": [4, 9]})[0]
    assert sorted(h.id for h in only) == [4, 9]


def test_unknown_filter_column_and_bad_k_are_refused():
    index = _index()
    with pytest.raises(UserError, match="cannot filter on 'shape'.*colour, size"):
        index.search(Q, where={"shape": "round"})
    for k in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="k must be"):
            index.search(Q, k=k)


def test_added_rows_are_found_and_ids_count_on():
    index = _index()
    new = clustered(5, seed=9)
    index.add(new, metadata={"colour": ["pink"] * 5})
    assert len(index) == len(X) + 5
    hits = index.search(new, k=1)
    assert [h[0].id for h in hits] == list(range(len(X), len(X) + 5))
    assert hits[0][0].metadata == {"colour": "pink", "size": None}
    assert hits[0][0].score == pytest.approx(1.0, abs=1e-5)


def test_removed_rows_never_come_back_in_any_kind():
    for kind in ("flat", "ivf"):
        index = _index(kind)
        gone = list(range(0, len(X), 2))
        assert index.remove(gone) == len(gone) and len(index) == len(X) - len(gone)
        found = _ids(index.search(X[:50], k=5))
        assert not np.isin(found, gone).any()
        assert (found[1::2, 0] == np.arange(1, 50, 2)).all()


def test_removing_unknown_ids_changes_nothing():
    index = _index()
    with pytest.raises(DataError, match="ids 99999 are not in the index; nothing was removed"):
        index.remove([3, 99999])
    assert len(index) == len(X) and index.index.ntotal == len(X)


def test_string_ids_must_be_unique_and_of_one_type():
    ids = [f"doc-{i}" for i in range(len(X))]
    index = SearchIndex.build(X, ids=ids)
    assert index.search(X[:1], k=1)[0][0].id == "doc-0"
    with pytest.raises(DataError, match="already in the index"):
        index.add(X[:1], ids=["doc-5"])
    with pytest.raises(DataError, match="string ids; give ids"):
        index.add(X[:1])
    with pytest.raises(DataError, match="has str ids but was given int"):
        index.add(X[:1], ids=[5])
    with pytest.raises(DataError, match="repeated ids 'a'"):
        SearchIndex.build(X[:3], ids=["a", "a", "b"])
    with pytest.raises(DataError, match="all integers or all strings"):
        SearchIndex.build(X[:2], ids=["a", 1])


def test_queries_must_match_the_index_width_and_be_finite():
    index = _index()
    with pytest.raises(DataError, match="16 dimensions .* gives 32"):
        index.search(np.ones((2, 16), np.float32))
    bad = Q[:2].copy()
    bad[1, 0] = np.nan
    with pytest.raises(DataError, match="NaN or inf in rows 1"):
        index.search(bad)


def test_k_beyond_the_rows_returns_every_row_once():
    index = SearchIndex.build(X[:4])
    hits = index.search(Q[:1], k=50)[0]
    assert sorted(h.id for h in hits) == [0, 1, 2, 3]


def test_metadata_that_clashes_or_misfits_is_refused():
    with pytest.raises(DataError, match="metadata column 'id' clashes"):
        SearchIndex.build(X[:3], metadata={"id": [1, 2, 3]})
    with pytest.raises(DataError, match="metadata has 2 rows for 3"):
        SearchIndex.build(X[:3], metadata={"a": [1, 2]})


def test_hits_frame_lists_every_hit_with_its_rank():
    index = _index()
    frame = hits_frame(index.search(Q[:2], k=3), ["q0", "q1"])
    assert list(frame.columns) == ["query_row", "query", "rank", "id", "score", "colour", "size"]
    assert frame["rank"].tolist() == [1, 2, 3, 1, 2, 3] and frame["query"].tolist()[3] == "q1"
