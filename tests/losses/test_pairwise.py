"""logistic_pair, contrastive_pair, triplet and npair against plain transcriptions
(references.py) and pytorch-metric-learning; edge cases, bad input and numerical safety."""

from __future__ import annotations

import warnings

import pytest
import references as ref
import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.losses import TripletMarginLoss
from pytorch_metric_learning.miners import BatchHardMiner
from pytorch_metric_learning.reducers import MeanReducer

from contrastkit.losses import (
    NoValidAnchorsWarning,
    contrastive_pair,
    logistic_pair,
    npair,
    triplet,
)

LABEL_PATTERNS = {
    "mixed_with_singletons": [0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4],
    "pairs": [0, 0, 1, 1, 2, 2, 3, 3],
    "two_classes": [1, 0, 1, 0, 0, 1, 1],
    "one_class": [5, 5, 5, 5, 5],
    "all_distinct": [0, 1, 2, 3, 4, 5],
    "single_row": [9],
    "twelve_random": [0, 1, 2, 1, 2, 0, 0, 2, 1, 1, 0, 2],
}


def _batch(pattern: str, generator, dim: int = 5, dtype=torch.float64):
    labels = torch.tensor(LABEL_PATTERNS[pattern])
    x = torch.randn(len(labels), dim, generator=generator, dtype=torch.float64) * 2.0
    return x.to(dtype), labels


def _assert_matches_reference(value_and_grad, loss_fn, ref_fn, *inputs, rtol=1e-6, atol=1e-9):
    """Value and gradients equal the reference's; where the reference has no anchor, the loss
    is an exact 0 with zero gradients and a warning."""
    if ref_fn(*(t.double() for t in inputs)) is None:
        with pytest.warns(NoValidAnchorsWarning):
            value, *grads = value_and_grad(loss_fn, *inputs)
        assert value.item() == 0.0 and all(g.eq(0).all() for g in grads)
        return
    value, *grads = value_and_grad(loss_fn, *inputs)
    ref_value, *ref_grads = value_and_grad(ref_fn, *(t.double() for t in inputs))
    torch.testing.assert_close(value.double(), ref_value, rtol=rtol, atol=atol)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(grad.double(), ref_grad, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- logistic_pair


@pytest.mark.parametrize("pattern", list(LABEL_PATTERNS))
@pytest.mark.parametrize("temperature, bias", [(0.1, 0.0), (0.5, -2.0), (1.0, 3.0)])
def test_logistic_pair_matches_reference(pattern, temperature, bias, generator, value_and_grad):
    x, labels = _batch(pattern, generator)
    _assert_matches_reference(
        value_and_grad,
        lambda v: logistic_pair(v, labels, temperature=temperature, bias=bias),
        lambda v: ref.logistic_pair_ref(v, labels, temperature, bias),
        x,
    )


def test_logistic_pair_learnable_temperature_and_bias(generator, value_and_grad):
    """SigLIP-style trainable scale and bias: 0-dim tensors get the reference gradients."""
    x, labels = _batch("twelve_random", generator)
    t, b = torch.tensor(0.3, dtype=torch.float64), torch.tensor(-1.5, dtype=torch.float64)
    _assert_matches_reference(
        value_and_grad,
        lambda v, tt, bb: logistic_pair(v, labels, temperature=tt, bias=bb),
        lambda v, tt, bb: ref.logistic_pair_ref(v, labels, tt, bb),
        x,
        t,
        b,
    )


def test_logistic_pair_float32_within_1e4(generator, value_and_grad):
    x, labels = _batch("twelve_random", generator, dtype=torch.float32)
    _assert_matches_reference(
        value_and_grad,
        lambda v: logistic_pair(v, labels, temperature=0.1, bias=-1.0),
        lambda v: ref.logistic_pair_ref(v, labels, 0.1, -1.0),
        x,
        rtol=1e-4,
        atol=1e-5,
    )


# ---------------------------------------------------------------- contrastive_pair


@pytest.mark.parametrize("pattern", list(LABEL_PATTERNS))
@pytest.mark.parametrize("pos_margin, neg_margin", [(0.0, 1.0), (0.3, 1.5), (0.5, 0.8)])
def test_contrastive_pair_matches_reference(
    pattern, pos_margin, neg_margin, generator, value_and_grad
):
    x, labels = _batch(pattern, generator)
    _assert_matches_reference(
        value_and_grad,
        lambda v: contrastive_pair(v, labels, pos_margin=pos_margin, neg_margin=neg_margin),
        lambda v: ref.contrastive_pair_ref(v, labels, pos_margin, neg_margin),
        x,
    )


def test_contrastive_pair_float32_within_1e4(generator, value_and_grad):
    x, labels = _batch("twelve_random", generator, dtype=torch.float32)
    _assert_matches_reference(
        value_and_grad,
        lambda v: contrastive_pair(v, labels, pos_margin=0.2, neg_margin=1.2),
        lambda v: ref.contrastive_pair_ref(v, labels, 0.2, 1.2),
        x,
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("loss_fn", [contrastive_pair, lambda x, y: triplet(x, y, mining="all")])
def test_coincident_rows_have_finite_gradients(loss_fn, generator):
    """d = 0 between identical rows: the square root is not differentiable there."""
    x, labels = _batch("pairs", generator)
    x[1] = x[0] * 3.0  # same direction: identical after normalisation
    x[3] = x[0]  # and a negative on top of them
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(x, labels), x)
    assert torch.isfinite(grad).all()


# ---------------------------------------------------------------- triplet


@pytest.mark.parametrize("pattern", list(LABEL_PATTERNS))
@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "all"])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_matches_reference(pattern, mining, margin, generator, value_and_grad):
    x, labels = _batch(pattern, generator)
    _assert_matches_reference(
        value_and_grad,
        lambda v: triplet(v, labels, margin=margin, mining=mining),
        lambda v: ref.triplet_ref(v, labels, margin, mining),
        x,
    )


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard", "all"])
def test_triplet_float32_within_1e4(mining, generator, value_and_grad):
    x, labels = _batch("twelve_random", generator, dtype=torch.float32)
    _assert_matches_reference(
        value_and_grad,
        lambda v: triplet(v, labels, margin=0.3, mining=mining),
        lambda v: ref.triplet_ref(v, labels, 0.3, mining),
        x,
        rtol=1e-4,
        atol=1e-5,
    )


def test_semi_hard_batch_exercises_both_negative_choices(generator):
    """Guards the test above: the batch has pairs with and without a farther negative."""
    x, labels = _batch("twelve_random", generator)
    z = ref.unit_rows(x)
    d = torch.cdist(z, z)
    same = labels[:, None] == labels[None, :]
    with_farther = without_farther = 0
    for i in range(len(labels)):
        for p in range(len(labels)):
            if p != i and same[i, p]:
                if (d[i][~same[i]] > d[i, p]).any():
                    with_farther += 1
                else:
                    without_farther += 1
    assert with_farther > 0 and without_farther > 0


@pytest.mark.parametrize("pattern", ["mixed_with_singletons", "twelve_random", "two_classes"])
@pytest.mark.parametrize("margin", [0.1, 0.5])
def test_batch_hard_matches_pytorch_metric_learning(pattern, margin, generator, value_and_grad):
    """PML: BatchHardMiner picks the same (anchor, hardest positive, hardest negative) for the
    anchors that have both; LpDistance normalises rows by default (Euclidean on z); the
    MeanReducer averages over those anchors, as LOSSES.md does (its default reducer would
    average over the non-zero ones only)."""
    x, labels = _batch(pattern, generator)
    miner = BatchHardMiner(distance=LpDistance(normalize_embeddings=True))
    oracle = TripletMarginLoss(margin=margin, distance=LpDistance(), reducer=MeanReducer())
    value, grad = value_and_grad(lambda v: triplet(v, labels, margin=margin), x)
    pml_value, pml_grad = value_and_grad(lambda v: oracle(v, labels, miner(v, labels)), x)
    torch.testing.assert_close(value, pml_value, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(grad, pml_grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("pattern", ["mixed_with_singletons", "twelve_random"])
def test_all_triplets_match_pytorch_metric_learning(pattern, generator, value_and_grad):
    """PML without a miner uses every triplet; its default AvgNonZeroReducer averages over the
    triplets with a non-zero loss, which is LOSSES.md's "all"."""
    x, labels = _batch(pattern, generator)
    oracle = TripletMarginLoss(margin=0.4)
    value, grad = value_and_grad(lambda v: triplet(v, labels, margin=0.4, mining="all"), x)
    pml_value, pml_grad = value_and_grad(lambda v: oracle(v, labels), x)
    torch.testing.assert_close(value, pml_value, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(grad, pml_grad, rtol=1e-6, atol=1e-9)


def test_all_triplets_with_satisfied_margin_is_zero_without_warning(generator):
    x, labels = _batch("twelve_random", generator)
    x.requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = triplet(x, labels, margin=-5.0, mining="all")
    assert loss.item() == 0.0 and loss.requires_grad
    (grad,) = torch.autograd.grad(loss, x)
    assert grad.eq(0).all()


def test_unknown_mining_lists_the_choices(generator):
    x, labels = _batch("pairs", generator)
    with pytest.raises(ValueError, match="batch_hard.*semi_hard.*all.*'hardest'"):
        triplet(x, labels, mining="hardest")


# ---------------------------------------------------------------- npair


@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("l2_reg", [0.0, 0.05])
def test_npair_matches_reference(n, l2_reg, generator, value_and_grad):
    a = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    p = a + 0.5 * torch.randn(n, 4, generator=generator, dtype=torch.float64)
    _assert_matches_reference(
        value_and_grad,
        lambda u, v: npair(u, v, l2_reg=l2_reg),
        lambda u, v: ref.npair_ref(u, v, l2_reg),
        a,
        p,
    )


def test_npair_float32_within_1e4(generator, value_and_grad):
    a = torch.randn(9, 6, generator=generator)
    p = torch.randn(9, 6, generator=generator)
    _assert_matches_reference(
        value_and_grad,
        lambda u, v: npair(u, v, l2_reg=0.02),
        lambda u, v: ref.npair_ref(u, v, 0.02),
        a,
        p,
        rtol=1e-4,
        atol=1e-5,
    )


def test_npair_uses_raw_vectors():
    """Scaling the inputs changes the loss (no normalisation), unlike the other losses."""
    a, p = torch.eye(3), torch.eye(3)
    assert npair(a * 3, p).item() < npair(a, p).item()


def test_npair_half_inputs_are_computed_in_float32(generator):
    a = (torch.randn(6, 8, generator=generator) * 30).half().requires_grad_(True)
    p = (torch.randn(6, 8, generator=generator) * 30).half()
    loss = npair(a, p, l2_reg=0.01)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    (grad,) = torch.autograd.grad(loss, a)
    assert torch.isfinite(grad).all()


def test_npair_empty_batch_warns():
    with pytest.warns(NoValidAnchorsWarning):
        assert npair(torch.zeros(0, 3), torch.zeros(0, 3)).item() == 0.0


def test_npair_rejects_bad_input(generator):
    a = torch.randn(4, 3, generator=generator)
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(5, 3\)"):
        npair(a, torch.randn(5, 3, generator=generator))
    with pytest.raises(ValueError, match="l2_reg"):
        npair(a, a, l2_reg=-1.0)
    bad = a.clone()
    bad[2, 0] = float("nan")
    with pytest.raises(ValueError, match="positives has non-finite values.*rows 2"):
        npair(a, bad)


# ---------------------------------------------------------------- shared rules


ALL_LOSSES = {
    "logistic_pair": lambda x, y: logistic_pair(x, y),
    "contrastive_pair": lambda x, y: contrastive_pair(x, y),
    "triplet_batch_hard": lambda x, y: triplet(x, y),
    "triplet_semi_hard": lambda x, y: triplet(x, y, mining="semi_hard"),
    "triplet_all": lambda x, y: triplet(x, y, mining="all"),
}


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_non_finite_rows_are_named(name, generator):
    x, labels = _batch("pairs", generator)
    x[5, 2] = float("-inf")
    with pytest.raises(ValueError, match="rows 5"):
        ALL_LOSSES[name](x, labels)


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_label_errors(name, generator):
    x, labels = _batch("pairs", generator)
    with pytest.raises(ValueError, match=r"\(8, 5\).*\(7,\)"):
        ALL_LOSSES[name](x, labels[:7])
    with pytest.raises(TypeError, match="integer"):
        ALL_LOSSES[name](x, labels.double())
    with pytest.raises(TypeError, match="torch.Tensor"):
        ALL_LOSSES[name](x, labels.tolist())


@pytest.mark.parametrize("name", list(ALL_LOSSES))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs_give_finite_values_and_grads(name, dtype, generator):
    x, labels = _batch("twelve_random", generator, dim=16)
    xh = x.to(dtype).requires_grad_(True)
    loss = ALL_LOSSES[name](xh, labels)
    (grad,) = torch.autograd.grad(loss, xh)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert torch.isfinite(grad).all()
    torch.testing.assert_close(
        loss.double(), ALL_LOSSES[name](x.to(dtype).double(), labels), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_extreme_row_norms_and_zero_rows(name, generator):
    x, labels = _batch("twelve_random", generator)
    x = x / x.norm(dim=1, keepdim=True) * torch.logspace(-6, 6, len(labels))[:, None].double()
    x[3] = 0.0
    x = x.float().requires_grad_(True)
    loss = ALL_LOSSES[name](x, labels)
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_logistic_pair_small_temperature_is_finite(generator):
    x, labels = _batch("twelve_random", generator)
    x = x.float().requires_grad_(True)
    loss = logistic_pair(x, labels, temperature=1e-3, bias=5.0)
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(loss) and loss > 100 and torch.isfinite(grad).all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x, y: logistic_pair(x, y, temperature=0.0), "temperature"),
        (lambda x, y: contrastive_pair(x, y, neg_margin=float("nan")), "neg_margin"),
        (lambda x, y: triplet(x, y, margin=float("inf")), "margin"),
    ],
)
def test_bad_arguments(call, match, generator):
    x, labels = _batch("pairs", generator)
    with pytest.raises(ValueError, match=match):
        call(x, labels)


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_autocast_does_not_lower_the_precision_of_similarities(name, generator):
    x, labels = _batch("twelve_random", generator, dim=32, dtype=torch.float32)
    expected = ALL_LOSSES[name](x, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = ALL_LOSSES[name](x, labels)
        a_loss = npair(x, x.flip(0))
    assert loss.dtype == torch.float32 and a_loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(a_loss, npair(x, x.flip(0)), rtol=1e-6, atol=1e-6)
