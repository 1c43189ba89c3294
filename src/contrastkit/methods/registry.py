"""Methods by name: which loss, whether labels are needed, and how the training module is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from contrastkit.errors import ConfigError
from contrastkit.methods.supervised import (
    SUPERVISED_LOSSES,
    CrossEntropy,
    SupervisedContrastive,
    check_supervised_fit,
    loss_options_for,
)
from contrastkit.models.heads import ProjectionHead


@dataclass(frozen=True)
class BuildContext:
    """What a recipe needs to assemble its training module."""

    encoder: nn.Module
    dim: int
    num_classes: int | None
    options: dict  # loss options the user set (and the recipe's own, e.g. queue_size)
    head_dim: int | None  # None: the loss sees the embedding itself (no projection head)
    gather: bool
    augment: nn.Module | None  # image views, None for text/vectors
    kind: str | None = None  # text, vectors or images (pairs: text)
    mode: str | None = None  # adapter or finetune
    rows: int | None = None  # training rows (e.g. to size a memory queue)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    needs_labels: bool
    build: Callable[[BuildContext], nn.Module]
    check_options: Callable[[dict], dict]
    description: str
    # Kinds of input it takes (None: text, vectors, images), the mode it picks when the user
    # gives none, and a check of (kind, mode, options) run before anything is computed.
    kinds: tuple[str, ...] | None = None
    default_modes: dict[str, str] = field(default_factory=dict)
    check_fit: Callable[[str, str, dict], None] | None = None


def _supervised(name: str) -> MethodSpec:
    def build(ctx: BuildContext) -> nn.Module:
        head = ProjectionHead(ctx.dim, ctx.head_dim) if ctx.head_dim else nn.Identity()
        return SupervisedContrastive(
            ctx.encoder, head, name, ctx.options, augment=ctx.augment, gather=ctx.gather
        )

    doc = (SUPERVISED_LOSSES[name].__doc__ or name).strip().splitlines()[0]
    return MethodSpec(
        name,
        True,
        build,
        lambda o: loss_options_for(name, o),
        doc,
        check_fit=check_supervised_fit,
    )


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


def _self_supervised() -> dict[str, MethodSpec]:
    from contrastkit.methods.clustering import CLUSTERING_RECIPES
    from contrastkit.methods.momentum_methods import MOMENTUM_RECIPES
    from contrastkit.methods.paired import PAIRED_RECIPES
    from contrastkit.methods.self_supervised import TWO_VIEW_RECIPES

    recipes = {**TWO_VIEW_RECIPES, **MOMENTUM_RECIPES, **CLUSTERING_RECIPES, **PAIRED_RECIPES}
    return {
        name: MethodSpec(
            name,
            False,
            r.build,
            r.check_options,
            r.description,
            kinds=r.kinds,
            default_modes=dict(r.default_modes),
            check_fit=r.check_fit,
        )
        for name, r in recipes.items()
    }


METHODS.update(_self_supervised())
SELF_SUPERVISED_METHODS = tuple(name for name, spec in METHODS.items() if not spec.needs_labels)


def register_method(spec: MethodSpec) -> None:
    METHODS[spec.name] = spec


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}"
        ) from None
