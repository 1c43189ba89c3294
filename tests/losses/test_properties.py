"""Properties every loss must have, checked by hypothesis on random batches: permutation
invariance, scale invariance of the normalising losses, the equalities LOSSES.md states, and
finite values and gradients for any finite input in float32, float16 and bfloat16."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ss_references import scl_official, supcon_khosla
from torch import Tensor

from contrastkit.losses import (
    barlow_twins,
    byol,
    clip,
    contrastive_pair,
    dcl,
    hcl,
    hscl,
    info_nce,
    logistic_pair,
    npair,
    nt_xent,
    supcon,
    swav,
    triplet,
    vicreg,
)

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Loss:
    name: str
    call: Callable[[Tensor, Tensor], Tensor]  # (rows, labels) or (view 1, view 2)
    labelled: bool
    normalising: bool  # invariant to rescaling each row by a positive number
    min_rows: int = 1


LOSSES = [
    Loss("supcon", lambda x, y: supcon(x, y), True, True),
    Loss("supcon_hard", lambda x, y: supcon(x, y, hardness=1.0), True, True),
    Loss("hscl", lambda x, y: hscl(x, y), True, True),
    Loss("logistic_pair", lambda x, y: logistic_pair(x, y), True, True),
    Loss("contrastive_pair", lambda x, y: contrastive_pair(x, y), True, True),
    Loss("triplet_batch_hard", lambda x, y: triplet(x, y), True, True),
    Loss("triplet_semi_hard", lambda x, y: triplet(x, y, mining="semi_hard"), True, True),
    Loss("triplet_all", lambda x, y: triplet(x, y, mining="all"), True, True),
    Loss("npair", lambda a, b: npair(a, b, l2_reg=0.01), False, False),
    Loss("nt_xent", lambda a, b: nt_xent(a, b), False, True),
    Loss("hcl", lambda a, b: hcl(a, b), False, True),
    Loss("dcl", lambda a, b: dcl(a, b), False, True),
    Loss("info_nce", lambda a, b: info_nce(a, b), False, True),
    Loss("clip", lambda a, b: clip(a, b), False, True),
    Loss("byol", lambda a, b: byol(a, b), False, True),
    Loss("barlow_twins", lambda a, b: barlow_twins(a, b), False, False, min_rows=2),
    Loss("vicreg", lambda a, b: vicreg(a, b), False, False, min_rows=2),
    Loss("swav", lambda a, b: swav(a, b), False, False),
]
IDS = [loss.name for loss in LOSSES]


@st.composite
def batches(draw, min_rows: int = 1, max_rows: int = 24):
    """(seed, rows, dim, number of classes) for a random batch."""
    rows = draw(st.integers(min_rows, max_rows))
    return (
        draw(st.integers(0, 2**31 - 1)),
        rows,
        draw(st.integers(1, 8)),
        draw(st.integers(1, rows)),
    )


def make_inputs(loss: Loss, seed: int, rows: int, dim: int, classes: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    first = torch.randn(rows, dim, generator=generator, dtype=torch.float64)
    if loss.labelled:
        return first, torch.randint(0, classes, (rows,), generator=generator)
    return first, torch.randn(rows, dim, generator=generator, dtype=torch.float64)


def quietly(function: Callable[..., Tensor], *inputs: Tensor) -> Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # batches without positives warn; the value is still 0
        return function(*inputs)


def permuted(loss: Loss, inputs: tuple[Tensor, Tensor], order: Tensor) -> tuple[Tensor, Tensor]:
    first, second = inputs
    return first[order], second[order]  # rows with their labels, or both views together


# ---------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
@SETTINGS
@given(batch=batches(min_rows=2), order_seed=st.integers(0, 2**31 - 1))
def test_permuting_rows_does_not_change_the_loss(loss, batch, order_seed):
    seed, rows, dim, classes = batch
    inputs = make_inputs(loss, seed, rows, dim, classes)
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(order_seed))
    expected = quietly(loss.call, *inputs)
    actual = quietly(loss.call, *permuted(loss, inputs, order))
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12)


NORMALISING = [loss for loss in LOSSES if loss.normalising]


@pytest.mark.parametrize("loss", NORMALISING, ids=[loss.name for loss in NORMALISING])
@SETTINGS
@given(batch=batches(), log_scales=st.lists(st.floats(-3, 3), min_size=48, max_size=48))
def test_rescaling_rows_does_not_change_a_normalising_loss(loss, batch, log_scales):
    seed, rows, dim, classes = batch
    first, second = make_inputs(loss, seed, rows, dim, classes)
    scales = 10 ** torch.tensor(log_scales, dtype=torch.float64)
    expected = quietly(loss.call, first, second)
    first_scaled = first * scales[:rows, None]
    second_scaled = second if loss.labelled else second * scales[rows : 2 * rows, None]
    actual = quietly(loss.call, first_scaled, second_scaled)
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------------------- equalities


@SETTINGS
@given(batch=batches(), t=st.sampled_from([0.05, 0.1, 0.5, 1.0]))
def test_supcon_without_hardness_is_khosla_supcon(batch, t):
    seed, rows, dim, classes = batch
    x, labels = make_inputs(LOSSES[0], seed, rows, dim, classes)
    expected = supcon_khosla(x, labels, t)
    actual = quietly(lambda a, b: supcon(a, b, temperature=t), x, labels)
    if expected is None:
        assert actual.item() == 0.0
    else:
        torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(batch=batches(), t=st.sampled_from([0.1, 0.5, 1.0]))
def test_hscl_without_hardening_is_the_scl_form(batch, t):
    seed, rows, dim, classes = batch
    x, labels = make_inputs(LOSSES[0], seed, rows, dim, classes)
    expected = scl_official(x, labels, t)
    actual = quietly(lambda a, b: hscl(a, b, temperature=t, beta=0.0), x, labels)
    if expected is None:
        assert actual.item() == 0.0
    else:
        torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12)


@SETTINGS
@given(
    batch=batches(min_rows=2),
    t=st.sampled_from([0.1, 0.5, 1.0]),
    tau_plus=st.floats(0.0, 0.95),
)
def test_dcl_is_hcl_with_beta_zero(batch, t, tau_plus):
    seed, rows, dim, _ = batch
    z1, z2 = make_inputs(LOSSES[9], seed, rows, dim, 1)
    expected = hcl(z1, z2, temperature=t, tau_plus=tau_plus, beta=0.0)
    assert dcl(z1, z2, temperature=t, tau_plus=tau_plus) == expected


@SETTINGS
@given(batch=batches(max_rows=32), t=st.sampled_from([0.05, 0.1, 0.5, 1.0]))
def test_nt_xent_is_supcon_on_instance_labels(batch, t):
    seed, rows, dim, _ = batch
    z1, z2 = make_inputs(LOSSES[9], seed, rows, dim, 1)
    instance = torch.arange(rows).repeat(2)
    z1_leaf, z2_leaf = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    actual = quietly(lambda a, b: nt_xent(a, b, temperature=t), z1_leaf, z2_leaf)
    expected = quietly(
        lambda a, b: supcon(torch.cat([a, b]), instance, temperature=t), z1_leaf, z2_leaf
    )
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12)
    grads = torch.autograd.grad(actual, [z1_leaf, z2_leaf])
    expected_grads = torch.autograd.grad(expected, [z1_leaf, z2_leaf])
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-8, atol=1e-12)


# ---------------------------------------------------------------------------- finiteness


# log10 of the row norms. float16 tops out at 65504 and its gradients (about 1 / norm for the
# normalising losses, about the input itself for the others) must fit too, so it gets narrower
# ranges; float32 and bfloat16 take 1e-6 .. 1e6.
def norm_range(loss: Loss, dtype: torch.dtype) -> tuple[float, float]:
    if dtype != torch.float16:
        return (-6.0, 6.0)
    return (-2.0, 4.0) if loss.normalising else (-2.0, 1.0)


@pytest.mark.parametrize("loss", LOSSES, ids=IDS)
@SETTINGS
@given(
    batch=batches(max_rows=64),
    dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]),
    norm_seed=st.integers(0, 2**31 - 1),
    same_views=st.booleans(),
)
def test_finite_values_and_gradients_for_finite_input(loss, batch, dtype, norm_seed, same_views):
    seed, rows, dim, classes = batch
    if rows < loss.min_rows:
        rows = loss.min_rows
        classes = min(classes, rows)
    first, second = make_inputs(loss, seed, rows, dim, classes)
    low, high = norm_range(loss, dtype)
    generator = torch.Generator().manual_seed(norm_seed)
    norms = 10 ** (
        low + (high - low) * torch.rand(2, rows, 1, generator=generator, dtype=torch.float64)
    )
    first = torch.nn.functional.normalize(first, dim=1) * norms[0]
    if not loss.labelled:
        second = (
            first.clone() if same_views else torch.nn.functional.normalize(second, dim=1) * norms[1]
        )
        second = second.to(dtype).requires_grad_(True)
    first = first.to(dtype).requires_grad_(True)
    value = quietly(loss.call, first, second)
    assert torch.isfinite(value), f"{loss.name} gave {value} in {dtype}"
    leaves = [first] if loss.labelled else [first, second]
    grads = torch.autograd.grad(value, leaves, allow_unused=True)
    for grad in grads:
        assert grad is None or torch.isfinite(grad).all(), (
            f"{loss.name}: non-finite gradient in {dtype}"
        )
