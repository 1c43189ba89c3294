"""Momentum (EMA) target networks and the memory queue of keys, for MoCo and BYOL.

The target is a copy of the online network that never receives a gradient: after each
optimiser step its parameters move towards the online ones,

    target <- m * target + (1 - m) * online

with the momentum m following BYOL's cosine schedule from `base` at the first step to 1 at the
last one. Both the target and the queue are registered submodules/buffers, so checkpoints save
them and a resumed run continues with the same target and the same queued keys.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """BYOL's schedule (Grill et al. 2020, section 3.2):

        m(step) = 1 - (1 - base) * (cos(pi * step / total_steps) + 1) / 2

    `base` at step 0, 1 at step `total_steps` (and after it); `total_steps` <= 0 gives `base`.
    """
    if not 0.0 <= base <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {base}")
    if total_steps <= 0:
        return float(base)
    progress = min(max(step / total_steps, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


class MomentumTarget(nn.Module):
    """A frozen copy of `online` (parameters with requires_grad=False), updated by EMA.

    `forward` runs the copy without building a graph. Only parameters are averaged; the
    copy's own buffers (batch-norm statistics) follow its own forward passes, as in MoCo.
    """

    def __init__(self, online: nn.Module) -> None:
        super().__init__()
        self.network = copy.deepcopy(online)
        for p in self.network.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        return self.network(*args, **kwargs)

    @torch.no_grad()
    def update(self, online: nn.Module, momentum: float) -> None:
        """target = momentum * target + (1 - momentum) * online, parameter by parameter."""
        target_params = list(self.network.parameters())
        online_params = list(online.parameters())
        if len(target_params) != len(online_params):
            raise ValueError("the online network no longer matches its momentum copy")
        for t, o in zip(target_params, online_params, strict=True):
            t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)


class MemoryQueue(nn.Module):
    """A first-in first-out ring of the last `size` keys (MoCo's dictionary), L2-normalised.

    Starts with random unit vectors (as MoCo does), so it can serve as negatives from the first
    step; `filled` counts the real keys pushed so far (at most `size`).
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"a memory queue needs size >= 1 and dim >= 1, got {size} and {dim}")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def push(self, keys: Tensor) -> None:
        """Write `keys` (n, dim) over the oldest entries, wrapping around the end of the ring.

        When n > size only the last `size` keys are kept (the older ones would be overwritten
        within this same push anyway).
        """
        if keys.dim() != 2 or keys.shape[1] != self.keys.shape[1]:
            raise ValueError(
                f"keys must have shape (n, {self.keys.shape[1]}), got {tuple(keys.shape)}"
            )
        n, size = keys.shape[0], self.size
        if n == 0:
            return
        start = int(self.pointer)
        slots = (start + torch.arange(n, device=self.keys.device)) % size
        values = F.normalize(keys.detach().to(self.keys.dtype), dim=1)
        if n > size:
            slots, values = slots[-size:], values[-size:]
        self.keys[slots] = values
        self.pointer.fill_((start + n) % size)
        self.filled.fill_(min(size, int(self.filled) + n))
