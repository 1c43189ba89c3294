"""Thin nn.Module wrappers: one per loss, holding its keyword options; the function is the source
of truth (docs/losses.md). Example: `SupConLoss(temperature=0.07)(x, labels)` is
`supcon(x, labels, temperature=0.07)`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from contrastkit.losses.non_contrastive import barlow_twins, byol, swav, vicreg
from contrastkit.losses.pairwise import contrastive_pair, cosent, logistic_pair, npair, triplet
from contrastkit.losses.self_supervised import clip, dcl, hcl, info_nce, nt_xent
from contrastkit.losses.supervised import hscl, supcon


def keyword_options(function: Callable[..., Tensor]) -> dict[str, Any]:
    """The keyword-only options of a loss function and their defaults."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }


class LossModule(nn.Module):
    """Base wrapper: `forward(*inputs)` returns `function(*inputs, **options)`.

    Options are the function's keyword arguments, checked by name when the module is built
    (an unknown one raises TypeError); their values are checked by the function on each call.
    """

    function: ClassVar[Callable[..., Tensor]]

    def __init__(self, **options: Any) -> None:
        super().__init__()
        allowed = keyword_options(type(self).function)
        for name in options:
            if name not in allowed:
                raise TypeError(
                    f"{type(self).__name__} got an unknown option {name!r}; its options are "
                    f"{', '.join(allowed) or 'none'}"
                )
        self.options: dict[str, Any] = dict(options)

    def forward(self, *inputs: Tensor, **overrides: Any) -> Tensor:
        """The loss of `inputs`; keyword arguments override the stored options for this call
        (e.g. the current MoCo queue: `InfoNCELoss(in_batch_negatives=False)(q, k, negatives=queue)`)."""
        return type(self).function(*inputs, **{**self.options, **overrides})

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={value!r}" for name, value in self.options.items())


class SupConLoss(LossModule):
    """`supcon(x, labels, **options)`: SupCon L_out with an optional hardness tilt."""

    function = staticmethod(supcon)


class HardSupConLoss(LossModule):
    """`hscl(x, labels, **options)`: H-SCL (Jiang et al. 2022)."""

    function = staticmethod(hscl)


class LogisticPairLoss(LossModule):
    """`logistic_pair(x, labels, **options)`: pairwise logistic loss."""

    function = staticmethod(logistic_pair)


class ContrastivePairLoss(LossModule):
    """`contrastive_pair(x, labels, **options)`: Hadsell et al. 2006."""

    function = staticmethod(contrastive_pair)


class TripletLoss(LossModule):
    """`triplet(x, labels, **options)`: triplet margin loss with mining."""

    function = staticmethod(triplet)


class NPairLoss(LossModule):
    """`npair(anchors, positives, **options)`: Sohn 2016."""

    function = staticmethod(npair)


class CoSENTLoss(LossModule):
    """`cosent(a, b, scores, **options)`: pairs ranked by cosine (Su 2022)."""

    function = staticmethod(cosent)


class NTXentLoss(LossModule):
    """`nt_xent(z1, z2, **options)`: SimCLR."""

    function = staticmethod(nt_xent)


class InfoNCELoss(LossModule):
    """`info_nce(query, key, **options)`: InfoNCE / MoCo. The queue changes every step, so pass
    it per call: `loss(query, key, negatives=queue)`."""

    function = staticmethod(info_nce)


class DCLLoss(LossModule):
    """`dcl(z1, z2, **options)`: debiased contrastive loss."""

    function = staticmethod(dcl)


class HCLLoss(LossModule):
    """`hcl(z1, z2, **options)`: hard-negative contrastive loss (H-UCL)."""

    function = staticmethod(hcl)


class CLIPLoss(LossModule):
    """`clip(a, b, **options)`: symmetric cross-modal InfoNCE.

    With `learnable_temperature=True` the temperature is a parameter (stored as its log,
    initialised from the `temperature` option), clamped below at `min_temperature` (0.01, i.e.
    CLIP's cap of 100 on the logit scale); add the module's parameters to the optimiser.
    """

    function = staticmethod(clip)

    def __init__(
        self, *, learnable_temperature: bool = False, min_temperature: float = 0.01, **options: Any
    ) -> None:
        super().__init__(**options)
        self.learnable_temperature = bool(learnable_temperature)
        self.min_temperature = float(min_temperature)
        if self.learnable_temperature:
            initial = float(self.options.pop("temperature", keyword_options(clip)["temperature"]))
            if not (math.isfinite(initial) and initial > 0):
                raise ValueError(f"temperature must be a finite number > 0, got {initial}")
            self.log_temperature = nn.Parameter(torch.tensor(math.log(initial)))

    @property
    def temperature(self) -> Tensor | float:
        """The temperature used by the next forward (a tensor when learnable)."""
        if self.learnable_temperature:
            return self.log_temperature.exp().clamp(min=self.min_temperature)
        return self.options.get("temperature", keyword_options(clip)["temperature"])

    def forward(self, a: Tensor, b: Tensor, **overrides: Any) -> Tensor:
        options = {**self.options, **overrides}
        if self.learnable_temperature:
            options["temperature"] = self.temperature
        return clip(a, b, **options)

    def extra_repr(self) -> str:
        learnable = f"learnable_temperature=True, min_temperature={self.min_temperature}"
        return ", ".join(
            filter(None, [super().extra_repr(), learnable if self.learnable_temperature else ""])
        )


class BYOLLoss(LossModule):
    """`byol(p, z)`: BYOL regression loss (no options; detach the target yourself)."""

    function = staticmethod(byol)


class BarlowTwinsLoss(LossModule):
    """`barlow_twins(z1, z2, **options)`."""

    function = staticmethod(barlow_twins)


class VICRegLoss(LossModule):
    """`vicreg(z1, z2, **options)`."""

    function = staticmethod(vicreg)


class SwAVLoss(LossModule):
    """`swav(scores1, scores2, **options)`: the prototypes live in the model, not here."""

    function = staticmethod(swav)
