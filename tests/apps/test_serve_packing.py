"""Length packing of a batch's texts: every text in exactly one group, groups of similar
length within the budget, rows returned in the order given, and with the real model the
same embeddings as one padded call."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.apps.serve.packing import encode_packed, length_groups


def brute_force_cost(texts, groups) -> list[int]:
    return [len(group) * max(len(texts[i]) for i in group) for group in groups]


@pytest.mark.parametrize("seed", range(5))
def test_groups_cover_every_text_once_within_the_budget(seed):
    rng = np.random.default_rng(seed)
    texts = ["x" * int(n) for n in rng.integers(1, 300, size=int(rng.integers(1, 80)))]
    groups = length_groups(texts, budget=600)
    flat = np.concatenate(groups)
    assert sorted(flat.tolist()) == list(range(len(texts)))
    for group, cost in zip(groups, brute_force_cost(texts, groups), strict=True):
        assert cost <= 600 or len(group) == 1
    lengths = [len(texts[i]) for i in flat]
    assert lengths == sorted(lengths)  # shortest first: neighbours in a group are alike
    # greedy: a group could not have taken the next text without passing the budget
    for group, following in zip(groups[:-1], groups[1:], strict=True):
        assert (len(group) + 1) * len(texts[following[0]]) > 600


def test_edge_cases():
    assert length_groups([]) == []
    assert [g.tolist() for g in length_groups(["a" * 5000, "b"])] == [[1], [0]]
    assert [g.tolist() for g in length_groups(["ab", "a", "abc"], budget=9)] == [[1, 0, 2]]


def test_rows_come_back_in_the_order_given():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.asarray([[len(t), ord(t[0])] for t in texts], dtype=np.float32)

    texts = ["a" * 50, "b", "c" * 49, "d" * 2, "e" * 300]
    Z = encode_packed(encode, texts, budget=100)
    assert Z.tolist() == [[len(t), ord(t[0])] for t in texts]
    assert len(calls) > 1 and sorted(sum(calls, [])) == sorted(texts)


def test_packed_embeddings_equal_one_padded_call():
    from contrastkit.apps.embedder import load_embedder

    minilm = load_embedder(None, cache=False)  # the model itself, not rows from a cache
    texts = [
        "hi",
        "Why has my card payment been declined twice today at the same shop?",
        "refund",
        "I would like to know how long a transfer from the UK to Spain takes, please.",
        "pin?",
        "Où est ma carte ? 🙂",
    ]
    whole = minilm.encode(texts)
    packed = encode_packed(minilm.encode, texts, budget=80)
    assert len(length_groups(texts, budget=80)) > 2
    np.testing.assert_allclose(packed, whole, atol=2e-5)
