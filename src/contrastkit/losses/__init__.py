"""Contrastive losses as pure functions (the contract is LOSSES.md), with thin nn.Module wrappers.

Supervised losses take `(x, labels)`; two-view losses take `(z1, z2)`; every loss that compares
rows with each other takes `gather=False` (see `contrastkit.losses._gather`).
"""

from contrastkit.losses._checks import NoValidAnchorsWarning
from contrastkit.losses.non_contrastive import barlow_twins, byol, sinkhorn, swav, vicreg
from contrastkit.losses.pairwise import contrastive_pair, logistic_pair, npair, triplet
from contrastkit.losses.self_supervised import clip, dcl, hcl, info_nce, nt_xent
from contrastkit.losses.supervised import hscl, supcon

__all__ = [
    "NoValidAnchorsWarning",
    "barlow_twins",
    "byol",
    "clip",
    "contrastive_pair",
    "dcl",
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
