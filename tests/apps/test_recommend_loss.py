"""The sampled softmax against contrastkit.losses.info_nce and a plain transcription of its
formula; the batch's histories and accidental hits against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from contrastkit import losses
from contrastkit.apps.recommend.loss import sampled_softmax
from contrastkit.apps.recommend.pooling import accidental_hits, pool_rows, pool_without_target


def _reference(users, items, t, log_q=None, hits=None, hard=None) -> float:
    """l_b = -log(e^{z_bb} / (sum_{c not hit} e^{z_bc} + sum_m e^{y_bm})), loops in float64."""
    u = F.normalize(users.double(), dim=1)
    v = F.normalize(items.double(), dim=1)
    total = 0.0
    for b in range(len(u)):
        z = [
            float(u[b] @ v[c]) / t - (0.0 if log_q is None else float(log_q[c]))
            for c in range(len(v))
        ]
        denominator = sum(
            math.exp(z[c]) for c in range(len(v)) if c == b or hits is None or not hits[b, c]
        )
        if hard is not None:
            n = F.normalize(hard[b].double(), dim=1)
            denominator += sum(math.exp(float(u[b] @ n[m]) / t) for m in range(len(n)))
        total += -(z[b] - math.log(denominator))
    return total / len(u)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)


def test_without_corrections_it_is_info_nce(batch):
    users, items = batch
    ours = sampled_softmax(users, items, temperature=0.1)
    assert float(ours) == pytest.approx(
        float(losses.info_nce(users, items, temperature=0.1)), rel=1e-5
    )
    shared = torch.randn(3, 5)
    with_hard = sampled_softmax(
        users, items, temperature=0.1, hard_negatives=shared.expand(6, 3, 5)
    )
    expected = losses.info_nce(users, items, temperature=0.1, negatives=shared)
    assert float(with_hard) == pytest.approx(float(expected), rel=1e-5)


def test_logq_correction_and_hit_mask_match_the_formula(batch):
    users, items = batch
    log_q = torch.log(torch.tensor([0.4, 0.1, 0.2, 0.05, 0.15, 0.1]))
    hits = torch.zeros(6, 6, dtype=torch.bool)
    hits[0, 3] = hits[2, 1] = hits[2, 5] = hits[4, 4] = True  # (4, 4): the diagonal is ignored
    hard = torch.randn(6, 2, 5)
    got = sampled_softmax(
        users, items, temperature=0.2, log_q=log_q, hits=hits, hard_negatives=hard
    )
    assert float(got) == pytest.approx(_reference(users, items, 0.2, log_q, hits, hard), rel=1e-5)
    only_q = sampled_softmax(users, items, temperature=0.2, log_q=log_q)
    assert float(only_q) == pytest.approx(_reference(users, items, 0.2, log_q), rel=1e-5)


def test_logq_lowers_the_penalty_of_a_popular_negative():
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[1.0, 0.0], [0.6, 0.8]])  # row 0's negative is close to its user
    plain = sampled_softmax(users, items, temperature=0.1)
    corrected = sampled_softmax(
        users, items, temperature=0.1, log_q=torch.log(torch.tensor([0.1, 0.9]))
    )
    assert float(corrected) < float(plain)


def test_masked_hits_carry_no_gradient(batch):
    users, items = batch
    items = items.clone().requires_grad_(True)
    hits = torch.zeros(6, 6, dtype=torch.bool)
    hits[:, 3] = True  # every user also has row 3's item: it is nobody's negative
    sampled_softmax(users, items, temperature=0.1, hits=hits).backward()
    # so only row 3's own term reaches item 3
    leaf = items.detach().clone().requires_grad_(True)
    logits = F.normalize(users, dim=1) @ F.normalize(leaf, dim=1).T / 0.1
    (F.cross_entropy(logits[3:4], torch.tensor([3])) / 6).backward()
    torch.testing.assert_close(items.grad[3], leaf.grad[3])


def _history():
    # users x items; rows: u0 = {0, 2, 5}, u1 = {1, 2}, u2 = {0, 3, 4, 5}
    dense = np.zeros((3, 6), dtype=np.float32)
    for u, items in enumerate(([0, 2, 5], [1, 2], [0, 3, 4, 5])):
        dense[u, items] = 1
    return sp.csr_matrix(dense)


def test_pooling_leaves_the_target_out():
    history = _history()
    features = torch.randn(6, 4)
    sums = torch.from_numpy(np.asarray(history @ features.numpy(), dtype=np.float32))
    row_of = np.repeat(np.arange(3), np.diff(history.indptr))
    targets = np.array([1, 6, 3])  # CSR positions: (u0, item 2), (u2, item 3), (u1, item 1)
    pooled, items, lengths = pool_without_target(history, row_of, targets, sums, features)
    table = torch.randn(6, 3)
    got = F.embedding_bag(
        pooled.items, table, pooled.offsets, mode="sum", per_sample_weights=pooled.weights
    )
    for b, (user, target) in enumerate([(0, 2), (2, 3), (1, 1)]):
        others = [i for i in history[user].indices if i != target]
        torch.testing.assert_close(got[b], table[others].mean(0))
        torch.testing.assert_close(pooled.mean_features[b], features[others].mean(0))
    full = pool_rows(history, np.array([2]), sums)
    got = F.embedding_bag(
        full.items, table, full.offsets, mode="sum", per_sample_weights=full.weights
    )
    torch.testing.assert_close(got[0], table[[0, 3, 4, 5]].mean(0))


def test_accidental_hits_match_brute_force():
    history = _history()
    row_of = np.repeat(np.arange(3), np.diff(history.indptr))
    rng = np.random.default_rng(0)
    targets = rng.choice(history.nnz, size=8)
    sums = torch.zeros(3, 0)
    _, items, lengths = pool_without_target(history, row_of, targets, sums, torch.zeros(6, 0))
    hits = accidental_hits(items, lengths, history.indices[targets]).numpy()
    for b in range(8):
        for c in range(8):
            mine = set(history[row_of[targets[b]]].indices.tolist())
            assert hits[b, c] == (b != c and history.indices[targets[c]] in mine)
