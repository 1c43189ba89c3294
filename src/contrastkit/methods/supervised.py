"""Supervised recipes: encoder -> projection head -> a supervised loss (or cross-entropy)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import losses
from contrastkit.errors import OptionError
from contrastkit.methods.base import Batch, BuildContext, MethodSpec, loss_keywords
from contrastkit.models.heads import ProjectionHead

# Losses taking (x, labels): usable as `--method NAME` with labelled data.
SUPERVISED_LOSSES: dict[str, Callable] = {
    "supcon": losses.supcon,
    "hscl": losses.hscl,
    "triplet": losses.triplet,
    "contrastive_pair": losses.contrastive_pair,
    "logistic_pair": losses.logistic_pair,
    "npair": losses.npair,
}
SUPERVISED_METHODS = (*SUPERVISED_LOSSES, "ce")


MAX_IMAGE_VIEWS = 2


def check_supervised_fit(kind: str, mode: str, options: dict) -> None:
    """`views` only means something where rows are augmented: images, and texts in adapter
    mode (copies with words deleted)."""
    views = options.get("views")
    if views is None:
        return
    if kind == "text" and mode != "adapter":
        raise OptionError(
            "views", "{option} applies to texts in adapter mode only; leave it out in finetune mode"
        )
    if kind not in ("images", "text"):
        raise OptionError(
            "views",
            f"{{option}} applies to images and texts (augmented views), but the input is {kind}; "
            "leave it out",
        )
    if kind == "images" and views > MAX_IMAGE_VIEWS:
        raise OptionError("views", f"{{option}} for images is 1 or 2, got {views}")


class SupervisedContrastive(nn.Module):
    """`loss(head(encoder(x)), labels)`; with `augment`, `views` augmented views of each row
    go into the batch, each carrying the row's label (views=2 is SupCon's recipe for images)."""

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        method: str,
        options: dict,
        *,
        augment: nn.Module | None = None,
        gather: bool = False,
    ) -> None:
        super().__init__()
        self.encoder, self.head, self.augment = encoder, head, augment
        self.method = method
        self.loss_fn = SUPERVISED_LOSSES[method]
        self.views = options.get("views", 1)  # images only: the plan sets it from DEFAULT_VIEWS
        self.options = loss_keywords(method, options)
        if method != "npair":
            self.options["gather"] = gather

    def forward(self, batch: Batch) -> Tensor:
        x, y = batch.inputs, batch.labels
        if self.augment is not None:
            x = torch.cat([self.augment(x) for _ in range(self.views)])
            y = y.repeat(self.views)
        z = self.head(self.encoder(x))
        if self.method == "npair":
            return self._npair(z, y)
        return self.loss_fn(z, y, **self.options)

    def _npair(self, z: Tensor, y: Tensor) -> Tensor:
        """N-pair needs (anchor, positive) pairs of distinct classes: the first two rows of each class."""
        first, second, seen = [], [], {}
        for i, label in enumerate(y.tolist()):
            if label not in seen:
                seen[label] = i
            elif seen[label] is not None:
                first.append(seen[label])
                second.append(i)
                seen[label] = None
        if not first:
            return (z * 0).sum()
        idx_a, idx_p = torch.tensor(first, device=z.device), torch.tensor(second, device=z.device)
        return self.loss_fn(z[idx_a], z[idx_p], **self.options)


class CrossEntropy(nn.Module):
    """The baseline users compare against: a linear classifier on the embedding."""

    def __init__(
        self, encoder: nn.Module, dim: int, num_classes: int, augment: nn.Module | None = None
    ):
        super().__init__()
        self.encoder, self.augment = encoder, augment
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, batch: Batch) -> Tensor:
        x = batch.inputs if self.augment is None else self.augment(batch.inputs)
        return F.cross_entropy(self.classifier(self.encoder(x)), batch.labels)


def _supervised_spec(name: str) -> MethodSpec:
    def build(ctx: BuildContext) -> nn.Module:
        head = ProjectionHead(ctx.dim, ctx.head_dim) if ctx.head_dim else nn.Identity()
        return SupervisedContrastive(
            ctx.encoder, head, name, ctx.options, augment=ctx.augment, gather=ctx.gather
        )

    loss = SUPERVISED_LOSSES[name]
    doc = (loss.__doc__ or name).strip().splitlines()[0]
    return MethodSpec(name, True, build, doc, loss=loss, check_fit=check_supervised_fit)


def _build_cross_entropy(ctx: BuildContext) -> nn.Module:
    return CrossEntropy(ctx.encoder, ctx.dim, ctx.num_classes, ctx.augment)


SUPERVISED_SPECS: dict[str, MethodSpec] = {
    **{name: _supervised_spec(name) for name in SUPERVISED_LOSSES},
    "ce": MethodSpec("ce", True, _build_cross_entropy, "cross-entropy on a linear head (baseline)"),
}
