"""Every loss, under hypothesis: random labels, batch sizes 1..64, float32 / float16 / bfloat16
inputs and row norms anywhere from 1e-6 to 1e6, for the normalising losses and the others
alike. Each example must end in one of the outcomes LOSSES.md documents:

- a finite value and finite gradients;
- or a ValueError naming the rows, when the input itself is not finite: a float16 row whose
  entries exceed 65504 is already inf after the cast (LOSSES.md: "Non-finite inputs raise
  ValueError naming the offending rows");
- or a ValueError asking for a larger batch, for the losses that need batch statistics
  (barlow_twins and vicreg need 2 rows);
- and, float16 only: a gradient entry may be inf exactly where the true gradient (the same
  loss on the same values in float32) exceeds float16's largest finite value, 65504. The
  losses compute in float32 and the gradient is cast back to the input's dtype, so this
  overflow is the dtype's limit, not the loss's: a normalising loss's gradient grows like
  1 / ||x|| (rows shorter than ~1e-5 overflow it), a non-normalising one's like ||x|| or
  faster. The test checks that every inf is such an overflow.

tests/losses/test_properties.py checks the invariances and equalities, and finiteness over
narrower norm ranges chosen so that float16 never overflows; this file covers the full range.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import Tensor

from contrastkit import losses

FLOAT16_MAX = torch.finfo(torch.float16).max
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@dataclass(frozen=True)
class Loss:
    name: str  # the function in contrastkit.losses.LOSSES this case calls
    call: Callable[[Tensor, Tensor], Tensor]
    labelled: bool  # (rows, labels) instead of two views
    min_rows: int = 1  # fewer rows: the documented "needs a batch of at least" ValueError


CASES = {
    "supcon": Loss("supcon", lambda x, y: losses.supcon(x, y), True),
    "supcon hardness=2": Loss("supcon", lambda x, y: losses.supcon(x, y, hardness=2.0), True),
    "hscl": Loss("hscl", lambda x, y: losses.hscl(x, y), True),
    "logistic_pair": Loss("logistic_pair", lambda x, y: losses.logistic_pair(x, y), True),
    "contrastive_pair": Loss("contrastive_pair", lambda x, y: losses.contrastive_pair(x, y), True),
    "triplet batch_hard": Loss("triplet", lambda x, y: losses.triplet(x, y), True),
    "triplet semi_hard": Loss(
        "triplet", lambda x, y: losses.triplet(x, y, mining="semi_hard"), True
    ),
    "triplet all": Loss("triplet", lambda x, y: losses.triplet(x, y, mining="all"), True),
    "npair": Loss("npair", lambda a, b: losses.npair(a, b, l2_reg=0.01), False),
    "nt_xent": Loss("nt_xent", lambda a, b: losses.nt_xent(a, b), False),
    "info_nce": Loss("info_nce", lambda a, b: losses.info_nce(a, b), False),
    "dcl": Loss("dcl", lambda a, b: losses.dcl(a, b), False),
    "hcl": Loss("hcl", lambda a, b: losses.hcl(a, b), False),
    "clip": Loss("clip", lambda a, b: losses.clip(a, b), False),
    "byol": Loss("byol", lambda a, b: losses.byol(a, b), False),
    "barlow_twins": Loss("barlow_twins", lambda a, b: losses.barlow_twins(a, b), False, 2),
    "vicreg": Loss("vicreg", lambda a, b: losses.vicreg(a, b), False, 2),
    "swav": Loss("swav", lambda a, b: losses.swav(a, b), False),
    "cosent": Loss("cosent", lambda a, b: losses.cosent(a, b, _scores(len(a))), False),
}

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _scores(n: int) -> Tensor:
    """Scores for n pairs: alternating 1 / 0 (a single pair has nothing to rank)."""
    return (torch.arange(n) % 2).to(torch.float64)


def test_every_loss_is_covered():
    assert {case.name for case in CASES.values()} == set(losses.LOSSES)


@st.composite
def examples(draw):
    rows = draw(st.integers(1, 64))
    # the batch's row norms span [10^low, 10^high] within [1e-6, 1e6]: some batches are all
    # tiny or all huge, some mix the extremes
    low = draw(st.floats(-6.0, 6.0))
    return {
        "log_norms": (low, draw(st.floats(low, 6.0))),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "rows": rows,
        "dim": draw(st.integers(1, 16)),
        "classes": draw(st.integers(1, rows)),
        "same_views": draw(st.booleans()),
    }


def make_inputs(loss: Loss, ex: dict) -> tuple[Tensor, Tensor]:
    """float64 rows with norms log-uniform in the example's range, and labels or a second view."""
    g = torch.Generator().manual_seed(ex["seed"])
    rows, dim = ex["rows"], ex["dim"]

    def rows_with_random_norms() -> Tensor:
        x = torch.nn.functional.normalize(torch.randn(rows, dim, generator=g, dtype=torch.float64))
        low, high = ex["log_norms"]
        exponents = low + (high - low) * torch.rand(rows, 1, generator=g, dtype=torch.float64)
        return x * 10**exponents

    first = rows_with_random_norms()
    if loss.labelled:
        return first, torch.randint(0, ex["classes"], (rows,), generator=g)
    return first, first.clone() if ex["same_views"] else rows_with_random_norms()


def quietly(loss: Loss, a: Tensor, b: Tensor) -> Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # batches without positives warn; the value is still 0
        return loss.call(a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@SETTINGS
@given(ex=examples())
def test_finite_values_and_gradients_or_the_documented_error(case, dtype, ex):
    loss = CASES[case]
    first, second = make_inputs(loss, ex)
    a = first.to(dtype).requires_grad_(True)
    b = second if loss.labelled else second.to(dtype).requires_grad_(True)
    leaves = [a] if loss.labelled else [a, b]

    inputs_finite = all(bool(torch.isfinite(t).all()) for t in leaves)
    if not inputs_finite:  # only float16 can overflow on the cast
        assert dtype == torch.float16
        event("float16 input overflows: ValueError")
        with pytest.raises(ValueError, match=r"non-finite values \(NaN or inf\) in rows"):
            quietly(loss, a, b)
        return
    if ex["rows"] < loss.min_rows:
        event("batch too small: ValueError")
        with pytest.raises(ValueError, match=f"at least {loss.min_rows} rows"):
            quietly(loss, a, b)
        return

    value = quietly(loss, a, b)
    assert torch.isfinite(value), f"{case} gave {value} in {dtype}"
    grads = torch.autograd.grad(value, leaves, allow_unused=True)
    if dtype != torch.float16:
        event("finite value and gradients")
        for grad in grads:
            assert grad is None or torch.isfinite(grad).all(), f"{case}: non-finite grad, {dtype}"
        return
    # float16: every non-finite gradient entry is one whose true value does not fit float16
    wide = [t.detach().float().requires_grad_(True) for t in leaves]
    wide_b = b if loss.labelled else wide[1]
    wide_value = quietly(loss, wide[0], wide_b)
    wide_grads = torch.autograd.grad(wide_value, wide, allow_unused=True)
    for grad, wide_grad in zip(grads, wide_grads, strict=True):
        if grad is None:
            continue
        overflow = ~torch.isfinite(grad)
        event("float16 gradient overflows" if overflow.any() else "finite value and gradients")
        assert torch.isfinite(wide_grad).all()
        assert (wide_grad[overflow].abs() > FLOAT16_MAX).all(), (
            f"{case}: inf gradient where the float32 gradient fits float16"
        )


def test_the_documented_errors_name_rows_and_batch_size():
    x = torch.ones(3, 4, dtype=torch.float16) * 70000  # inf once in float16
    with pytest.raises(ValueError, match=re.escape("rows 0, 1, 2")):
        losses.supcon(x, torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="at least 2 rows"):
        losses.vicreg(torch.randn(1, 4), torch.randn(1, 4))
