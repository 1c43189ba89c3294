"""Every method by name (`--method NAME`)."""

from __future__ import annotations

from contrastkit.errors import ConfigError
from contrastkit.methods.base import MethodSpec
from contrastkit.methods.clustering import CLUSTERING_SPECS
from contrastkit.methods.momentum import MOMENTUM_SPECS
from contrastkit.methods.paired import PAIRED_SPECS
from contrastkit.methods.supervised import SUPERVISED_SPECS
from contrastkit.methods.two_view import TWO_VIEW_SPECS

METHODS: dict[str, MethodSpec] = {
    **SUPERVISED_SPECS,
    **TWO_VIEW_SPECS,
    **MOMENTUM_SPECS,
    **CLUSTERING_SPECS,
    **PAIRED_SPECS,
}
SELF_SUPERVISED_METHODS = tuple(name for name, spec in METHODS.items() if not spec.needs_labels)


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(
            f"unknown method {name!r}; choose one of: {', '.join(sorted(METHODS))}"
        ) from None
