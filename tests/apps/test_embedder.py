"""The Embedder: one way to load a refined model folder, a sentence-transformers model or
plain vectors, giving float32 unit rows and a fingerprint of the model's files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from search_helpers import clustered, refined_vectors_model

from contrastkit import Refiner
from contrastkit.apps.embedder import VECTORS_FINGERPRINT, load_embedder
from contrastkit.errors import ConfigError, DataError

X = clustered(300, dim=12, seed=0)


def test_vectors_are_normalised_and_unit_rows_are_not_copied():
    embedder = load_embedder(None, vectors=True)
    assert (embedder.kind, embedder.dim, embedder.fingerprint) == (
        "vectors",
        None,
        VECTORS_FINGERPRINT,
    )
    raw = X * np.arange(1, 301, dtype=np.float32)[:, None]
    Z = embedder.encode(raw)
    np.testing.assert_allclose(Z, X, atol=1e-6)
    assert Z.dtype == np.float32 and embedder.dim == 12
    assert np.shares_memory(embedder.encode(X), X)
    with pytest.raises(DataError, match="13 dimensions but precomputed vectors gives 12"):
        embedder.encode(np.ones((2, 13)))
    with pytest.raises(DataError, match="all zeros"):
        embedder.encode(np.zeros((2, 12)))


def test_a_refined_folder_embeds_as_its_refiner_does(tmp_path):
    folder = refined_vectors_model(tmp_path / "m", X)
    embedder = load_embedder(folder)
    assert (
        embedder.kind == "vectors"
        and embedder.dim == 12
        and embedder.reference == str(folder.resolve())
    )
    np.testing.assert_allclose(embedder.encode(X), Refiner.load(folder).transform(X), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(embedder.encode(X), axis=1), 1, atol=1e-5)
    copy = shutil.copytree(folder, tmp_path / "copy")
    assert load_embedder(copy).fingerprint == embedder.fingerprint
    other = refined_vectors_model(tmp_path / "other", X, seed=3)
    assert load_embedder(other).fingerprint != embedder.fingerprint


def test_the_shipped_model_and_its_fingerprint(minilm, tmp_path):
    assert (minilm.kind, minilm.dim, minilm.reference) == ("text", 384, None)
    Z = minilm.encode(["a sentence", "another one"])
    assert Z.shape == (2, 384) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    from contrastkit.models.text import default_text_model_path

    copy = shutil.copytree(
        default_text_model_path(), tmp_path / "st"
    )  # a sentence-transformers folder
    named = load_embedder(copy)
    assert named.fingerprint == minilm.fingerprint and named.reference == str(copy.resolve())


def test_models_are_never_downloaded():
    with pytest.raises(ConfigError, match="never downloaded"):
        load_embedder("sentence-transformers/all-mpnet-base-v2")


def test_text_models_count_tokens_and_others_do_not(minilm, tmp_path):
    from contrastkit.apps.embedder import token_counter_of
    from contrastkit.models.backbones import AdapterBackbone, FrozenTextBase, TextFinetuneBackbone

    # WordPiece: "unbelievably" is un ##bel ##ie ##va ##bly in all-MiniLM-L6-v2's vocabulary
    assert minilm.count_tokens(["hello world", "unbelievably"]).tolist() == [2, 5]
    assert load_embedder(refined_vectors_model(tmp_path / "m", X)).count_tokens is None
    base = FrozenTextBase(None, "cpu")
    adapter = AdapterBackbone("text", 384, base, "cpu")
    assert token_counter_of(base) is not None and token_counter_of(adapter) is not None
    assert base._encoder is None  # the counters load the transformer when first used
    for backbone in (base, adapter, TextFinetuneBackbone(None, "cpu")):
        assert token_counter_of(backbone)(["hello world"]).tolist() == [2]
    assert token_counter_of(AdapterBackbone("vectors", 12, None, "cpu")) is None
