"""The quantities the H-SCL paper compares (Jiang, Nguyen, Ishwar, Aeron, arXiv 2209.00078), on
one batch of two views with labels, so a user can check its inequality on their embeddings."""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.losses._checks import check_labels
from contrastkit.losses._two_view import check_pair
from contrastkit.losses.self_supervised import hcl
from contrastkit.losses.supervised import hscl


def hard_negative_diagnostics(
    z1: Tensor,
    z2: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
    beta: float = 1.0,
) -> dict[str, float | bool]:
    """UCL, H-UCL, SCL and H-SCL of one batch, side by side (no gradient).

    z1, z2: (B, D) two views (row i of each from the same item); labels: (B,) class of item i.

        ucl   = hcl(z1, z2, beta=0, tau_plus=0)     = nt_xent(z1, z2)
                                                    = supcon(cat(z1, z2), arange(B).repeat(2))
        hucl  = hcl(z1, z2, tau_plus=tau_plus, beta=beta)            (H-UCL, Robinson et al.)
        scl   = hscl(cat(z1, z2), labels.repeat(2), beta=0)          (SCL as in the paper's code)
        hscl  = hscl(cat(z1, z2), labels.repeat(2), beta=beta)       (H-SCL)
        hscl_le_hucl = hscl <= hucl   (the paper's inequality, proved for infinitely many
                                       negatives under its Assumption 1)

    Equalities that hold exactly: ucl = nt_xent; with all labels distinct, scl = ucl and, with
    tau_plus = 0, hscl = hucl (then N(i) is every non-partner row and Q = 2B - 2 = M).
    hscl sums one term per positive pair (all same-label rows, as the paper's training code);
    the paper's loss-comparison script keeps only the other view as positive, so with several
    items per class the two scripts' SCL/H-SCL values differ.
    """
    check_pair(z1, z2, "z1", "z2")
    check_labels(labels, z1, "z1")
    with torch.no_grad():
        ucl = hcl(z1, z2, temperature=temperature, tau_plus=0.0, beta=0.0)
        hucl = hcl(z1, z2, temperature=temperature, tau_plus=tau_plus, beta=beta)
        rows, both_labels = torch.cat([z1, z2]), labels.repeat(2)
        scl = hscl(rows, both_labels, temperature=temperature, beta=0.0)
        hard_scl = hscl(rows, both_labels, temperature=temperature, beta=beta)
    values = {"ucl": ucl.item(), "hucl": hucl.item(), "scl": scl.item(), "hscl": hard_scl.item()}
    return {**values, "hscl_le_hucl": values["hscl"] <= values["hucl"]}
