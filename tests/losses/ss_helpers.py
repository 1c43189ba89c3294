"""Shared helpers of the self-supervised loss tests: seeded inputs and value+gradient checks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from ss_references import value_and_grad
from torch import Tensor

TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-4}
SIZES = [(2, 3), (7, 16), (32, 8)]


def draw(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> Tensor:
    """Standard normal entries from a generator seeded with `seed` (float64, then cast)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)


def assert_close(actual: Tensor, expected: Tensor, rtol: float) -> None:
    """Relative to the largest entry, so near-zero gradient entries do not need rtol alone."""
    expected = expected.to(torch.float64)
    scale = expected.abs().max().clamp_min(1e-12).item() if expected.numel() else 1.0
    torch.testing.assert_close(actual.to(torch.float64), expected, rtol=rtol, atol=rtol * scale)


def check_against(
    loss: Callable[..., Tensor],
    reference: Callable[..., Tensor],
    inputs: tuple[Tensor, ...],
    dtype: torch.dtype,
) -> None:
    """Value and gradient of `loss` on `inputs` cast to dtype vs `reference` in float64."""
    value, grads = value_and_grad(loss, *[x.to(dtype) for x in inputs])
    ref_value, ref_grads = value_and_grad(reference, *inputs)
    rtol = TOLERANCE[dtype]
    assert value.dtype == dtype
    assert_close(value, ref_value, rtol)
    for grad, ref_grad in zip(grads, ref_grads, strict=True):
        assert_close(grad, ref_grad, rtol)
