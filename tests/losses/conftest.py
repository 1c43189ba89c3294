"""Shared fixtures for the loss tests: a seeded generator and value-plus-gradient helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU generator with a fixed seed, so each test draws the same random inputs."""
    return torch.Generator().manual_seed(0)


def _value_and_grad(loss_fn: Callable[..., Tensor], *inputs: Tensor) -> tuple[Tensor, ...]:
    """(loss, d loss / d input for each input) via torch.autograd.grad; inputs are cloned."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    value = loss_fn(*leaves)
    grads = torch.autograd.grad(value, leaves, allow_unused=True)
    return (
        value.detach(),
        *(g if g is not None else torch.zeros_like(t) for g, t in zip(grads, leaves, strict=True)),
    )


@pytest.fixture
def value_and_grad() -> Callable[..., tuple[Tensor, ...]]:
    """`value_and_grad(fn, *inputs)` -> (loss, grad of each input)."""
    return _value_and_grad
