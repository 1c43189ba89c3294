"""nt_xent, info_nce, dcl, hcl, clip against plain transcriptions, oracles and the papers' code."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from pytorch_metric_learning.losses import NTXentLoss
from ss_helpers import SIZES, assert_close, check_against, draw
from ss_references import (
    clip_ref,
    hcl_formula,
    hcl_official,
    info_nce_ref,
    moco_cross_entropy,
    nt_xent_ref,
    value_and_grad,
)

from contrastkit.losses import NoValidAnchorsWarning, clip, dcl, hcl, info_nce, nt_xent
from contrastkit.losses.self_supervised import dense_hcl_terms, dense_info_nce_terms

# ---------------------------------------------------------------------------- values and gradients


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b,d", SIZES)
@pytest.mark.parametrize("t", [0.5, 0.1])
def test_nt_xent_matches_simclr_formula(b, d, dtype, t):
    inputs = (draw(b, d, seed=1), draw(b, d, seed=2))
    check_against(
        lambda x, y: nt_xent(x, y, temperature=t), lambda x, y: nt_xent_ref(x, y, t), inputs, dtype
    )


@pytest.mark.parametrize("b,d", SIZES)
def test_nt_xent_matches_pytorch_metric_learning(b, d):
    # PML's NTXentLoss takes the concatenated views and instance labels; each row's positive
    # pair is (i, other view), its negatives every other row.
    z1, z2 = draw(b, d, seed=3), draw(b, d, seed=4)
    labels = torch.arange(b).repeat(2)
    oracle = NTXentLoss(temperature=0.3)
    value, grads = value_and_grad(lambda x, y: nt_xent(x, y, temperature=0.3), z1, z2)
    ref_value, ref_grads = value_and_grad(lambda x, y: oracle(torch.cat([x, y]), labels), z1, z2)
    assert_close(value, ref_value, 1e-6)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert_close(grad, ref_grad, 1e-6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b,d", SIZES)
@pytest.mark.parametrize("tau_plus,beta", [(0.1, 1.0), (0.0, 0.5), (0.3, 0.0), (0.05, 3.0)])
def test_hcl_matches_formula_and_official_code(b, d, dtype, tau_plus, beta):
    inputs = (draw(b, d, seed=5), draw(b, d, seed=6))

    def loss(x, y):
        return hcl(x, y, temperature=0.5, tau_plus=tau_plus, beta=beta)

    check_against(loss, lambda x, y: hcl_formula(x, y, 0.5, tau_plus, beta), inputs, dtype)
    check_against(loss, lambda x, y: hcl_official(x, y, 0.5, tau_plus, beta), inputs, dtype)


def floor_binds(z1, z2, t: float, tau_plus: float, beta: float) -> torch.Tensor:
    """Per row: whether the official code's clamp M e^{-1/t} decides Ng (float64, plain)."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    b = z1.shape[0]
    m = 2 * b - 2
    binds = []
    for i in range(2 * b):
        partner = (i + b) % (2 * b)
        neg = torch.exp(z[[j for j in range(2 * b) if j not in (i, partner)]] @ z[i] / t)
        w = neg**beta
        pos = torch.exp(z[i] @ z[partner] / t)
        raw = (-tau_plus * m * pos + (w * neg).sum() / w.mean()) / (1 - tau_plus)
        binds.append(raw < m * math.exp(-1 / t))
    return torch.stack(binds)


def aligned_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """4 pairs of nearly equal views and 3 unrelated ones."""
    z1 = draw(7, 4, seed=7)
    z2 = z1 + 0.05 * draw(7, 4, seed=8)
    z2[4:] = draw(3, 4, seed=9)
    return z1, z2


@pytest.mark.parametrize("tau_plus", [0.2, 0.5, 0.9])
def test_hcl_where_the_floor_binds(tau_plus):
    # Second views close to the first make pos large, so R - tau_plus M pos is small or negative
    # and the clamp decides Ng for some rows; value and gradient still follow the official code.
    z1, z2 = aligned_pairs()
    binds = floor_binds(z1, z2, 0.2, tau_plus, 1.0)
    assert binds.any() and not binds.all()
    for dtype in (torch.float64, torch.float32):
        check_against(
            lambda x, y: hcl(x, y, temperature=0.2, tau_plus=tau_plus, beta=1.0),
            lambda x, y: hcl_official(x, y, 0.2, tau_plus, 1.0),
            (z1, z2),
            dtype,
        )


def test_hcl_terms_on_the_floor_are_the_floor():
    z1, z2 = aligned_pairs()
    binds = floor_binds(z1, z2, 0.2, 0.5, 1.0)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    partner = torch.cat([torch.arange(7) + 7, torch.arange(7)])
    terms = dense_hcl_terms(z, partner, torch.arange(14), 0.2, 0.5, 1.0)
    pos_logit = (z * z[partner]).sum(dim=1) / 0.2
    on_floor = torch.nn.functional.softplus(math.log(12) - 1 / 0.2 - pos_logit)
    torch.testing.assert_close(terms[binds], on_floor[binds])
    assert (terms[~binds] > on_floor[~binds]).all()


def test_hcl_does_not_overflow_where_the_official_code_does():
    # exp((1 + beta) s / t) = exp(600) overflows float32 in the official code; hcl stays exact.
    z1, z2 = draw(6, 5, seed=9), draw(6, 5, seed=10)
    t, beta = 0.01, 5.0
    official32 = hcl_official(z1.float(), z2.float(), t, 0.1, beta)
    assert not torch.isfinite(official32)
    check_against(
        lambda x, y: hcl(x, y, temperature=t, tau_plus=0.1, beta=beta),
        lambda x, y: hcl_official(x, y, t, 0.1, beta),
        (z1, z2),
        torch.float32,
    )


@pytest.mark.parametrize("t", [1e-3, 1e-2, 10.0, 1e3])
@pytest.mark.parametrize("loss", [nt_xent, hcl, dcl, clip])
def test_extreme_temperatures_stay_finite(loss, t):
    z1, z2 = draw(9, 6, seed=11, dtype=torch.float32), draw(9, 6, seed=12, dtype=torch.float32)
    value, grads = value_and_grad(lambda x, y: loss(x, y, temperature=t), z1, z2)
    assert torch.isfinite(value)
    assert all(torch.isfinite(g).all() for g in grads)


def test_dcl_is_hcl_with_beta_zero():
    z1, z2 = draw(8, 5, seed=13), draw(8, 5, seed=14)
    value, grads = value_and_grad(lambda x, y: dcl(x, y, temperature=0.3, tau_plus=0.2), z1, z2)
    ref_value, ref_grads = value_and_grad(
        lambda x, y: hcl(x, y, temperature=0.3, tau_plus=0.2, beta=0.0), z1, z2
    )
    assert value == ref_value
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=0)


def test_nt_xent_is_hcl_without_debiasing_or_hardening():
    # Including the degenerate batch where every negative is antipodal (the floor is reached):
    # the gradient still equals NT-Xent's.
    e = torch.eye(3, dtype=torch.float64)
    for z1, z2 in [(draw(6, 4, seed=15), draw(6, 4, seed=16)), (torch.stack([e[0], -e[0]]),) * 2]:
        value, grads = value_and_grad(lambda x, y: nt_xent(x, y, temperature=0.4), z1, z2)
        ref_value, ref_grads = value_and_grad(lambda x, y: nt_xent_ref(x, y, 0.4), z1, z2)
        hcl_value, hcl_grads = value_and_grad(
            lambda x, y: hcl(x, y, temperature=0.4, tau_plus=0.0, beta=0.0), z1, z2
        )
        assert_close(value, ref_value, 1e-12)
        assert value == hcl_value
        for grad, ref_grad, hcl_grad in zip(grads, ref_grads, hcl_grads, strict=True):
            assert_close(grad, ref_grad, 1e-9)
            torch.testing.assert_close(grad, hcl_grad, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b,d", SIZES)
@pytest.mark.parametrize("queue_rows,in_batch", [(0, True), (5, True), (11, False)])
def test_info_nce_matches_row_by_row_formula(b, d, dtype, queue_rows, in_batch):
    query, key = draw(b, d, seed=17), draw(b, d, seed=18)
    queue = draw(queue_rows, d, seed=19) if queue_rows else None
    check_against(
        lambda q, k: info_nce(
            q,
            k,
            temperature=0.2,
            negatives=None if queue is None else queue.to(q.dtype),
            in_batch_negatives=in_batch,
        ),
        lambda q, k: info_nce_ref(q, k, 0.2, queue, in_batch),
        (query, key),
        dtype,
    )


@pytest.mark.parametrize("b", [1, 7, 32])
def test_moco_queue_matches_manual_cross_entropy(b):
    query, key, queue = draw(b, 8, seed=20), draw(b, 8, seed=21), draw(16, 8, seed=22)
    check_against(
        lambda q, k, n: info_nce(q, k, temperature=0.07, negatives=n, in_batch_negatives=False),
        lambda q, k, n: moco_cross_entropy(q, k, 0.07, n),
        (query, key, queue),
        torch.float64,
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b,d", SIZES)
def test_clip_matches_two_cross_entropies(b, d, dtype):
    check_against(
        lambda a, c: clip(a, c, temperature=0.07),
        lambda a, c: clip_ref(a, c, 0.07),
        (draw(b, d, seed=23), draw(b, d, seed=24)),
        dtype,
    )


def test_clip_temperature_can_be_a_learnable_tensor():
    a, b = draw(6, 4, seed=25), draw(6, 4, seed=26)
    log_t = torch.tensor(math.log(0.1), dtype=torch.float64, requires_grad=True)
    value = clip(a, b, temperature=log_t.exp())
    value.backward()
    assert torch.isclose(value, clip_ref(a, b, 0.1))
    assert log_t.grad is not None and log_t.grad != 0


# ---------------------------------------------------------------------------- per-anchor kernels


def test_hcl_terms_for_a_subset_of_anchors_equal_the_full_terms():
    z = torch.nn.functional.normalize(draw(10, 4, seed=27), dim=1)
    partner = torch.cat([torch.arange(5) + 5, torch.arange(5)])
    full = dense_hcl_terms(z, partner, torch.arange(10), 0.5, 0.1, 1.0)
    anchors = torch.tensor([7, 2, 3])
    exact = {"rtol": 1e-12, "atol": 0.0}
    torch.testing.assert_close(
        dense_hcl_terms(z, partner, anchors, 0.5, 0.1, 1.0), full[anchors], **exact
    )
    # one partner entry per anchor is accepted too
    by_anchor = dense_hcl_terms(z, partner[anchors], anchors, 0.5, 0.1, 1.0)
    torch.testing.assert_close(by_anchor, full[anchors], **exact)
    assert torch.allclose(full.mean(), hcl_formula(z[:5], z[5:], 0.5, 0.1, 1.0))


def test_info_nce_terms_match_cross_entropy_per_row():
    q = torch.nn.functional.normalize(draw(4, 3, seed=28), dim=1)
    keys = torch.nn.functional.normalize(draw(6, 3, seed=29), dim=1)
    queue = torch.nn.functional.normalize(draw(2, 3, seed=30), dim=1)
    positive = torch.tensor([5, 0, 2, 3])
    terms = dense_info_nce_terms(q, keys, positive, queue, 0.5, True)
    logits = torch.cat([q @ keys.T, q @ queue.T], dim=1) / 0.5
    expected = torch.nn.functional.cross_entropy(logits, positive, reduction="none")
    torch.testing.assert_close(terms, expected)


# ---------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize(
    "loss",
    [nt_xent, hcl, dcl, clip, info_nce],
    ids=["nt_xent", "hcl", "dcl", "clip", "info_nce"],
)
def test_a_single_pair_gives_a_warned_exact_zero_on_the_graph(loss):
    z1 = draw(1, 4, seed=31).requires_grad_(True)
    z2 = draw(1, 4, seed=32).requires_grad_(True)
    with pytest.warns(NoValidAnchorsWarning, match="negative"):
        value = loss(z1, z2)
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.equal(z1.grad, torch.zeros_like(z1))
    assert torch.equal(z2.grad, torch.zeros_like(z2))


@pytest.mark.parametrize("loss", [nt_xent, hcl, clip, info_nce])
def test_an_empty_batch_gives_a_warned_zero(loss):
    with pytest.warns(NoValidAnchorsWarning):
        value = loss(torch.zeros(0, 4), torch.zeros(0, 4))
    assert value.item() == 0.0


def test_nt_xent_of_a_single_pair_equals_supcon_of_it():
    from contrastkit.losses import supcon

    z1, z2 = draw(1, 4, seed=33), draw(1, 4, seed=34)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (
            nt_xent(z1, z2).item()
            == supcon(torch.cat([z1, z2]), torch.tensor([0, 0]), temperature=0.5).item()
            == 0.0
        )


def test_a_queue_gives_a_single_row_its_negatives():
    query, key, queue = draw(1, 4, seed=35), draw(1, 4, seed=36), draw(3, 4, seed=37)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = info_nce(query, key, negatives=queue)
    assert torch.isclose(value, info_nce_ref(query, key, 0.07, queue, True))


def test_two_pairs_are_enough_and_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for loss in (nt_xent, hcl, dcl, clip, info_nce):
            assert loss(draw(2, 4, seed=38), draw(2, 4, seed=39)) > 0


@pytest.mark.parametrize("loss", [nt_xent, hcl, dcl, clip, info_nce])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_are_computed_in_float32(loss, dtype):
    z1, z2 = draw(12, 8, seed=40), draw(12, 8, seed=41)
    low = loss(z1.to(dtype), z2.to(dtype))
    assert low.dtype == torch.float32
    expected = loss(z1.to(dtype).double(), z2.to(dtype).double())
    assert torch.isclose(low.double(), expected, rtol=1e-5)


@pytest.mark.parametrize("loss", [nt_xent, hcl, dcl, clip, info_nce])
def test_gather_and_chunk_size_do_not_change_a_single_process_result(loss):
    z1, z2 = draw(9, 4, seed=42), draw(9, 4, seed=43)
    plain = loss(z1, z2)
    assert loss(z1, z2, gather=True) == plain
    assert torch.isclose(loss(z1, z2, chunk_size=4), plain)


def test_zero_rows_are_finite():
    z1 = draw(5, 4, seed=44)
    z1[2] = 0
    for loss in (nt_xent, hcl, dcl, clip, info_nce):
        value, grads = value_and_grad(loss, z1, draw(5, 4, seed=45))
        assert torch.isfinite(value) and all(torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------------------- bad input

TWO_VIEW = [nt_xent, hcl, dcl, clip, info_nce]


@pytest.mark.parametrize("loss", TWO_VIEW)
def test_mismatched_shapes_name_both(loss):
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5, 3\)"):
        loss(torch.randn(4, 3), torch.randn(5, 3))


@pytest.mark.parametrize("loss", TWO_VIEW)
def test_non_finite_rows_are_named(loss):
    z2 = torch.randn(6, 3)
    z2[4, 1] = float("nan")
    z2[1, 0] = float("inf")
    with pytest.raises(ValueError, match=r"rows 1, 4"):
        loss(torch.randn(6, 3), z2)


@pytest.mark.parametrize("loss", TWO_VIEW)
def test_wrong_rank_and_dtype(loss):
    with pytest.raises(ValueError, match="2-D"):
        loss(torch.randn(4), torch.randn(4))
    with pytest.raises(TypeError, match="floating"):
        loss(torch.ones(4, 3, dtype=torch.long), torch.ones(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="no columns"):
        loss(torch.randn(4, 0), torch.randn(4, 0))


@pytest.mark.parametrize("loss", TWO_VIEW)
@pytest.mark.parametrize("t", [0.0, -0.5, float("nan"), float("inf")])
def test_bad_temperature(loss, t):
    with pytest.raises(ValueError, match="temperature"):
        loss(torch.randn(4, 3), torch.randn(4, 3), temperature=t)


@pytest.mark.parametrize("loss", TWO_VIEW)
@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, True])
def test_bad_chunk_size(loss, chunk_size):
    with pytest.raises(ValueError, match="chunk_size"):
        loss(torch.randn(4, 3), torch.randn(4, 3), chunk_size=chunk_size)


@pytest.mark.parametrize("loss", [hcl, dcl])
@pytest.mark.parametrize("tau_plus", [1.0, -0.1, 1.5, float("nan")])
def test_tau_plus_must_be_in_zero_one(loss, tau_plus):
    with pytest.raises(ValueError, match=r"tau_plus.*\[0, 1\)"):
        loss(torch.randn(4, 3), torch.randn(4, 3), tau_plus=tau_plus)


def test_hcl_beta_must_be_finite():
    with pytest.raises(ValueError, match="beta"):
        hcl(torch.randn(4, 3), torch.randn(4, 3), beta=float("inf"))


def test_info_nce_without_any_negatives_is_refused():
    with pytest.raises(ValueError, match="in_batch_negatives=False needs a queue"):
        info_nce(torch.randn(4, 3), torch.randn(4, 3), in_batch_negatives=False)


def test_info_nce_queue_checks():
    q, k = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"negatives must have 3 columns.*\(5, 2\)"):
        info_nce(q, k, negatives=torch.randn(5, 2))
    queue = torch.randn(5, 3)
    queue[3] = float("nan")
    with pytest.raises(ValueError, match="negatives has non-finite values.*rows 3"):
        info_nce(q, k, negatives=queue)
    with pytest.warns(NoValidAnchorsWarning):
        assert info_nce(q[:1], k[:1], negatives=torch.randn(0, 3), in_batch_negatives=False) == 0


@pytest.mark.parametrize("loss", TWO_VIEW)
def test_autocast_does_not_lower_the_precision(loss):
    z1, z2 = draw(16, 8, seed=46, dtype=torch.float32), draw(16, 8, seed=47, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(z1, z2)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(z1, z2), rtol=1e-6, atol=0)
