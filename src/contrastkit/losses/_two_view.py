"""Checks and the zero-with-warning rule shared by the two-view and cross-modal losses."""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

from contrastkit.losses._checks import check_matrix, check_same_shape, full_precision

LossFunction = TypeVar("LossFunction", bound=Callable[..., Tensor])


def autocast_off(function: LossFunction) -> LossFunction:
    """Run the loss with torch.autocast turned off on its first input's device, so similarities
    and statistics stay in float32 or wider under mixed-precision training."""

    @functools.wraps(function)
    def wrapper(first: Tensor, *args, **kwargs) -> Tensor:
        context = full_precision(first) if isinstance(first, Tensor) else contextlib.nullcontext()
        with context:
            return function(first, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_pair(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Two finite 2-D floating tensors of the same shape, each row with at least one column."""
    check_matrix(a, name_a)
    check_matrix(b, name_b)
    check_same_shape(a, b, name_a, name_b)
    if a.shape[1] == 0:
        raise ValueError(
            f"{name_a} and {name_b} have no columns (shape {tuple(a.shape)}); pass embeddings"
        )


def check_number(
    value: object,
    name: str,
    *,
    low: float,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = False,
) -> float:
    """A finite real number in the given range (a 0-dim tensor is accepted), else a clear error."""
    if isinstance(value, Tensor) and value.dim() == 0 and value.is_floating_point():
        number = float(value.detach())
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    above = number >= low if low_inclusive else number > low
    below = high is None or (number <= high if high_inclusive else number < high)
    if not (math.isfinite(number) and above and below):
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        upper = "inf" if high is None else f"{high:g}"
        raise ValueError(
            f"{name} must be a finite number in {left}{low:g}, {upper}{right}, got {value}"
        )
    return number


def check_temperature(temperature: object) -> None:
    check_number(temperature, "temperature", low=0.0)


def as_index(n: int, device: torch.device) -> Tensor:
    return torch.arange(n, device=device, dtype=torch.long)
