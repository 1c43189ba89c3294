"""Recipes with a momentum (EMA) target network: MoCo v2 and BYOL.

Both keep the online network (encoder + head) that the optimiser trains, and a
`MomentumTarget` copy of it that receives no gradient: after every optimiser step the trainer
calls `on_step_end(step, total_steps)`, which moves the copy towards the online network with
momentum `cosine_momentum(step, total_steps, momentum)` (from `momentum` up to 1 at the last
step). Only the online encoder is kept after training.
"""

from __future__ import annotations

from torch import Tensor, nn

from contrastkit import losses
from contrastkit.methods.base import Batch, BuildContext, MethodSpec
from contrastkit.methods.two_view import (
    check_views,
    encode_views,
    make_views,
    mlp_head,
    projection_head,
    with_gather,
)
from contrastkit.models.momentum import MemoryQueue, MomentumTarget, cosine_momentum
from contrastkit.views.batch import Views


class _MomentumMethod(nn.Module):
    """Shared parts: online encoder + head, views, and the EMA target of (encoder, head)."""

    def __init__(self, encoder: nn.Module, head: nn.Module, views: Views, momentum: float) -> None:
        super().__init__()
        self.encoder, self.head, self.views = encoder, head, views
        self.target = MomentumTarget(nn.Sequential(encoder, head))
        self.base_momentum = float(momentum)

    def online(self, x) -> Tensor:
        return self.head(self.encoder(x))

    def update_target(self, step: int, total_steps: int) -> float:
        m = cosine_momentum(step, total_steps, self.base_momentum)
        self.target.update(nn.Sequential(self.encoder, self.head), m)
        return m


class MoCo(_MomentumMethod):
    """MoCo v2 (He et al. 2020; Chen et al. 2020): query = online(view 1), key = target(view 2),

        loss = info_nce(query, key, negatives=queue, in_batch_negatives=False)

    then the keys join the queue (after the optimiser step, so a skipped step adds none).
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        views: Views,
        dim: int,
        queue_size: int,
        momentum: float,
        options: dict,
    ) -> None:
        super().__init__(encoder, head, views, momentum)
        self.queue = MemoryQueue(queue_size, dim)
        self.options = dict(options)
        self._pending: Tensor | None = None

    def forward(self, batch: Batch) -> Tensor:
        v1, v2 = self.views(batch.inputs)
        query = self.online(v1)
        key = self.target(v2)
        loss = losses.info_nce(
            query, key, negatives=self.queue.keys, in_batch_negatives=False, **self.options
        )
        self._pending = key.detach()
        return loss

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.update_target(step, total_steps)
        if self._pending is not None:
            self.queue.push(self._pending)
            self._pending = None


class BYOL(_MomentumMethod):
    """BYOL (Grill et al. 2020): p = predictor(online(view)), z = target(other view),
    symmetric loss `(byol(p1, z2) + byol(p2, z1)) / 2`; the target runs without a graph."""

    def __init__(
        self, encoder: nn.Module, head: nn.Module, views: Views, dim: int, momentum: float
    ) -> None:
        super().__init__(encoder, head, views, momentum)
        self.predictor = mlp_head(dim, dim, max(512, 4 * dim))

    def forward(self, batch: Batch) -> Tensor:
        views = self.views(batch.inputs)
        p1, p2 = encode_views(lambda x: self.predictor(self.online(x)), views)
        z1, z2 = encode_views(self.target, views)
        return (losses.byol(p1, z2.detach()) + losses.byol(p2, z1.detach())) / 2

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.update_target(step, total_steps)


def _build_moco(ctx: BuildContext) -> nn.Module:
    head, dim = projection_head(ctx)
    o = ctx.options
    options = with_gather("moco", ctx)
    return MoCo(ctx.encoder, head, make_views(ctx), dim, o["queue_size"], o["momentum"], options)


def _build_byol(ctx: BuildContext) -> nn.Module:
    head, dim = projection_head(ctx, batch_norm=True)
    return BYOL(ctx.encoder, head, make_views(ctx), dim, ctx.options["momentum"])


MOMENTUM_SPECS: dict[str, MethodSpec] = {
    "moco": MethodSpec(
        "moco",
        False,
        _build_moco,
        "MoCo v2: momentum key encoder and a queue of negative keys (no labels)",
        loss=losses.info_nce,
        check_fit=check_views,
    ),
    "byol": MethodSpec(
        "byol",
        False,
        _build_byol,
        "BYOL: online predictor regresses a momentum target's view (no labels, no negatives)",
        loss=losses.byol,
        check_fit=check_views,
    ),
}
