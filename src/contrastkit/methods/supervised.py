"""Supervised recipes: encoder -> projection head -> a supervised loss (or cross-entropy)."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import losses
from contrastkit.errors import ConfigError
from contrastkit.methods.batch import Batch

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
# Augmented views of each image row in a batch. One: the class-balanced batch already gives
# every anchor positives (other rows of its class, each augmented), and a second view of the
# same row doubles the cost of a step. Fashion-MNIST, small CNN, 3 min of CPU each: kNN-1
# 89.96 % with one view, 88.27 % with two (ce 89.78 %); `python -m benchmarks.supcon_views`,
# benchmarks/results/supcon_views_3min.jsonl. SupCon's paper used two.
DEFAULT_VIEWS = 1


def loss_options_for(method: str, options: dict) -> dict:
    """The options `method`'s loss takes (and `views`, the recipe's own, for contrastive
    methods); an option it does not take is a ConfigError. A loss with `**options` takes any."""
    if method == "ce":
        allowed: set[str] = set()
    else:
        params = inspect.signature(SUPERVISED_LOSSES[method]).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return dict(options)  # a loss taking **options (e.g. a wrapper) takes them all
        allowed = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY} - {
            "gather",
            "chunk_size",
        }
        allowed.add("views")
    unknown = sorted(set(options) - allowed)
    if unknown:
        flags = ", ".join("--" + u.replace("_", "-") for u in unknown)
        takes = ", ".join("--" + a.replace("_", "-") for a in sorted(allowed)) or "none"
        raise ConfigError(f"{flags} is not an option of method {method} (its options: {takes})")
    return dict(options)


def check_supervised_fit(kind: str, mode: str, options: dict) -> None:
    """`views` only means something where rows are augmented: images."""
    if options.get("views") is not None and kind != "images":
        raise ConfigError(
            f"--views applies to images (augmented views), but the input is {kind}; leave it out"
        )


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
        self.options = dict(options)
        self.views = self.options.pop("views", None) or DEFAULT_VIEWS
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

    @torch.no_grad()
    def embed(self, x) -> Tensor:
        return F.normalize(self.encoder(x), dim=1)


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
