"""Losses without negative pairs: byol, barlow_twins, vicreg, and the clustering loss swav with
its Sinkhorn-Knopp codes. The contract is docs/losses.md.

barlow_twins and vicreg are batch-global (their statistics run over the whole batch): under
`gather` every rank computes the full loss from all ranks' rows and returns it; the backward of
the all-gather sums the gradients over ranks, and DDP's average over ranks gives back exactly
the single-process gradient. swav is row-separable once the codes are fixed, so it follows the
SwAV paper: codes from Sinkhorn-Knopp with its sums all-reduced over ranks, loss over this
rank's rows (see `contrastkit.losses._gather`).
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses._checks import check_matrix, compute_dtype, zero_loss
from contrastkit.losses._gather import Gathered, gather_rows, is_distributed, mean_over_anchors
from contrastkit.losses._two_view import (
    autocast_off,
    check_number,
    check_pair,
    check_temperature,
)

_BATCHNORM_EPS = 1e-5
_VICREG_EPS = 1e-4


@autocast_off
def byol(p: Tensor, z: Tensor) -> Tensor:
    """BYOL regression loss (Grill et al. 2020, "Bootstrap Your Own Latent", eq. 2):

        loss = mean_i ( 2 - 2 cos(p_i, z_i) )

    p: (B, D) online predictions; z: (B, D) target projections. The caller detaches the
    target (`z.detach()`), as BYOL does. Computed in float32 at least; an empty batch gives an
    exact 0 and a NoValidAnchorsWarning.
    """
    check_pair(p, z, "p", "z")
    dtype = compute_dtype(p, z)
    p32, z32 = p.to(dtype), z.to(dtype)
    if p.shape[0] == 0:
        return zero_loss(p32 + z32, "byol", "the batch is empty", "Pass at least one row.")
    cos = F.cosine_similarity(p32, z32, dim=1, eps=torch.finfo(dtype).tiny ** 0.5)
    return (2 - 2 * cos).mean()


def _need_rows(n: int, minimum: int, loss_name: str, why: str) -> None:
    if n < minimum:
        raise ValueError(
            f"{loss_name} needs a batch of at least {minimum} rows ({why}), got a batch of {n}; "
            "use a larger batch"
        )


@autocast_off
def barlow_twins(z1: Tensor, z2: Tensor, *, lambd: float = 5e-3, gather: bool = False) -> Tensor:
    """Barlow Twins (Zbontar et al. 2021, "Barlow Twins: Self-Supervised Learning via Redundancy
    Reduction", eq. 1). No normalisation to the unit sphere: each column of z1 and z2 is
    standardised over the batch (biased variance, eps 1e-5, i.e. BatchNorm without affine),

        C = a1^T a2 / B,    loss = sum_k (1 - C_kk)^2 + lambd * sum_{k != l} C_kl^2

    Computed in float32 at least. Needs B >= 2 (over all ranks under `gather`): with one row
    every standardised column is 0 and C carries no information, so B = 1 raises ValueError.

    Args:
        z1, z2: (B, D) projections of the two views.  lambd: weight of the off-diagonal term.
        gather: under torch.distributed, the batch is all ranks' rows (every rank returns the
            full loss; see the module docstring).
    """
    check_pair(z1, z2, "z1", "z2")
    check_number(lambd, "lambd", low=0.0, low_inclusive=True)
    dtype = compute_dtype(z1, z2)
    batch = gather_rows(z1.to(dtype), z2.to(dtype), gather=gather)
    x1, x2 = batch.tensors
    n = x1.shape[0]
    _need_rows(n, 2, "barlow_twins", "each column is standardised over the batch")
    c = _standardise(x1).T @ _standardise(x2) / n
    diagonal = torch.diagonal(c)
    off_diagonal = c.masked_fill(torch.eye(c.shape[0], dtype=torch.bool, device=c.device), 0.0)
    return (1 - diagonal).pow(2).sum() + lambd * off_diagonal.pow(2).sum()


def _standardise(x: Tensor) -> Tensor:
    centred = x - x.mean(dim=0)
    return centred / torch.sqrt(centred.pow(2).mean(dim=0) + _BATCHNORM_EPS)


@autocast_off
def vicreg(
    z1: Tensor,
    z2: Tensor,
    *,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    gather: bool = False,
) -> Tensor:
    """VICReg (Bardes, Ponce, LeCun 2022, "VICReg: Variance-Invariance-Covariance
    Regularization for Self-Supervised Learning", eqs. 1-6). No normalisation:

        inv = mse(z1, z2)
        std = mean_k relu(1 - sqrt(var(z1)_k + 1e-4)) / 2 + same for z2      (unbiased variance)
        cov = sum_{k != l} cov(z1)_kl^2 / D + same for z2,  cov(z) = (z - mean)^T (z - mean) / (B - 1)
        loss = sim_coeff * inv + std_coeff * std + cov_coeff * cov

    Computed in float32 at least. Needs B >= 2 (over all ranks under `gather`) for the unbiased
    variance, else ValueError.

    Args:
        z1, z2: (B, D) projections of the two views.  sim_coeff, std_coeff, cov_coeff: weights.
        gather: as in `barlow_twins`.
    """
    check_pair(z1, z2, "z1", "z2")
    for name, value in (
        ("sim_coeff", sim_coeff),
        ("std_coeff", std_coeff),
        ("cov_coeff", cov_coeff),
    ):
        check_number(value, name, low=0.0, low_inclusive=True)
    dtype = compute_dtype(z1, z2)
    batch = gather_rows(z1.to(dtype), z2.to(dtype), gather=gather)
    x1, x2 = batch.tensors
    n, d = x1.shape
    _need_rows(n, 2, "vicreg", "its variance and covariance are unbiased, divided by B - 1")
    invariance = F.mse_loss(x1, x2)
    centred1, centred2 = x1 - x1.mean(dim=0), x2 - x2.mean(dim=0)
    variance = sum(
        F.relu(1 - torch.sqrt(c.pow(2).sum(dim=0) / (n - 1) + _VICREG_EPS)).mean() / 2
        for c in (centred1, centred2)
    )
    eye = torch.eye(d, dtype=torch.bool, device=x1.device)
    covariance = sum(
        (c.T @ c / (n - 1)).masked_fill(eye, 0.0).pow(2).sum() / d for c in (centred1, centred2)
    )
    return sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance


# --------------------------------------------------------------------------------------------
# SwAV
# --------------------------------------------------------------------------------------------


def _check_iterations(iterations: object, name: str) -> int:
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, numbers.Integral)
        or iterations < 0
    ):
        raise ValueError(f"{name} must be an int >= 0, got {iterations!r}")
    return int(iterations)


def _total_rows(n: int, device: torch.device, distributed: bool) -> int:
    if not distributed:
        return n
    count = torch.tensor([n], device=device, dtype=torch.long)
    dist.all_reduce(count, op=dist.ReduceOp.SUM)
    return int(count.item())


def _logsumexp(x: Tensor, dim: int, distributed: bool) -> Tensor:
    """log-sum-exp along `dim`, over all ranks' entries when `distributed`."""
    if not distributed:
        return torch.logsumexp(x, dim=dim)
    if x.shape[dim] == 0:
        peak = torch.full(x.sum(dim=dim).shape, -math.inf, dtype=x.dtype, device=x.device)
    else:
        peak = x.amax(dim=dim)
    dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    total = torch.exp(x - peak.unsqueeze(dim)).sum(dim=dim)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return peak + torch.log(total)


@torch.no_grad()
def _sinkhorn_codes(
    scores: Tensor, epsilon: float, iterations: int, total_rows: int, distributed: bool
) -> Tensor:
    """The SwAV paper's Sinkhorn-Knopp in log space (the same algorithm, no overflow)."""
    n_rows, k = scores.shape
    if total_rows == 0:
        return scores.new_zeros(scores.shape)
    log_q = scores.T / epsilon  # K x B, Q = exp(scores / eps)^T
    log_q = log_q - _logsumexp(log_q.reshape(1, -1), 1, distributed)  # Q /= Q.sum()
    log_k, log_b = math.log(k), math.log(total_rows)
    for _ in range(iterations):
        log_q = log_q - _logsumexp(log_q, 1, distributed)[:, None] - log_k  # rows: /= sum, /= K
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - log_b  # columns: /= sum, /= B
    return torch.exp(log_q + log_b).T  # (Q * B)^T


@autocast_off
def sinkhorn(
    scores: Tensor, *, epsilon: float = 0.05, iterations: int = 3, gather: bool = False
) -> Tensor:
    """SwAV codes by Sinkhorn-Knopp (Caron et al. 2020, "Unsupervised Learning of Visual
    Features by Contrasting Cluster Assignments", Algorithm 1 / eq. 3), without gradient:

        Q = exp(scores / eps)^T;  Q /= Q.sum()
        repeat `iterations` times:  Q /= Q.sum(dim=1) (rows), Q /= K;  Q /= Q.sum(dim=0) (columns), Q /= B
        return (Q * B)^T                      # (B, K), each row sums to 1 when iterations >= 1

    Computed in log space (float32 at least), so large scores / small eps do not overflow.
    With `gather=True` under torch.distributed the sums over the batch and B are taken over all
    ranks (all-reduced), as in the SwAV code; each rank gets the codes of its own rows.

    Args:
        scores: (B, K) prototype scores.  epsilon: eps > 0.  iterations: int >= 0.
    """
    check_matrix(scores, "scores")
    check_number(epsilon, "epsilon", low=0.0)
    iterations = _check_iterations(iterations, "iterations")
    distributed = gather and is_distributed()
    dtype = compute_dtype(scores)
    total = _total_rows(scores.shape[0], scores.device, distributed)
    return _sinkhorn_codes(
        scores.detach().to(dtype), float(epsilon), iterations, total, distributed
    )


@autocast_off
def swav(
    scores1: Tensor,
    scores2: Tensor,
    *,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    gather: bool = False,
) -> Tensor:
    """SwAV swapped prediction (Caron et al. 2020, eq. 1-2), two views:

        q1 = sinkhorn(scores1.detach()),  q2 = sinkhorn(scores2.detach())     (no gradient)
        loss = -(1/2) [ mean_i sum_k q1_ik log softmax(scores2/t)_ik + mean_i sum_k q2_ik log softmax(scores1/t)_ik ]

    `scores` are prototype scores (B, K), not normalised here (SwAV normalises the features
    and prototypes before the product). Computed in float32 at least. Under `gather` the
    Sinkhorn sums run over all ranks and each rank returns the loss over its own rows scaled
    as in `contrastkit.losses._gather`, so DDP's gradient average is the single-process one.

    Args:
        scores1, scores2: (B, K) the two views' prototype scores.  temperature: t > 0.
        epsilon: Sinkhorn eps > 0.  sinkhorn_iterations: int >= 0.  gather: see above.
    """
    check_pair(scores1, scores2, "scores1", "scores2")
    check_temperature(temperature)
    check_number(epsilon, "epsilon", low=0.0)
    iterations = _check_iterations(sinkhorn_iterations, "sinkhorn_iterations")
    distributed = gather and is_distributed()
    dtype = compute_dtype(scores1, scores2)
    s1, s2 = scores1.to(dtype), scores2.to(dtype)
    n = s1.shape[0]
    total = _total_rows(n, s1.device, distributed)
    if total == 0:
        return zero_loss(s1 + s2, "swav", "the batch is empty", "Pass at least one row.")
    q1 = _sinkhorn_codes(s1.detach(), float(epsilon), iterations, total, distributed)
    q2 = _sinkhorn_codes(s2.detach(), float(epsilon), iterations, total, distributed)
    per_row = -(q1 * F.log_softmax(s2 / temperature, dim=1)).sum(dim=1) - (
        q2 * F.log_softmax(s1 / temperature, dim=1)
    ).sum(dim=1)
    world = dist.get_world_size() if distributed else 1
    rows = Gathered((torch.cat([s1, s2]),), 0, n, world)
    return mean_over_anchors(per_row.sum() / 2, n, rows, "swav", "the batch is empty")
