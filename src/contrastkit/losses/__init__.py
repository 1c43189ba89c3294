"""Contrastive losses as pure functions (the contract is docs/losses.md), with thin nn.Module wrappers.

Supervised losses take `(x, labels)`; two-view losses take `(z1, z2)`; every loss that compares
rows with each other takes `gather=False` (see `contrastkit.losses._gather`). `LOSSES` maps each
loss name to its function (for `--method` lookups).
"""

from collections.abc import Callable

from torch import Tensor

from contrastkit.losses._checks import NonFiniteInputError, NoValidAnchorsWarning
from contrastkit.losses.diagnostics import hard_negative_diagnostics
from contrastkit.losses.modules import (
    BarlowTwinsLoss,
    BYOLLoss,
    CLIPLoss,
    ContrastivePairLoss,
    CoSENTLoss,
    DCLLoss,
    HardSupConLoss,
    HCLLoss,
    InfoNCELoss,
    LogisticPairLoss,
    LossModule,
    NPairLoss,
    NTXentLoss,
    SupConLoss,
    SwAVLoss,
    TripletLoss,
    VICRegLoss,
)
from contrastkit.losses.non_contrastive import barlow_twins, byol, sinkhorn, swav, vicreg
from contrastkit.losses.pairwise import contrastive_pair, cosent, logistic_pair, npair, triplet
from contrastkit.losses.self_supervised import clip, dcl, hcl, info_nce, nt_xent
from contrastkit.losses.supervised import hscl, supcon

LOSSES: dict[str, Callable[..., Tensor]] = {
    # supervised (labels)
    "supcon": supcon,
    "hscl": hscl,
    "logistic_pair": logistic_pair,
    "contrastive_pair": contrastive_pair,
    "triplet": triplet,
    "npair": npair,
    # labelled or scored pairs
    "cosent": cosent,
    # self-supervised (two views) and cross-modal
    "nt_xent": nt_xent,
    "info_nce": info_nce,
    "dcl": dcl,
    "hcl": hcl,
    "clip": clip,
    "byol": byol,
    "barlow_twins": barlow_twins,
    "vicreg": vicreg,
    "swav": swav,
}

__all__ = [
    "LOSSES",
    "BYOLLoss",
    "BarlowTwinsLoss",
    "CLIPLoss",
    "CoSENTLoss",
    "ContrastivePairLoss",
    "DCLLoss",
    "HCLLoss",
    "HardSupConLoss",
    "InfoNCELoss",
    "LogisticPairLoss",
    "LossModule",
    "NPairLoss",
    "NTXentLoss",
    "NoValidAnchorsWarning",
    "NonFiniteInputError",
    "SupConLoss",
    "SwAVLoss",
    "TripletLoss",
    "VICRegLoss",
    "barlow_twins",
    "byol",
    "clip",
    "contrastive_pair",
    "cosent",
    "dcl",
    "hard_negative_diagnostics",
    "hcl",
    "hscl",
    "info_nce",
    "logistic_pair",
    "npair",
    "nt_xent",
    "sinkhorn",
    "supcon",
    "swav",
    "triplet",
    "vicreg",
]
