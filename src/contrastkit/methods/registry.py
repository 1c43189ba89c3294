"""Methods by name: which loss, whether labels are needed, and how the training module is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from contrastkit.errors import ConfigError
from contrastkit.methods.supervised import (
    SUPERVISED_LOSSES,
    CrossEntropy,
    SupervisedContrastive,
    loss_options_for,
)
from contrastkit.models.heads import ProjectionHead


@dataclass(frozen=True)
class BuildContext:
    """What a recipe needs to assemble its training module."""

    encoder: nn.Module
    dim: int
    num_classes: int | None
    options: dict  # loss options the user set
    head_dim: int | None  # None: the loss sees the embedding itself (no projection head)
    gather: bool
    augment: nn.Module | None  # image views, None for text/vectors


@dataclass(frozen=True)
class MethodSpec:
    name: str
    needs_labels: bool
    build: Callable[[BuildContext], nn.Module]
    check_options: Callable[[dict], dict]
    description: str


def _supervised(name: str) -> MethodSpec:
    def build(ctx: BuildContext) -> nn.Module:
        head = ProjectionHead(ctx.dim, ctx.head_dim) if ctx.head_dim else nn.Identity()
        return SupervisedContrastive(
            ctx.encoder, head, name, ctx.options, augment=ctx.augment, gather=ctx.gather
        )

    doc = (SUPERVISED_LOSSES[name].__doc__ or name).strip().splitlines()[0]
    return MethodSpec(name, True, build, lambda o: loss_options_for(name, o), doc)


def _cross_entropy() -> MethodSpec:
    def build(ctx: BuildContext) -> nn.Module:
        return CrossEntropy(ctx.encoder, ctx.dim, ctx.num_classes, ctx.augment)

    return MethodSpec(
        "ce",
        True,
        build,
        lambda o: loss_options_for("ce", o),
        "cross-entropy on a linear head (baseline)",
    )


METHODS: dict[str, MethodSpec] = {name: _supervised(name) for name in SUPERVISED_LOSSES}
METHODS["ce"] = _cross_entropy()


def register_method(spec: MethodSpec) -> None:
    METHODS[spec.name] = spec


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}"
        ) from None
