"""The EMA target, its cosine momentum schedule, and the memory queue (models/momentum.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.models.momentum import MemoryQueue, MomentumTarget, cosine_momentum


@pytest.mark.parametrize("base", [0.0, 0.9, 0.99, 0.996])
def test_cosine_momentum_endpoints_and_midpoint(base):
    total = 1000
    assert cosine_momentum(0, total, base) == pytest.approx(base, abs=1e-12)
    assert cosine_momentum(total, total, base) == pytest.approx(1.0, abs=1e-12)
    assert cosine_momentum(total + 50, total, base) == pytest.approx(1.0, abs=1e-12)
    assert cosine_momentum(total // 2, total, base) == pytest.approx(1 - (1 - base) / 2)
    # BYOL's formula, transcribed, at an arbitrary step
    step = 137
    expected = 1 - (1 - base) * (math.cos(math.pi * step / total) + 1) / 2
    assert cosine_momentum(step, total, base) == pytest.approx(expected, abs=1e-12)


def test_cosine_momentum_rises_monotonically_and_rejects_bad_base():
    values = [cosine_momentum(s, 50, 0.99) for s in range(51)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert cosine_momentum(5, 0, 0.99) == 0.99  # no schedule known: the base
    with pytest.raises(ValueError, match="momentum"):
        cosine_momentum(0, 10, 1.5)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_target_starts_as_a_frozen_copy_and_builds_no_graph():
    online = _net()
    target = MomentumTarget(online)
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        assert torch.equal(t, o)
        assert t.data_ptr() != o.data_ptr()
        assert not t.requires_grad
    out = target(torch.randn(5, 4))
    assert not out.requires_grad


@pytest.mark.parametrize("m", [0.0, 0.3, 0.99, 1.0])
def test_target_update_is_the_ema_formula(m):
    online = _net()
    target = MomentumTarget(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    before = [t.clone() for t in target.parameters()]
    target.update(online, m)
    for t, t0, o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(t, m * t0 + (1 - m) * o, rtol=1e-6, atol=1e-7)


def _reference_ring(size: int, pushes: list[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Write one key at a time into a list ring: the plain definition of a FIFO queue."""
    ring: list[torch.Tensor | None] = [None] * size
    pointer = 0
    for block in pushes:
        for key in block:
            ring[pointer] = F.normalize(key, dim=0)
            pointer = (pointer + 1) % size
    return ring, pointer


@pytest.mark.parametrize(
    "size,batches",
    [(5, [3, 3, 3]), (8, [4, 4, 4]), (6, [2, 5, 1, 7]), (4, [9]), (7, [7, 7]), (3, [0, 2])],
)
def test_queue_wraps_like_a_ring_written_one_key_at_a_time(size, batches):
    torch.manual_seed(1)
    queue = MemoryQueue(size, 3)
    initial = queue.keys.clone()
    pushes = [torch.randn(n, 3) for n in batches]
    for block in pushes:
        queue.push(block)
    ring, pointer = _reference_ring(size, pushes)
    assert int(queue.pointer) == pointer
    assert int(queue.filled) == min(size, sum(batches))
    for slot, expected in enumerate(ring):
        wanted = initial[slot] if expected is None else expected
        torch.testing.assert_close(queue.keys[slot], wanted)


def test_queue_keys_are_unit_rows_and_the_state_round_trips():
    queue = MemoryQueue(10, 4)
    queue.push(torch.randn(7, 4) * 5)
    torch.testing.assert_close(queue.keys.norm(dim=1), torch.ones(10))
    restored = MemoryQueue(10, 4)
    restored.load_state_dict(queue.state_dict())
    assert torch.equal(restored.keys, queue.keys)
    assert int(restored.pointer) == 7 and int(restored.filled) == 7


def test_queue_rejects_wrong_shapes():
    queue = MemoryQueue(4, 3)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        queue.push(torch.randn(2, 5))
    with pytest.raises(ValueError, match="size >= 1"):
        MemoryQueue(0, 3)
