"""Supervised contrastive losses on labelled rows: SupCon (with an optional hardness tilt) and H-SCL.

Each public loss validates its input, normalises the rows, gathers the batch across ranks and
hands the per-anchor work to a kernel with a fixed signature (`dense_supcon_terms`, `dense_hscl_terms`).
The dense kernels here hold an (anchors x rows) matrix; the memory-linear streaming kernels
implement the same signatures and are chosen by `streaming.choose_kernel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from contrastkit.losses import streaming
from contrastkit.losses._checks import (
    check_chunk_size,
    check_finite_number,
    check_labels,
    check_matrix,
    check_positive,
    full_precision,
    normalise,
)
from contrastkit.losses._gather import gather_rows, mean_over_anchors

SupConKernel = Callable[[Tensor, Tensor, Tensor, float, float], tuple[Tensor, Tensor]]
HSCLKernel = Callable[[Tensor, Tensor, Tensor, float, float, int], tuple[Tensor, Tensor]]


def supcon(
    x: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.1,
    hardness: float = 0.0,
    gather: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """Supervised contrastive loss L_out (Khosla et al. 2020, arXiv 2004.11362, eq. 2).

    With `z_i = x_i / ||x_i||`, `s_ij = z_i . z_j`, positives `P(i) = {j != i : y_j = y_i}`
    and negatives `N(i) = {j : y_j != y_i}`::

        l_i = -(1/|P(i)|) sum_{p in P(i)} [ s_ip/t - log D_i ]
        D_i = sum_{p in P(i)} e^{s_ip/t}
              + |N(i)| * ( sum_{m in N(i)} w_im e^{s_im/t} ) / ( sum_{m in N(i)} w_im )
        w_im = e^{hardness * s_im / t}        (not detached)
        loss = mean of l_i over anchors with |P(i)| >= 1

    `hardness=0` is exactly SupCon L_out (no `t/0.07` rescaling); `hardness > 0` tilts the
    negatives towards the hard ones as in H-SCL. With no negatives the second term of `D_i`
    is absent. If no anchor has a positive, the loss is an exact 0 on the graph and a
    `NoValidAnchorsWarning` is issued.

    Args:
        x: (n, d) floating rows; computed in float32 (float64 for float64 input).
        labels: (n,) integer tensor (a tensor, not a list); moved to `x`'s device.
        temperature: t > 0.
        hardness: tilt of the negatives (any finite number; 0 = plain SupCon).
        gather: under torch.distributed, contrast this rank's anchors with every rank's rows.
        chunk_size: rows per tile for the memory-linear kernel (None = choose automatically).
    """
    check_matrix(x, "x")
    check_labels(labels, x)
    check_positive(temperature, "temperature")
    check_finite_number(hardness, "hardness")
    check_chunk_size(chunk_size)

    with full_precision(x):
        z = normalise(x)
        batch = gather_rows(z, labels.to(device=z.device, dtype=torch.long), gather=gather)
        z_all, labels_all = batch.tensors
        anchors = torch.arange(batch.start, batch.stop, device=z.device)
        terms = streaming.choose_kernel(
            dense_supcon_terms, streaming.streamed_supcon_terms, len(anchors), z_all.shape[0],
            chunk_size, z.device,
        )  # fmt: skip
        losses, valid = terms(z_all, labels_all, anchors, float(temperature), float(hardness))
        total = torch.where(valid, losses, 0.0).sum()
    return mean_over_anchors(
        total,
        valid.sum(),
        batch,
        "supcon",
        "no row has a positive (another row with the same label)",
    )


def hscl(
    x: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.5,
    beta: float = 1.0,
    num_negatives: int | None = None,
    gather: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """Hard-negative supervised contrastive loss H-SCL (Jiang et al. 2022, arXiv 2209.00078).

    One InfoNCE term per positive pair, negatives only from other classes, tilted by the
    hardening function, as in the paper's official code::

        l_ip = -log( e^{s_ip/t} / ( e^{s_ip/t} + Q * nbar_i ) )    for p in P(i), N(i) non-empty
        nbar_i = sum_{m in N(i)} w_im e^{s_im/t} / sum_{m in N(i)} w_im
        w_im = e^{beta * s_im / t}        (not detached)
        Q = num_negatives if given else n - 2
        loss = mean of l_ip over all such pairs (i, p)

    `beta=0` is the paper's SCL baseline. With two views of B images, `n = 2B` and
    `Q = 2B - 2` as in the paper. Under `gather`, `n` is the size of the gathered batch.
    If no pair qualifies, the loss is an exact 0 on the graph and a `NoValidAnchorsWarning`
    is issued.

    Args:
        x: (n, d) floating rows; computed in float32 (float64 for float64 input).
        labels: (n,) integer tensor.
        temperature: t > 0.
        beta: hardness of the negatives' tilt (any finite number).
        num_negatives: Q, a positive integer; None uses n - 2.
        gather: under torch.distributed, contrast this rank's anchors with every rank's rows.
        chunk_size: rows per tile for the memory-linear kernel (None = choose automatically).
    """
    check_matrix(x, "x")
    check_labels(labels, x)
    check_positive(temperature, "temperature")
    check_finite_number(beta, "beta")
    if num_negatives is not None and (
        isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1
    ):
        raise ValueError(f"num_negatives must be None or a positive integer, got {num_negatives!r}")
    check_chunk_size(chunk_size)

    with full_precision(x):
        z = normalise(x)
        batch = gather_rows(z, labels.to(device=z.device, dtype=torch.long), gather=gather)
        z_all, labels_all = batch.tensors
        n_rows = z_all.shape[0]
        # With n <= 2 no anchor has both a positive and a negative, so Q is never used then.
        q = num_negatives if num_negatives is not None else max(n_rows - 2, 1)
        anchors = torch.arange(batch.start, batch.stop, device=z.device)
        terms = streaming.choose_kernel(
            dense_hscl_terms, streaming.streamed_hscl_terms, len(anchors), n_rows, chunk_size,
            z.device,
        )  # fmt: skip
        pair_losses, pair_counts = terms(
            z_all, labels_all, anchors, float(temperature), float(beta), int(q)
        )
    return mean_over_anchors(
        pair_losses.sum(),
        pair_counts.sum(),
        batch,
        "hscl",
        "no row has both a positive (same label) and a negative (other label)",
    )


def dense_supcon_terms(
    z: Tensor, labels: Tensor, anchors: Tensor, temperature: float, hardness: float
) -> tuple[Tensor, Tensor]:
    """Dense SupCon kernel: (loss of each anchor, whether it has a positive).

    `z` are all rows (normalised, gathered), `labels` their integer labels, `anchors` the
    indices into `z` of the rows whose loss is wanted. Invalid anchors get a loss of 0.
    Everything is computed in log space: `log D_i = logaddexp(LSE_pos(s/t),
    log|N| + LSE_neg((1+h) s/t) - LSE_neg(h s/t))`.
    """
    logits = (z[anchors] @ z.T) / temperature
    positive, negative = _pair_masks(labels, anchors)
    n_pos = positive.sum(dim=1)
    n_neg = negative.sum(dim=1)
    valid = n_pos > 0

    if hardness == 0.0:
        # The tilted term reduces to the plain sum over negatives: D_i sums over A(i).
        log_d = _masked_logsumexp(logits, positive | negative)
    else:
        log_pos = _masked_logsumexp(logits, positive)
        log_tilted = (
            n_neg.clamp_min(1).to(logits.dtype).log()
            + _masked_logsumexp((1.0 + hardness) * logits, negative)
            - _masked_logsumexp(hardness * logits, negative)
        )
        log_tilted = torch.where(n_neg > 0, log_tilted, torch.finfo(logits.dtype).min)
        log_d = torch.logaddexp(log_pos, log_tilted)

    mean_pos_logit = torch.where(positive, logits, 0.0).sum(dim=1) / n_pos.clamp_min(1)
    losses = torch.where(valid, log_d - mean_pos_logit, 0.0)
    return losses, valid


def dense_hscl_terms(
    z: Tensor,
    labels: Tensor,
    anchors: Tensor,
    temperature: float,
    beta: float,
    num_negatives: int,
) -> tuple[Tensor, Tensor]:
    """Dense H-SCL kernel: (sum over positives p of l_ip, number of valid pairs) per anchor.

    A pair (i, p) is valid when p is a positive of i and i has at least one negative.
    `l_ip = softplus(log Q + log nbar_i - s_ip/t)` with
    `log nbar_i = LSE_neg((1+beta) s/t) - LSE_neg(beta s/t)`.
    """
    logits = (z[anchors] @ z.T) / temperature
    positive, negative = _pair_masks(labels, anchors)
    has_negative = negative.any(dim=1)
    log_nbar = _masked_logsumexp((1.0 + beta) * logits, negative) - _masked_logsumexp(
        beta * logits, negative
    )
    pair = positive & has_negative[:, None]
    excess = math.log(num_negatives) + log_nbar[:, None] - logits
    pair_losses = torch.logaddexp(torch.zeros_like(excess), excess)  # softplus, exact
    return torch.where(pair, pair_losses, 0.0).sum(dim=1), pair.sum(dim=1)


def _pair_masks(labels: Tensor, anchors: Tensor) -> tuple[Tensor, Tensor]:
    """(positive, negative) boolean masks of shape (anchors, rows)."""
    same = labels[anchors, None] == labels[None, :]
    is_self = anchors[:, None] == torch.arange(labels.shape[0], device=labels.device)[None, :]
    return same & ~is_self, ~same


def _masked_logsumexp(values: Tensor, mask: Tensor) -> Tensor:
    """Row-wise log-sum-exp over the entries where `mask` is True.

    Masked entries are filled with the most negative finite number rather than -inf, so an
    all-masked row gives a finite (meaningless) value and no NaN in the backward pass; the
    caller discards such rows.
    """
    filled = values.masked_fill(~mask, torch.finfo(values.dtype).min)
    return torch.logsumexp(filled, dim=1)
