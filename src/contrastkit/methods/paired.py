"""Methods on pairs of texts, one shared tower embedding both columns.

- clip (no labels): the pairs (a_i, b_i) are the positives, the other rows' b (and a) the
  negatives (Radford et al. 2021; for two texts this is also sentence-transformers'
  MultipleNegativesRankingLoss made symmetric).
- cosent (labelled pairs: 1 = duplicate, 0 = not, or graded scores): every pair of a higher
  score ranks above every pair of a lower one by cosine (Su 2022). The label-0 pairs are the
  hard negatives: lexically close texts that mean something else.

One tower: the same encoder (the adapter over the frozen text model, or the text model itself
in mode finetune) embeds both columns, so `Refiner.transform(texts)` afterwards embeds any text
in the shared space. The loss sees the embeddings themselves (no projection head), so what it
aligns is exactly what `transform` returns.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit import losses
from contrastkit.config.defaults import PAIRS_FINETUNE_MODE
from contrastkit.methods.base import Batch, BuildContext, MethodSpec
from contrastkit.methods.two_view import with_gather


class PairedContrastive(nn.Module):
    """`clip(encoder(a), encoder(b))` with one shared encoder, both columns in one pass."""

    def __init__(self, encoder: nn.Module, options: dict) -> None:
        super().__init__()
        self.encoder, self.options = encoder, dict(options)

    def forward(self, batch: Batch) -> Tensor:
        a, b = batch.inputs, batch.inputs_b
        if b is None:
            raise ValueError("clip needs pairs: the batch has no second column (inputs_b)")
        joined = list(a) + list(b) if isinstance(a, list) else torch.cat([a, b])
        z = self.encoder(joined)
        return losses.clip(z[: len(a)], z[len(a) :], **self.options)


class PairedRanking(nn.Module):
    """`cosent(encoder(a), encoder(b), scores)` with one shared encoder, both columns in one
    pass."""

    def __init__(self, encoder: nn.Module, options: dict) -> None:
        super().__init__()
        self.encoder, self.options = encoder, dict(options)

    def forward(self, batch: Batch) -> Tensor:
        a, b = batch.inputs, batch.inputs_b
        joined = list(a) + list(b) if isinstance(a, list) else torch.cat([a, b])
        z = self.encoder(joined)
        return losses.cosent(z[: len(a)], z[len(a) :], batch.labels, **self.options)


def _build_cosent(ctx: BuildContext) -> nn.Module:
    return PairedRanking(ctx.encoder, with_gather("cosent", ctx))


def _build_clip(ctx: BuildContext) -> nn.Module:
    return PairedContrastive(ctx.encoder, with_gather("clip", ctx))


PAIRED_SPECS: dict[str, MethodSpec] = {
    "clip": MethodSpec(
        "clip",
        False,
        _build_clip,
        "CLIP: symmetric InfoNCE between the two texts of each pair (pairs, no labels)",
        loss=losses.clip,
        kinds=("pairs",),
    ),
    "cosent": MethodSpec(
        "cosent",
        True,
        _build_cosent,
        "CoSENT: pairs ranked by the cosine of their texts, higher scores above lower ones "
        "(labelled pairs: 1 = duplicate, 0 = not, or graded similarity scores)",
        loss=losses.cosent,
        kinds=("pairs",),
        default_modes={"pairs": PAIRS_FINETUNE_MODE},
    ),
}
