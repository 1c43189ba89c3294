"""Input checks and the shared rules every loss follows (see docs/losses.md, "Common rules")."""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class NoValidAnchorsWarning(UserWarning):
    """A loss found no anchor it could use (no positive or no negative) and returned an exact 0."""


class NonFiniteInputError(ValueError):
    """A loss was given NaN or inf. The trainer treats it as a non-finite step (skipped and
    counted): inside training it means the model's output overflowed, not that the data did."""


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32: half inputs are computed in float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def check_matrix(x: Tensor, name: str) -> None:
    """A 2-D floating tensor with finite values, or a ValueError naming the offending rows."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (rows x features), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    check_finite(x, name)


def check_finite(x: Tensor, name: str) -> None:
    finite = torch.isfinite(x.detach())
    if finite.all():
        return
    bad = (~finite).reshape(x.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
    shown = ", ".join(str(i) for i in bad[:10]) + (
        f" ... ({len(bad)} rows)" if len(bad) > 10 else ""
    )
    raise NonFiniteInputError(
        f"{name} has non-finite values (NaN or inf) in rows {shown}; drop or repair those rows"
    )


def check_labels(labels: Tensor, x: Tensor, name: str = "x") -> None:
    """Labels: a 1-D integer tensor with one entry per row of x."""
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor of integers, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(
            f"labels must have shape ({x.shape[0]},) to match {name} of shape {tuple(x.shape)}, "
            f"got labels of shape {tuple(labels.shape)}"
        )


def check_same_shape(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_positive(value: float, name: str) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def check_finite_number(value: float, name: str) -> None:
    """A real number that is not NaN or infinite (margins, hardness, regularisation weights)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_chunk_size(chunk_size: int | None) -> None:
    """`chunk_size` of the streaming kernels: None (choose automatically) or a positive int."""
    if chunk_size is None:
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be None or a positive integer, got {chunk_size!r}")


def full_precision(x: Tensor) -> contextlib.AbstractContextManager:
    """A context in which torch.autocast is off on `x`'s device, so that similarities stay in
    float32 or wider even when the caller trains under autocast (ARCHITECTURE, "Numerics")."""
    try:
        return torch.autocast(device_type=x.device.type, enabled=False)
    except RuntimeError:  # a device type autocast does not know: nothing to turn off
        return contextlib.nullcontext()


def normalise(x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Rows scaled to unit length, computed in float32 or wider; the gradient flows through."""
    x = x.to(dtype or compute_dtype(x))
    return F.normalize(x, dim=1, eps=torch.finfo(x.dtype).tiny ** 0.5)


CLASS_BALANCED_ADVICE = (
    "Use a class-balanced sampler (several rows per class in each batch) so every anchor has "
    "positives and negatives."
)


def zero_loss(
    connected_to: Tensor, loss_name: str, reason: str, advice: str = CLASS_BALANCED_ADVICE
) -> Tensor:
    """An exact 0 that is still on the autograd graph, with a NoValidAnchorsWarning that says
    why and what to do.

    The warning points at the first frame outside contrastkit, so Python's default filter
    shows it once per call site in the user's code.
    """
    warnings.warn(
        f"{loss_name}: {reason}; the loss is 0 for this batch. {advice}",
        NoValidAnchorsWarning,
        stacklevel=_stacklevel_outside_package(),
    )
    return (connected_to * 0).sum()


def log1mexp(d: Tensor) -> Tensor:
    """log(1 - e^d) for d < 0, accurate both near 0 and for very negative d (Maechler 2012)."""
    return torch.where(d > -math.log(2.0), torch.log(-torch.expm1(d)), torch.log1p(-torch.exp(d)))


def _stacklevel_outside_package() -> int:
    frame = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return level
