"""CLIP on paired texts: the pairs (a_i, b_i) are the positives, the other rows' b (and a) the
negatives (Radford et al. 2021; for two texts this is also sentence-transformers'
MultipleNegativesRankingLoss made symmetric).

One tower: the same encoder (the adapter over the frozen text model, or the text model itself
in mode finetune) embeds both columns, so `Refiner.transform(texts)` afterwards embeds any text
in the shared space. The loss sees the embeddings themselves (no projection head), so what it
aligns is exactly what `transform` returns.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit import losses
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
    )
}
