"""SwAV (Caron et al. 2020): swapped prediction of Sinkhorn cluster codes, with multi-crop.

    z_v = normalise(head(encoder(view v)));   scores_v = z_v @ C^T      (C: prototypes, unit rows)
    q_i = sinkhorn(scores_i)  for the two global views i (no gradient)
    loss = mean over i in {1, 2} of  mean over views v != i of  CE(q_i, softmax(scores_v / t))

With two views this is exactly `contrastkit.losses.swav(scores_1, scores_2)`. The prototypes
are re-normalised to unit length after every optimiser step, and receive no gradient during the
first `freeze_prototypes` steps (SwAV freezes them for its first epoch so the encoder and the
codes settle before the prototypes move). Multi-crop (2 global + `local_crops` small crops)
applies to images; text and vectors use two views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import losses
from contrastkit.config.defaults import MAX_AUTO_FREEZE
from contrastkit.errors import OptionError
from contrastkit.methods.base import Batch, BuildContext, MethodSpec
from contrastkit.methods.two_view import (
    check_views,
    encode_views,
    make_views,
    projection_head,
    with_gather,
)
from contrastkit.views.images import MultiCropViews


def swapped_prediction(
    scores: list[Tensor],
    *,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    gather: bool = False,
) -> Tensor:
    """SwAV's multi-crop loss from prototype scores [global 1, global 2, local ...] (see module
    docstring). Two entries give `losses.swav` itself."""
    if len(scores) == 2:
        return losses.swav(
            scores[0],
            scores[1],
            temperature=temperature,
            epsilon=epsilon,
            sinkhorn_iterations=sinkhorn_iterations,
            gather=gather,
        )
    total = scores[0].new_zeros(())
    for i in (0, 1):
        codes = losses.sinkhorn(
            scores[i], epsilon=epsilon, iterations=sinkhorn_iterations, gather=gather
        )
        for v, s in enumerate(scores):
            if v != i:
                log_p = F.log_softmax(s.float() / temperature, dim=1)
                total = total - (codes * log_p).sum(dim=1).mean() / (len(scores) - 1)
    return total / 2


class SwAV(nn.Module):
    """encoder -> head -> normalise -> prototype scores; `swapped_prediction` over the views."""

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        views: nn.Module,
        dim: int,
        num_prototypes: int,
        freeze_prototypes: int | None,
        options: dict,
    ) -> None:
        super().__init__()
        self.encoder, self.head, self.views = encoder, head, views
        self.prototypes = nn.Linear(dim, num_prototypes, bias=False)
        self.normalise_prototypes()
        self.freeze_prototypes = freeze_prototypes
        self.options = dict(options)
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("total_steps", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def normalise_prototypes(self) -> None:
        w = self.prototypes.weight
        w.copy_(F.normalize(w, dim=1))

    def prototypes_frozen(self) -> bool:
        """True while the prototypes get no gradient: the first `freeze_prototypes` steps, or by
        default the first 5 % of the run (at most 313 steps; the first step is always frozen)."""
        done = int(self.steps_done)
        if self.freeze_prototypes is not None:
            return done < self.freeze_prototypes
        total = int(self.total_steps)
        if total == 0:
            return True
        return done < max(1, min(MAX_AUTO_FREEZE, total // 20))

    def scores(self, x) -> Tensor:
        z = F.normalize(self.head(self.encoder(x)), dim=1)
        weight = self.prototypes.weight
        return z @ (weight.detach() if self.prototypes_frozen() else weight).T

    def forward(self, batch: Batch) -> Tensor:
        return swapped_prediction(
            encode_views(self.scores, self.views(batch.inputs)), **self.options
        )

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.steps_done.fill_(step)
        self.total_steps.fill_(total_steps)
        self.normalise_prototypes()


def _check_swav(kind: str, mode: str, options: dict) -> None:
    check_views(kind, mode, options)
    if options.get("local_crops") and kind != "images":
        raise OptionError(
            "local_crops",
            f"{{option}} applies to images (multi-crop), but the input is {kind}; leave it out",
        )


def _build_swav(ctx: BuildContext) -> nn.Module:
    head, dim = projection_head(ctx)
    o = ctx.options
    if ctx.kind == "images" and ctx.augment is not None and o["local_crops"] > 0:
        a = ctx.augment
        views: nn.Module = MultiCropViews(a.height, a.width, a.channels, o["local_crops"])
    else:
        views = make_views(ctx)
    return SwAV(
        ctx.encoder,
        head,
        views,
        dim,
        o["num_prototypes"],
        o.get("freeze_prototypes"),
        with_gather("swav", ctx),
    )


CLUSTERING_SPECS: dict[str, MethodSpec] = {
    "swav": MethodSpec(
        "swav",
        False,
        _build_swav,
        "SwAV: swapped prediction of Sinkhorn cluster codes, multi-crop for images (no labels)",
        loss=losses.swav,
        check_fit=_check_swav,
    )
}
