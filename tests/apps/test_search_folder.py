"""A search index on disk: saved whole and atomically, read back identical, checked against its
checksums, and refusing a model other than the one it was built with."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from search_helpers import clustered, refined_vectors_model, toy_embedder, unit

from contrastkit.apps.embedder import load_embedder
from contrastkit.apps.search import SearchIndex
from contrastkit.apps.search.folder import IndexFolderError
from contrastkit.errors import UserError

X = clustered(600, seed=0)
Q = clustered(10, seed=1)


def _results(index, queries=Q, **kwargs):
    return [
        [(h.id, round(h.score, 5), h.text, h.metadata) for h in hits]
        for hits in index.search(queries, k=5, **kwargs)
    ]


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivf-sq8"])
def test_a_saved_index_reads_back_identical(tmp_path, kind):
    meta = {
        "n": (np.arange(600) % 4).tolist(),
        "tag": [None if i % 7 else "seven" for i in range(600)],
    }
    index = SearchIndex.build(X, ids=[f"r{i}" for i in range(600)], metadata=meta, kind=kind)
    index.remove(["r1", "r2"])
    index.save(tmp_path / "ix")
    loaded = SearchIndex.load(tmp_path / "ix")
    assert loaded.kind == kind and len(loaded) == 598 and loaded.probe == index.probe
    assert _results(loaded) == _results(index)
    assert _results(loaded, where={"n": 3}) == _results(index, where={"n": 3})
    assert isinstance(loaded.search(X[7:8], k=1)[0][0].metadata["n"], int)
    loaded.add(X[:1], ids=["new"])  # keys continue after the saved ones
    assert loaded.search(X[:1], k=2)[0][0].id in ("new", "r0")
    assert sorted(p.name for p in (tmp_path / "ix").iterdir()) == [
        "index.faiss",
        "manifest.json",
        "rows.parquet",
    ]


def test_saving_over_a_folder_needs_overwrite_and_replaces_it_whole(tmp_path):
    SearchIndex.build(X).save(tmp_path / "ix")
    with pytest.raises(UserError, match="already exists; pass overwrite=True"):
        SearchIndex.build(X[:10]).save(tmp_path / "ix")
    SearchIndex.build(X[:10]).save(tmp_path / "ix", overwrite=True)
    assert len(SearchIndex.load(tmp_path / "ix")) == 10
    assert not list(tmp_path.glob(".*tmp"))
    (tmp_path / "other").mkdir()
    with pytest.raises(UserError, match="not a search index folder"):
        SearchIndex.build(X[:10]).save(tmp_path / "other", overwrite=True)


def test_an_altered_or_incomplete_folder_is_refused(tmp_path):
    SearchIndex.build(X).save(tmp_path / "ix")
    shutil.copytree(tmp_path / "ix", tmp_path / "cut")
    with open(tmp_path / "ix" / "rows.parquet", "ab") as f:
        f.write(b"x")
    with pytest.raises(IndexFolderError, match="rows.parquet was altered or truncated"):
        SearchIndex.load(tmp_path / "ix")
    (tmp_path / "cut" / "index.faiss").unlink()
    with pytest.raises(IndexFolderError, match="index.faiss is missing"):
        SearchIndex.load(tmp_path / "cut")
    with pytest.raises(IndexFolderError, match="does not exist; build one"):
        SearchIndex.load(tmp_path / "nothing")
    (tmp_path / "cut" / "manifest.json").write_text("{")
    with pytest.raises(IndexFolderError, match="manifest.json is damaged"):
        SearchIndex.load(tmp_path / "cut")


@pytest.fixture(scope="module")
def refined(tmp_path_factory):
    """Two refined adapters on the same vectors (different seeds): different models."""
    root = tmp_path_factory.mktemp("models")
    return refined_vectors_model(root / "a", X, seed=0), refined_vectors_model(
        root / "b", X, seed=1
    )


def test_an_index_remembers_its_refined_model_and_refuses_another(tmp_path, refined):
    model_a, model_b = refined
    index = SearchIndex.build(X, model=model_a)
    want = load_embedder(model_a).encode(Q)
    index.save(tmp_path / "ix")
    loaded = SearchIndex.load(tmp_path / "ix")  # the model loads on first use
    assert _results(loaded) == _results(index)
    np.testing.assert_allclose(loaded.embedder.encode(Q), want, atol=1e-6)
    copy = shutil.copytree(model_a, tmp_path / "copy_of_a")  # same files elsewhere: same model
    assert _results(SearchIndex.load(tmp_path / "ix", model=copy)) == _results(index)
    with pytest.raises(
        IndexFolderError,
        match="was built with the refined model in .*a .*not the refined model in .*b",
    ):
        SearchIndex.load(tmp_path / "ix", model=model_b)
    with pytest.raises(IndexFolderError, match="was built with the refined model"):
        SearchIndex.load(tmp_path / "ix", embedder=load_embedder(None, vectors=True))


def test_a_model_changed_since_the_index_was_built_is_refused(tmp_path, refined):
    model = shutil.copytree(refined[0], tmp_path / "model")
    SearchIndex.build(X, model=model).save(tmp_path / "ix")
    shutil.rmtree(model)
    shutil.copytree(refined[1], model)  # another model saved in the same folder
    loaded = SearchIndex.load(tmp_path / "ix")
    with pytest.raises(IndexFolderError, match="has changed since the index .* was built"):
        loaded.search(Q)


def test_a_vector_index_refuses_text_queries_and_a_text_index_vector_queries():
    vectors = SearchIndex.build(X)
    with pytest.raises(UserError, match="precomputed vectors embeds vectors but was given text"):
        vectors.search(["a query"])
    toy = toy_embedder({"a": np.ones(4), "b": np.arange(4.0) + 1})
    texts = SearchIndex.build(["a", "b"], embedder=toy)
    with pytest.raises(UserError, match="the toy model embeds text but was given vectors"):
        texts.search(unit(np.ones((1, 4))))


def test_a_text_index_with_the_shipped_model(tmp_path, minilm):
    corpus = ["my card has not arrived yet", "how do I reset my PIN", "I was charged twice",
              "where is my new card", "the exchange rate was wrong"]  # fmt: skip
    index = SearchIndex.build(corpus, embedder=minilm, metadata={"n": list(range(5))})
    hits = index.search(["I forgot my pin number", "card still not delivered"], k=2)
    assert hits[0][0].text == "how do I reset my PIN"
    assert {h.text for h in hits[1]} == {"my card has not arrived yet", "where is my new card"}
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["model"]["reference"] is None and manifest["model"]["kind"] == "text"
    loaded = SearchIndex.load(tmp_path / "ix", embedder=minilm)
    assert loaded.search("I forgot my pin number", k=1)[0][0].id == 1
    with pytest.raises(UserError, match="this index holds texts"):
        loaded.add_embeddings(minilm.encode(["x"]))


def test_a_model_moved_away_is_named_with_what_to_do(tmp_path, refined):
    model = shutil.copytree(refined[0], tmp_path / "model")
    SearchIndex.build(X, model=model).save(tmp_path / "ix")
    model.rename(tmp_path / "elsewhere")
    loaded = SearchIndex.load(tmp_path / "ix")
    assert len(loaded) == len(X)  # the rows load without the model
    with pytest.raises(IndexFolderError, match="cannot be loaded now .*pass the model"):
        loaded.search(Q)
    assert len(SearchIndex.load(tmp_path / "ix", model=tmp_path / "elsewhere").search(Q)) == len(Q)
