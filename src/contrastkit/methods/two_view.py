"""Self-supervised recipes: no labels, the views make the positive pairs.

Views per kind of input (`contrastkit.views.batch.Views`):
- images: `ImageViews("self_supervised")` applied to the batch once per view (random resized
  crop, flip, colour jitter, grayscale for RGB, blur, solarize); SwAV uses multi-crop.
- text in mode finetune: the same sentences go twice through the text encoder in train mode,
  so its dropout makes the two views (SimCSE); `text_augment` delete / swap / mask also edits
  the words of each view (see `contrastkit.views.text`).
- text and vectors in mode adapter: the frozen base embeddings go twice through the adapter in
  train mode; its input-feature dropout (`input_dropout`, 0.3 by default) and hidden dropout
  are the views. The adapter starts as the identity, so the two views start equal and drift
  apart only as far as the adapter learns to use the dropped features.

This module holds the two-view recipes whose loss compares the two projections directly
(simclr, dcl, hcl, barlow_twins, vicreg, simcse); `momentum_methods` holds moco and byol,
`clustering` swav, `paired` clip. Each recipe is a `Recipe`, turned into a `MethodSpec` by
`contrastkit.methods.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from contrastkit import losses
from contrastkit.errors import OptionError
from contrastkit.methods.base import Batch, BuildContext, MethodSpec, loss_keywords
from contrastkit.models.heads import ProjectionHead
from contrastkit.views.batch import Views, mask_token_of


def check_views(kind: str, mode: str, options: dict) -> None:
    """`text_augment` edits words, so it needs raw texts, i.e. text in mode finetune."""
    augment = options.get("text_augment")
    if augment is None:
        return
    if kind != "text":
        raise OptionError(
            "text_augment", f"{{option}} applies to text, but the input is {kind}; leave it out"
        )
    if augment != "dropout" and mode != "finetune":
        raise OptionError(
            "text_augment",
            f"{{option}} {augment} edits words, so it needs mode finetune; in mode {mode} the "
            "texts are embedded once by the frozen model and the adapter's feature dropout makes "
            "the views (leave {option} out)",
        )


def mlp_head(in_dim: int, out_dim: int, hidden_dim: int) -> nn.Sequential:
    """Linear, BatchNorm, ReLU, Linear: the projector/predictor of BYOL, Barlow Twins, VICReg."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.BatchNorm1d(hidden_dim),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_dim, out_dim),
    )


def projection_head(ctx: BuildContext, batch_norm: bool = False) -> tuple[nn.Module, int]:
    """The head the loss sees (identity in adapter mode unless asked for) and its output size."""
    if not ctx.head_dim:
        return nn.Identity(), ctx.dim
    if batch_norm:
        return mlp_head(ctx.dim, ctx.head_dim, max(512, ctx.dim)), ctx.head_dim
    return ProjectionHead(ctx.dim, ctx.head_dim), ctx.head_dim


def make_views(ctx: BuildContext) -> Views:
    """The views for this context; a text encoder's tokenizer supplies the mask token."""
    return Views(
        ctx.augment, ctx.kind, ctx.mode, ctx.options.get("text_augment"), mask_token_of(ctx.encoder)
    )


def encode_views(network: Callable[[Any], Tensor], views: list) -> list[Tensor]:
    """`network` applied to every view, in as few passes as the views allow: texts and tensors
    of one shape are concatenated into a single batch (batch norm then sees all views)."""
    if isinstance(views[0], list):
        sizes = [len(v) for v in views]
        return list(network([t for v in views for t in v]).split(sizes))
    out: list[Tensor | None] = [None] * len(views)
    groups: dict[tuple, list[int]] = {}
    for i, view in enumerate(views):
        groups.setdefault(tuple(view.shape[1:]), []).append(i)
    for members in groups.values():
        z = network(torch.cat([views[i] for i in members]))
        for i, part in zip(members, z.split([len(views[i]) for i in members]), strict=True):
            out[i] = part
    return out  # type: ignore[return-value]


class TwoViewMethod(nn.Module):
    """`loss(head(encoder(view 1)), head(encoder(view 2)))` for the losses that compare the two
    projections directly."""

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        views: Views,
        loss: Callable[..., Tensor],
        loss_options: dict,
    ) -> None:
        super().__init__()
        self.encoder, self.head, self.views = encoder, head, views
        self.loss, self.loss_options = loss, dict(loss_options)

    def project(self, x: Any) -> Tensor:
        return self.head(self.encoder(x))

    def forward(self, batch: Batch) -> Tensor:
        z1, z2 = encode_views(self.project, self.views(batch.inputs))
        return self.loss(z1, z2, **self.loss_options)


def with_gather(name: str, ctx: BuildContext) -> dict:
    """The options of `name` that go to its loss, plus `gather` (all these losses take it)."""
    return {**loss_keywords(name, ctx.options), "gather": ctx.gather}


def _two_view(
    name: str,
    loss: Callable[..., Tensor],
    description: str,
    *,
    batch_norm_head: bool = False,
    **spec: Any,
) -> MethodSpec:
    def build(ctx: BuildContext) -> nn.Module:
        head, _ = projection_head(ctx, batch_norm=batch_norm_head)
        return TwoViewMethod(ctx.encoder, head, make_views(ctx), loss, with_gather(name, ctx))

    return MethodSpec(name, False, build, description, loss=loss, check_fit=check_views, **spec)


TWO_VIEW_SPECS: dict[str, MethodSpec] = {
    s.name: s
    for s in (
        _two_view("simclr", losses.nt_xent, "SimCLR: NT-Xent over two views (no labels)"),
        _two_view("dcl", losses.dcl, "DCL: debiased contrastive loss over two views (no labels)"),
        _two_view("hcl", losses.hcl, "HCL: hard negatives without labels, over two views"),
        _two_view(
            "barlow_twins",
            losses.barlow_twins,
            "Barlow Twins: cross-correlation of two views towards the identity (no labels)",
            batch_norm_head=True,
        ),
        _two_view(
            "vicreg",
            losses.vicreg,
            "VICReg: variance, invariance, covariance of two views (no labels)",
            batch_norm_head=True,
        ),
        _two_view(
            "simcse",
            losses.info_nce,
            "SimCSE: each sentence against its dropout twin, the others' twins as negatives "
            "(text only; defaults to mode finetune; use simclr for vectors and images)",
            kinds=("text",),
            default_modes={"text": "finetune"},
        ),
    )
}
