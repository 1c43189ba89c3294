"""What every method is: a `MethodSpec` (name, labels or not, the inputs it takes, how its
training module is built) and one check of the options a user gives it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from contrastkit.config.options import BY_NAME, options_of
from contrastkit.errors import OptionError

# Loss keywords a method sets itself, never the user.
INTERNAL_LOSS_KEYWORDS = frozenset({"gather", "chunk_size", "negatives", "in_batch_negatives"})


@dataclass
class Batch:
    """What a method receives for one training step."""

    inputs: Any  # Tensor of vectors/images, or a list of texts
    labels: Tensor | None = None
    inputs_b: Any = None  # second element of pairs (CLIP)

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True)
class BuildContext:
    """What a method needs to assemble its training module."""

    encoder: nn.Module
    dim: int
    num_classes: int | None
    options: dict  # every option of the method, resolved by the plan (user's values win)
    head_dim: int | None  # None: the loss sees the embedding itself (no projection head)
    gather: bool
    augment: nn.Module | None  # image views, None for text/vectors
    kind: str | None = None  # text, vectors or images (pairs: text)
    mode: str | None = None  # adapter or finetune


@dataclass(frozen=True)
class MethodSpec:
    """A method by name. `loss`: the loss function whose own defaults fill the loss options left
    unset (None for methods without one loss, e.g. ce). `kinds`: the inputs it takes (None:
    text, vectors and images); `default_modes`: the mode it picks when the user gives none;
    `check_fit(kind, mode, options)`: what the options need of the input, run before training."""

    name: str
    needs_labels: bool
    build: Callable[[BuildContext], nn.Module]
    description: str
    loss: Callable[..., Tensor] | None = None
    kinds: tuple[str, ...] | None = None
    default_modes: dict[str, str] = field(default_factory=dict)
    check_fit: Callable[[str, str, dict], None] | None = None

    @property
    def options(self) -> tuple[str, ...]:
        return options_of(self.name)

    def check_options(self, options: dict) -> dict:
        """`options` unchanged, or OptionError naming the first option this method does not take."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise OptionError(
                unknown[0],
                f"{{option}} is not an option of method {self.name} (its options: {{others}})",
                others=self.options,
            )
        return dict(options)

    def resolved_options(self, options: dict) -> dict:
        """`options` completed with the loss's own defaults for the loss options left unset:
        every value this method trains with, for the run's config.yaml."""
        if self.loss is None:
            return dict(options)
        params = inspect.signature(self.loss).parameters
        own = {
            name: p.default
            for name, p in params.items()
            if p.kind is p.KEYWORD_ONLY and name in self.options and p.default is not p.empty
        }
        return {**own, **options}


def loss_keywords(method: str, options: dict) -> dict:
    """The options that go to `method`'s loss function (its loss options, not its recipe's)."""
    return {
        k: v
        for k, v in options.items()
        if BY_NAME[k].group == "loss" and BY_NAME[k].applies_to(method)
    }
