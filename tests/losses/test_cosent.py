"""CoSENT against a plain transcription of its formula, and its edge cases."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from contrastkit import losses
from contrastkit.losses import NoValidAnchorsWarning


def _reference(a, b, y, t):
    """log(1 + sum over y_i > y_j of exp((s_j - s_i) / t)), pair by pair, in float64."""
    s = [float(torch.nn.functional.cosine_similarity(a[i], b[i], dim=0)) for i in range(len(a))]
    total = 1.0
    for i, j in itertools.product(range(len(a)), repeat=2):
        if y[i] > y[j]:
            total += math.exp((s[j] - s[i]) / t)
    return math.log(total)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("t", [0.05, 0.5])
def test_cosent_matches_the_formula_and_its_gradient(seed, t):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=g).double()
    value = losses.cosent(a, b, y, temperature=t)
    assert float(value.detach()) == pytest.approx(_reference(a.detach(), b, y, t), rel=1e-10)
    assert torch.autograd.gradcheck(lambda x: losses.cosent(x, b, y, temperature=t), (a,))


def test_cosent_ranks_duplicates_above_the_rest():
    """A few steps on it raise the cosine of every 1-pair above every 0-pair."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(12, 4, generator=g), torch.randn(12, 4, generator=g)
    y = torch.tensor([1.0, 0.0] * 6)
    shift = torch.zeros(12, 4, requires_grad=True)
    optimiser = torch.optim.SGD([shift], lr=0.5)
    for _ in range(200):
        optimiser.zero_grad()
        losses.cosent(a + shift, b, y, temperature=0.1).backward()
        optimiser.step()
    s = torch.nn.functional.cosine_similarity(a + shift, b)
    assert s[y == 1].min() > s[y == 0].max()


def test_cosent_with_no_ordered_pair_is_an_exact_zero_with_a_warning():
    a = torch.randn(4, 3, requires_grad=True)
    with pytest.warns(NoValidAnchorsWarning, match="different scores"):
        value = losses.cosent(a, torch.randn(4, 3), torch.ones(4))
    assert float(value) == 0.0
    value.backward()
    assert a.grad is not None


def test_cosent_refuses_bad_input():
    with pytest.raises(ValueError, match="one score per pair"):
        losses.cosent(torch.randn(4, 3), torch.randn(4, 3), torch.ones(3))
    with pytest.raises(ValueError, match="finite"):
        losses.cosent(torch.randn(2, 3), torch.randn(2, 3), torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError):
        losses.cosent(torch.randn(4, 3), torch.randn(4, 2), torch.ones(4))
