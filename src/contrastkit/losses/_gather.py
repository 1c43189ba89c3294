"""Distributed batches for the losses: one all-gather with gradient, shared by every loss.

With `gather=True` under torch.distributed (world size > 1) a loss sees the union of all
ranks' rows as its batch and returns the loss over its *own* anchors, scaled so that after
DDP averages gradients over ranks they equal the single-process gradients of the loss on
the concatenated batch:

    loss_r = world_size * (sum of l_i over rank r's anchors) / (number of anchors on all ranks)

The gradient of every rank's loss reaches the rows it borrowed from the others through the
backward of the all-gather (an all-reduce of the gradient, then each rank keeps its slice).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from contrastkit.losses._checks import zero_loss


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_gather_padded(x: Tensor, sizes: list[int]) -> Tensor:
    """Concatenation of every rank's `x`; ranks may hold different numbers of rows."""
    padded = x.new_zeros((max(sizes), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums the gradients over ranks and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: list[int], rank: int) -> Tensor:  # type: ignore[override]
        ctx.sizes, ctx.rank = sizes, rank
        return _all_gather_padded(x.detach(), sizes)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None


@dataclass(frozen=True)
class Gathered:
    """The batch a loss works on: all ranks' rows, and where this rank's rows are in it."""

    tensors: tuple[Tensor, ...]
    start: int
    stop: int
    world_size: int

    @property
    def local(self) -> slice:
        return slice(self.start, self.stop)


def gather_rows(*tensors: Tensor, gather: bool) -> Gathered:
    """All tensors share their first dimension; float tensors keep their gradient, integer ones
    (labels) are gathered as data. Without `gather` or outside torch.distributed this is a no-op."""
    n = tensors[0].shape[0]
    if not (gather and is_distributed()):
        return Gathered(tuple(tensors), 0, n, 1)
    world, rank = dist.get_world_size(), dist.get_rank()
    size = torch.tensor([n], device=tensors[0].device)
    sizes_t = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes_t, size)
    sizes = [int(s.item()) for s in sizes_t]
    out = []
    for t in tensors:
        if t.is_floating_point():
            out.append(_AllGatherWithGrad.apply(t, sizes, rank))
        else:
            out.append(_all_gather_padded(t, sizes))
    start = sum(sizes[:rank])
    return Gathered(tuple(out), start, start + n, world)


def mean_over_anchors(
    total: Tensor, count: int | Tensor, batch: Gathered, loss_name: str, reason: str
) -> Tensor:
    """Mean of per-anchor losses whose sum over this rank's anchors is `total`.

    `total` must be connected to the gathered rows so that every rank takes part in the
    backward collective. When no anchor is valid on any rank, returns an exact 0 on the graph
    with a warning.
    """
    count_all = global_count(count, batch)
    if count_all == 0:
        return zero_loss(batch.tensors[0], loss_name, reason)
    return total * (batch.world_size / count_all)


def global_count(count: int | Tensor, batch: Gathered) -> float:
    """Sum of a per-rank count over all ranks (a plain number, no gradient).

    For losses that average over several sets (pairs of each kind, non-zero triplets) and so
    need global denominators without the empty-batch rule of `mean_over_anchors`.
    """
    count_t = torch.as_tensor(count, dtype=torch.float64, device=batch.tensors[0].device)
    if batch.world_size > 1:
        count_t = count_t.clone()
        dist.all_reduce(count_t, op=dist.ReduceOp.SUM)
    return float(count_t.item())
