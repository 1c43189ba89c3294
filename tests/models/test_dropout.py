"""CheapDropout: the distribution, scaling, gradient and modes of nn.Dropout, with its own mask."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from contrastkit.models.dropout import CheapDropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_keep_rate_matches_one_minus_p(p):
    torch.manual_seed(0)
    mask = keep_mask(torch.Size([400, 1000]), p)
    n = mask.numel()
    # Binomial(n, 1 - p): five standard deviations either side.
    tolerance = 5 * math.sqrt(n * p * (1 - p))
    assert abs(int(mask.sum()) - n * (1 - p)) < tolerance


def test_mask_elements_are_independent_of_their_position():
    # Each int16 comes from a different quarter of an int64: none of the four may be biased
    # (a generator that left the top bit of its words at zero would make every fourth one so).
    torch.manual_seed(1)
    mask = keep_mask(torch.Size([200_000]), 0.5).view(-1, 4).float()
    per_position = mask.mean(dim=0)
    tolerance = 5 * math.sqrt(0.25 / mask.shape[0])
    assert torch.all((per_position - 0.5).abs() < tolerance), per_position
    # neighbours uncorrelated
    a, b = mask[:, 0] - 0.5, mask[:, 1] - 0.5
    assert abs(float((a * b).mean())) < 5 * 0.25 / math.sqrt(mask.shape[0])


def test_output_is_the_kept_input_scaled_to_keep_the_expectation():
    torch.manual_seed(2)
    x = torch.randn(300, 500)
    out = CheapDropout(0.3).train()(x)
    kept = out != 0
    # kept elements are x / P(keep), exactly as nn.Dropout scales them
    scale = out[kept] / x[kept]
    torch.testing.assert_close(scale, torch.full_like(scale, 1 / 0.7), rtol=1e-4, atol=0)
    ones = CheapDropout(0.3).train()(torch.ones(1000, 1000))
    assert abs(float(ones.mean()) - 1.0) < 0.01


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(3)
    x = torch.randn(64, 32, requires_grad=True)
    out = CheapDropout(0.5).train()(x)
    out.sum().backward()
    expected = (out.detach() != 0).float() * 2.0
    torch.testing.assert_close(x.grad, expected)


def test_eval_mode_and_p_zero_are_the_identity():
    x = torch.randn(10, 7)
    assert CheapDropout(0.4).eval()(x) is x
    assert CheapDropout(0.0).train()(x) is x


def test_p_one_drops_everything_like_nn_dropout():
    x = torch.randn(5, 6)
    torch.testing.assert_close(CheapDropout(1.0).train()(x), nn.Dropout(1.0).train()(x))
    assert torch.count_nonzero(CheapDropout(1 - 1e-7).train()(x)) == 0


def test_the_same_seed_gives_the_same_mask():
    x = torch.randn(50, 40)
    torch.manual_seed(7)
    first = CheapDropout(0.2).train()(x)
    torch.manual_seed(7)
    second = CheapDropout(0.2).train()(x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_a_probability_outside_zero_one_is_refused(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        CheapDropout(p)


def test_odd_sizes_and_shapes_keep_their_shape():
    torch.manual_seed(4)
    for shape in [(1,), (3, 5), (2, 3, 7)]:
        x = torch.ones(shape)
        assert CheapDropout(0.5).train()(x).shape == x.shape
