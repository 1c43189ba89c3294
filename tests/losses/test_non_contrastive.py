"""byol, barlow_twins, vicreg, sinkhorn and swav against plain transcriptions."""

from __future__ import annotations

import pytest
import torch
from ss_helpers import SIZES, assert_close, check_against, draw
from ss_references import (
    barlow_twins_ref,
    byol_ref,
    sinkhorn_ref,
    swav_ref,
    value_and_grad,
    vicreg_ref,
)

from contrastkit.losses import NoValidAnchorsWarning, barlow_twins, byol, sinkhorn, swav, vicreg


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b,d", [(1, 3), *SIZES])
def test_byol_matches_formula(b, d, dtype):
    check_against(byol, byol_ref, (draw(b, d, seed=1), draw(b, d, seed=2)), dtype)


# Two rows standardise to +-1 whatever their values: the gradient is O(eps / var) and float32
# cannot resolve it to 1e-4, so B = 2 is checked in float64 only.
BARLOW_CASES = [(2, 3, torch.float64)] + [
    (b, d, dtype) for b, d in [(3, 3), (7, 16), (32, 8)] for dtype in (torch.float64, torch.float32)
]


@pytest.mark.parametrize("b,d,dtype", BARLOW_CASES)
@pytest.mark.parametrize("lambd", [5e-3, 0.5])
def test_barlow_twins_matches_batchnorm_recipe(b, d, dtype, lambd):
    inputs = (3 * draw(b, d, seed=3) + 1, draw(b, d, seed=4))
    check_against(
        lambda x, y: barlow_twins(x, y, lambd=lambd),
        lambda x, y: barlow_twins_ref(x, y, lambd),
        inputs,
        dtype,
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b,d", SIZES)
@pytest.mark.parametrize("coeffs", [(25.0, 25.0, 1.0), (1.0, 0.0, 3.0)])
def test_vicreg_matches_formula(b, d, dtype, coeffs):
    # small inputs so the variance hinge is active for some columns
    inputs = (0.3 * draw(b, d, seed=5), 0.3 * draw(b, d, seed=6) + 0.1)
    sim, std, cov = coeffs
    check_against(
        lambda x, y: vicreg(x, y, sim_coeff=sim, std_coeff=std, cov_coeff=cov),
        lambda x, y: vicreg_ref(x, y, sim, std, cov),
        inputs,
        dtype,
    )


@pytest.mark.parametrize("loss", [barlow_twins, vicreg])
def test_batch_statistics_need_two_rows(loss):
    with pytest.raises(ValueError, match="at least 2 rows.*got a batch of 1"):
        loss(torch.randn(1, 4), torch.randn(1, 4))


@pytest.mark.parametrize("iterations", [0, 1, 3, 10])
@pytest.mark.parametrize("epsilon", [0.05, 0.5])
@pytest.mark.parametrize("b,k", [(1, 3), (7, 5), (32, 10)])
def test_sinkhorn_matches_the_swav_algorithm(b, k, epsilon, iterations):
    scores = torch.nn.functional.normalize(draw(b, k, seed=7), dim=1)  # cosine-like scores
    codes = sinkhorn(scores, epsilon=epsilon, iterations=iterations)
    expected = sinkhorn_ref(scores, epsilon, iterations)
    assert_close(codes, expected, 1e-10)
    if iterations:
        torch.testing.assert_close(codes.sum(dim=1), torch.ones(b, dtype=torch.float64))


def test_sinkhorn_does_not_overflow_on_large_scores():
    # exp(scores / eps) reaches exp(300): inf in float32 for the literal algorithm.
    scores = 5 * draw(16, 6, seed=8, dtype=torch.float32)
    assert not torch.isfinite(sinkhorn_ref(scores, 0.05, 3)).all()
    codes = sinkhorn(scores, epsilon=0.05, iterations=3)
    assert torch.isfinite(codes).all()
    # The algorithm is invariant to a shift of all scores; shifted, float64 holds it exactly.
    expected = sinkhorn_ref((scores - scores.max()).double(), 0.05, 3)
    assert torch.isfinite(expected).all()
    assert_close(codes, expected, 1e-4)


def test_sinkhorn_has_no_gradient_and_keeps_float32_for_half():
    scores = draw(5, 4, seed=9, dtype=torch.float16).requires_grad_(True)
    codes = sinkhorn(scores)
    assert codes.dtype == torch.float32 and not codes.requires_grad


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("b,k", [(1, 3), (7, 5), (32, 10)])
@pytest.mark.parametrize("iterations", [1, 3])
def test_swav_matches_formula(b, k, dtype, iterations):
    s1 = torch.nn.functional.normalize(draw(b, k, seed=10), dim=1)
    s2 = torch.nn.functional.normalize(draw(b, k, seed=11), dim=1)
    check_against(
        lambda x, y: swav(x, y, temperature=0.1, epsilon=0.05, sinkhorn_iterations=iterations),
        lambda x, y: swav_ref(x, y, 0.1, 0.05, iterations),
        (s1, s2),
        dtype,
    )


def test_swav_gradient_does_not_flow_through_the_codes():
    # With the codes held constant, d loss / d scores2 = (softmax(scores2 / t) - q1) / (2 B t):
    # only the prediction term of scores2 contributes, nothing through q2 = sinkhorn(scores2).
    b, t = 9, 0.2
    s1, s2 = draw(b, 6, seed=12), draw(b, 6, seed=13)
    _, (grad1, grad2) = value_and_grad(lambda x, y: swav(x, y, temperature=t), s1, s2)
    q1, q2 = sinkhorn(s1), sinkhorn(s2)
    expected2 = (torch.softmax(s2 / t, dim=1) - q1) / (2 * b * t)
    expected1 = (torch.softmax(s1 / t, dim=1) - q2) / (2 * b * t)
    assert_close(grad2, expected2, 1e-10)
    assert_close(grad1, expected1, 1e-10)


@pytest.mark.parametrize("loss", [byol, barlow_twins, vicreg, swav])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_are_computed_in_float32(loss, dtype):
    z1, z2 = draw(12, 8, seed=14).to(dtype), draw(12, 8, seed=15).to(dtype)
    value = loss(z1, z2)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isclose(value.double(), loss(z1.double(), z2.double()), rtol=1e-5)


@pytest.mark.parametrize("scale", [1e-6, 1e6])
@pytest.mark.parametrize("loss", [byol, barlow_twins, vicreg, swav])
def test_tiny_and_huge_inputs_stay_finite(loss, scale):
    z1, z2 = scale * draw(10, 6, seed=16), scale * draw(10, 6, seed=17)
    value, grads = value_and_grad(loss, z1.float(), z2.float())
    assert torch.isfinite(value) and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("loss", [byol, swav])
def test_an_empty_batch_gives_a_warned_zero(loss):
    z1 = torch.zeros(0, 4, requires_grad=True)
    with pytest.warns(NoValidAnchorsWarning, match="empty"):
        value = loss(z1, torch.zeros(0, 4))
    assert value.item() == 0.0 and value.requires_grad


@pytest.mark.parametrize("loss", [barlow_twins, vicreg, swav])
def test_gather_without_distributed_is_a_no_op(loss):
    z1, z2 = draw(6, 4, seed=18), draw(6, 4, seed=19)
    assert loss(z1, z2, gather=True) == loss(z1, z2)


def test_byol_is_zero_for_parallel_rows_and_four_for_opposite_ones():
    p = draw(5, 3, seed=20)
    assert torch.allclose(byol(p, 3 * p), torch.tensor(0.0, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(byol(p, -p), torch.tensor(4.0, dtype=torch.float64))


def test_barlow_twins_of_identical_decorrelated_views_is_near_zero():
    # Columns of an orthogonal design are standardised and uncorrelated: C = I (up to eps).
    h = torch.tensor(
        [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=torch.float64
    )
    z = h[:, 1:]
    assert barlow_twins(z, z) < 1e-4


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("loss", [byol, barlow_twins, vicreg, swav])
def test_mismatched_shapes_and_non_finite_rows(loss):
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(4, 5\)"):
        loss(torch.randn(4, 3), torch.randn(4, 5))
    bad = torch.randn(4, 3)
    bad[2, 0] = float("-inf")
    with pytest.raises(ValueError, match="rows 2"):
        loss(torch.randn(4, 3), bad)


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda x: barlow_twins(x, x, lambd=-1.0), "lambd"),
        (lambda x: vicreg(x, x, std_coeff=float("nan")), "std_coeff"),
        (lambda x: vicreg(x, x, cov_coeff=-2.0), "cov_coeff"),
        (lambda x: swav(x, x, temperature=0.0), "temperature"),
        (lambda x: swav(x, x, epsilon=-0.1), "epsilon"),
        (lambda x: swav(x, x, sinkhorn_iterations=-1), "sinkhorn_iterations"),
        (lambda x: swav(x, x, sinkhorn_iterations=2.5), "sinkhorn_iterations"),
        (lambda x: sinkhorn(x, epsilon=0.0), "epsilon"),
        (lambda x: sinkhorn(x, iterations=True), "iterations"),
    ],
)
def test_bad_options_are_named(call, name):
    with pytest.raises(ValueError, match=name):
        call(torch.randn(4, 3))


@pytest.mark.parametrize("loss", [byol, barlow_twins, vicreg, swav])
def test_autocast_does_not_lower_the_precision(loss):
    z1, z2 = draw(16, 8, seed=21, dtype=torch.float32), draw(16, 8, seed=22, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(z1, z2)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, loss(z1, z2), rtol=1e-6, atol=0)
