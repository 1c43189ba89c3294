"""Two-view (self-supervised) and cross-modal InfoNCE-family losses: nt_xent, info_nce, dcl,
hcl, clip. The contract is docs/losses.md.

Every function follows the same steps, so a memory-linear kernel can replace the dense one:
validate -> normalise (float32, or float64 for float64 input) -> `gather_rows` -> per-anchor
terms for this rank's anchors against all rows (`dense_hcl_terms` / `dense_info_nce_terms`, chosen by
`streaming.choose_kernel`) -> `mean_over_anchors`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses import streaming
from contrastkit.losses._checks import (
    check_chunk_size,
    check_matrix,
    compute_dtype,
    log1mexp,
    normalise,
    zero_loss,
)
from contrastkit.losses._gather import Gathered, gather_rows, mean_over_anchors
from contrastkit.losses._two_view import (
    as_index,
    autocast_off,
    check_number,
    check_pair,
    check_temperature,
)

HclTerms = Callable[[Tensor, Tensor, Tensor, float, float, float], Tensor]
InfoNCETerms = Callable[[Tensor, Tensor, Tensor, "Tensor | None", float, bool], Tensor]

_MORE_PAIRS = "Use batches of at least 2 pairs so every row has negatives."


# --------------------------------------------------------------------------------------------
# Per-anchor terms (dense). The streaming kernels implement the same signatures.
# --------------------------------------------------------------------------------------------


def dense_hcl_terms(
    z: Tensor, partner: Tensor, anchors: Tensor, temperature: float, tau_plus: float, beta: float
) -> Tensor:
    """HCL loss of each anchor (Robinson et al. 2021), computed in log space.

    z: every row of the two-view batch, L2-normalised (all ranks' rows under gather).
    partner: LongTensor, one entry per row of z: partner[i] is the index in z of row i's other
        view. (One entry per anchor is also accepted when its length differs from z's.)
    anchors: LongTensor of the rows of z whose loss is returned (this rank's rows).
    Every anchor needs M = len(z) - 2 >= 1 negatives; callers skip batches without.

    With a_j = s_ij / t over the M rows j that are neither the anchor nor its partner:
        log R  = log M + LSE_j((1 + beta) a_j) - LSE_j(beta a_j)      (R = sum w neg / mean w)
        Ng     = max((R - tau_plus M pos) / (1 - tau_plus), M e^{-1/t})
        loss   = -log(pos / (pos + Ng)) = softplus(log Ng - a_partner)
    The floor has clamp semantics (its gradient is 0, the other branch keeps the full gradient
    at a tie). With tau_plus = 0 the floor can never bind (s >= -1 gives R >= M e^{-1/t}) and
    is left out, so hcl(beta=0, tau_plus=0) is NT-Xent exactly, gradient included.
    """
    n = z.shape[0]
    anchor_partner = partner[anchors] if partner.shape[0] == n else partner
    rows = as_index(anchors.shape[0], z.device)
    logits = (z[anchors] @ z.T) / temperature
    excluded = torch.zeros_like(logits, dtype=torch.bool)
    excluded[rows, anchors] = True
    excluded[rows, anchor_partner] = True
    log_m = torch.log((~excluded).sum(dim=1).to(logits.dtype))
    pos_logit = logits[rows, anchor_partner]

    if beta == 0:
        log_r = torch.logsumexp(logits.masked_fill(excluded, -math.inf), dim=1)
    else:
        tilted = torch.logsumexp(((1 + beta) * logits).masked_fill(excluded, -math.inf), dim=1)
        weights = torch.logsumexp((beta * logits).masked_fill(excluded, -math.inf), dim=1)
        log_r = log_m + tilted - weights

    if tau_plus == 0:
        log_ng = log_r
    else:
        log_floor = log_m - 1.0 / temperature
        # X = R - tau_plus M pos = R (1 - e^d); X <= 0 (d >= 0) means the floor wins.
        d = math.log(tau_plus) + log_m + pos_logit - log_r
        positive = d < 0
        d_safe = torch.where(positive, d, torch.full_like(d, -1.0))
        log_x = log_r + log1mexp(d_safe) - math.log1p(-tau_plus)
        log_ng = torch.where(positive, torch.clamp(log_x, min=log_floor), log_floor)
    return F.softplus(log_ng - pos_logit)


def dense_info_nce_terms(
    query: Tensor,
    keys: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    temperature: float,
    in_batch_negatives: bool,
) -> Tensor:
    """Cross-entropy of each query row with its positive key as the target.

    query: this rank's normalised query rows. keys: all (gathered) normalised keys.
    positive: LongTensor, for each query row the index in keys of its positive.
    negatives: normalised queue rows (every one a negative of every query), or None.
    in_batch_negatives: whether the other keys are negatives too.
        loss_i = LSE([q_i.k_pos, q_i.k_j (j != pos), q_i.n_m] / t) - q_i.k_pos / t
    A query with no negative gets exactly 0; callers skip those.
    """
    rows = as_index(query.shape[0], query.device)
    pos_logit = (query * keys[positive]).sum(dim=1) / temperature
    parts = [pos_logit[:, None]]
    if in_batch_negatives:
        in_batch = (query @ keys.T) / temperature
        not_positive = torch.ones_like(in_batch, dtype=torch.bool)
        not_positive[rows, positive] = False
        parts.append(in_batch.masked_fill(~not_positive, -math.inf))
    if negatives is not None and negatives.shape[0] > 0:
        parts.append((query @ negatives.T) / temperature)
    return torch.logsumexp(torch.cat(parts, dim=1), dim=1) - pos_logit


# --------------------------------------------------------------------------------------------
# Public losses
# --------------------------------------------------------------------------------------------


def _two_view_batch(
    z1: Tensor, z2: Tensor, gather: bool
) -> tuple[Tensor, Tensor, Tensor, Gathered]:
    """Normalised, gathered rows cat(z1_all, z2_all), partner of every row, this rank's anchors."""
    dtype = compute_dtype(z1, z2)
    batch = gather_rows(normalise(z1, dtype), normalise(z2, dtype), gather=gather)
    z1_all, z2_all = batch.tensors
    n = z1_all.shape[0]
    z = torch.cat([z1_all, z2_all])
    index = as_index(n, z.device)
    partner = torch.cat([index + n, index])
    local = index[batch.local]
    anchors = torch.cat([local, local + n])
    return z, partner, anchors, batch


def _hcl_loss(
    name: str,
    z1: Tensor,
    z2: Tensor,
    temperature: float,
    tau_plus: float,
    beta: float,
    gather: bool,
    chunk_size: int | None,
) -> Tensor:
    check_pair(z1, z2, "z1", "z2")
    check_temperature(temperature)
    check_chunk_size(chunk_size)
    z, partner, anchors, batch = _two_view_batch(z1, z2, gather)
    if z.shape[0] < 4:
        reason = "the batch holds fewer than 2 pairs, so no row has a negative"
        return zero_loss(z, name, reason, _MORE_PAIRS)
    terms = streaming.choose_kernel(
        dense_hcl_terms, streaming.streamed_hcl_terms, anchors.shape[0], z.shape[0], chunk_size,
        z.device,
    )  # fmt: skip
    losses = terms(z, partner, anchors, temperature, tau_plus, beta)
    return mean_over_anchors(losses.sum(), anchors.shape[0], batch, name, "no rows")


@autocast_off
def nt_xent(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.5,
    gather: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """NT-Xent, the SimCLR loss (Chen et al. 2020, "A Simple Framework for Contrastive Learning
    of Visual Representations", eq. 1).

    Rows are L2-normalised; over the 2B rows of cat(z1, z2), row i's positive p(i) is its other
    view and

        l_i = -log( e^{s_{i,p(i)}/t} / sum_{k != i} e^{s_ik/t} ),    loss = mean_i l_i

    which equals `supcon(cat(z1, z2), arange(B).repeat(2), temperature=t)`.

    With a single pair (B = 1 over all ranks) no row has a negative: every l_i is exactly 0
    with no gradient, so the loss is an exact 0 on the graph and a NoValidAnchorsWarning says
    so (supcon gives the same value).

    Args:
        z1, z2: (B, D) the two views' embeddings, row i of each from the same instance.
        temperature: t > 0.
        gather: under torch.distributed, treat all ranks' rows as the batch (see `_gather`).
        chunk_size: None (automatic) or the rows per tile of the memory-linear kernel.
    """
    return _hcl_loss("nt_xent", z1, z2, temperature, 0.0, 0.0, gather, chunk_size)


@autocast_off
def hcl(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
    beta: float = 1.0,
    gather: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """Hard-negative contrastive loss without labels, H-UCL (Robinson, Chuang, Sra, Jegelka 2021,
    "Contrastive Learning with Hard Negative Samples"; github.com/joshr17/HCL).

    Rows are L2-normalised. For each of the 2B rows of cat(z1, z2): pos = e^{s(i, partner)/t},
    neg_j = e^{s_ij/t} for the M = 2B - 2 rows that are neither i nor its partner,

        w_j = neg_j^beta (not detached);  R = sum_j w_j neg_j / mean_j w_j
        Ng = max( (-tau_plus * M * pos + R) / (1 - tau_plus),  M * e^{-1/t} )
        loss = mean_i -log( pos / (pos + Ng) )

    Computed in log space (see `dense_hcl_terms`), so no overflow for any finite input. Equal to the
    official code wherever that code's exp does not overflow. beta = 0 is DCL; beta = 0 with
    tau_plus = 0 is NT-Xent. Fewer than 2 pairs: exact 0 and a NoValidAnchorsWarning.

    Args:
        z1, z2: (B, D) the two views.  temperature: t > 0.
        tau_plus: class prior tau+ in [0, 1).  beta: concentration of the hardening (finite).
        gather, chunk_size: as in `nt_xent`.
    """
    check_number(tau_plus, "tau_plus", low=0.0, high=1.0, low_inclusive=True)
    check_number(beta, "beta", low=-math.inf)
    return _hcl_loss("hcl", z1, z2, temperature, float(tau_plus), float(beta), gather, chunk_size)


@autocast_off
def dcl(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.5,
    tau_plus: float = 0.1,
    gather: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """Debiased contrastive loss (Chuang, Robinson, Lin, Torralba, Jegelka 2020, "Debiased
    Contrastive Learning", eq. 10 with the clamp of their code); equals `hcl(..., beta=0.0)`:

        Ng = max( (-tau_plus * M * pos + sum_j neg_j) / (1 - tau_plus),  M * e^{-1/t} )
        loss = mean_i -log( pos / (pos + Ng) )

    over the 2B rows of cat(z1, z2), with pos, neg_j and M = 2B - 2 as in `hcl`.
    """
    check_number(tau_plus, "tau_plus", low=0.0, high=1.0, low_inclusive=True)
    return _hcl_loss("dcl", z1, z2, temperature, float(tau_plus), 0.0, gather, chunk_size)


@autocast_off
def info_nce(
    query: Tensor,
    key: Tensor,
    *,
    temperature: float = 0.07,
    negatives: Tensor | None = None,
    in_batch_negatives: bool = True,
    gather: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """InfoNCE (van den Oord et al. 2018, "Representation Learning with Contrastive Predictive
    Coding"; MoCo: He et al. 2020).

    Rows of query, key and negatives are L2-normalised. Row i's positive is key[i]; its
    negatives are the other keys of the batch (if `in_batch_negatives`; all ranks' keys under
    `gather`) and every row of `negatives` (a memory queue, not gathered):

        l_i = -log( e^{q_i.k_i/t} / ( e^{q_i.k_i/t} + sum_{j != i} e^{q_i.k_j/t} + sum_m e^{q_i.n_m/t} ) )
        loss = mean_i l_i        (cross-entropy with the positive as target)

    MoCo v2 is `in_batch_negatives=False` with a queue. With no negative at all (B = 1 and no
    queue) the loss is an exact 0 and a NoValidAnchorsWarning says so.

    Args:
        query, key: (B, D).  negatives: (K, D) queue, or None.  temperature: t > 0.
        in_batch_negatives: use the other keys as negatives; False needs `negatives`.
        gather, chunk_size: as in `nt_xent`.
    """
    check_pair(query, key, "query", "key")
    check_temperature(temperature)
    check_chunk_size(chunk_size)
    if not isinstance(in_batch_negatives, bool):
        raise TypeError(f"in_batch_negatives must be True or False, got {in_batch_negatives!r}")
    if negatives is not None:
        check_matrix(negatives, "negatives")
        if negatives.shape[1] != query.shape[1]:
            raise ValueError(
                f"negatives must have {query.shape[1]} columns like query, got negatives of shape "
                f"{tuple(negatives.shape)} and query of shape {tuple(query.shape)}"
            )
    elif not in_batch_negatives:
        raise ValueError(
            "info_nce with in_batch_negatives=False needs a queue of negatives; pass "
            "negatives=... or set in_batch_negatives=True"
        )
    tensors = (query, key) if negatives is None else (query, key, negatives)
    dtype = compute_dtype(*tensors)
    q = normalise(query, dtype)
    batch = gather_rows(normalise(key, dtype), gather=gather)
    keys = batch.tensors[0]
    queue = None if negatives is None else normalise(negatives, dtype)
    n_negatives = (keys.shape[0] - 1 if in_batch_negatives else 0) + (
        0 if queue is None else queue.shape[0]
    )
    if n_negatives <= 0 or keys.shape[0] == 0:
        reason = "no query has a negative (a single row and no queue)"
        advice = "Use batches of at least 2 rows or pass a queue of negatives."
        return zero_loss(torch.cat([q.flatten(), keys.flatten()]), "info_nce", reason, advice)
    positive = as_index(keys.shape[0], keys.device)[batch.local]
    n_keys = keys.shape[0] + (0 if queue is None else queue.shape[0])
    terms = streaming.choose_kernel(
        dense_info_nce_terms, streaming.streamed_info_nce_terms, q.shape[0], n_keys, chunk_size,
        q.device,
    )  # fmt: skip
    losses = terms(q, keys, positive, queue, temperature, in_batch_negatives)
    return mean_over_anchors(losses.sum(), q.shape[0], batch, "info_nce", "no rows")


@autocast_off
def clip(
    a: Tensor,
    b: Tensor,
    *,
    temperature: float = 0.07,
    gather: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    """Symmetric cross-modal InfoNCE of CLIP (Radford et al. 2021, "Learning Transferable Visual
    Models From Natural Language Supervision", Fig. 3):

        S = z(a) z(b)^T / t,    loss = ( CE(S, arange(B)) + CE(S^T, arange(B)) ) / 2

    with rows L2-normalised; row i of `a` and row i of `b` are a pair. Under `gather` each
    rank's rows are compared with all ranks' rows of the other modality. A single pair has no
    negatives: exact 0 and a NoValidAnchorsWarning.

    Args:
        a, b: (B, D) embeddings of the two modalities.  temperature: t > 0, a float or a 0-dim
            tensor (a learnable temperature, see CLIPLoss).  gather, chunk_size: as in `nt_xent`.
    """
    check_pair(a, b, "a", "b")
    check_temperature(temperature)
    check_chunk_size(chunk_size)
    dtype = compute_dtype(a, b)
    za, zb = normalise(a, dtype), normalise(b, dtype)
    batch = gather_rows(za, zb, gather=gather)
    a_all, b_all = batch.tensors
    if a_all.shape[0] < 2:
        reason = "the batch holds fewer than 2 pairs, so no row has a negative"
        return zero_loss(a_all + b_all, "clip", reason, _MORE_PAIRS)
    positive = as_index(a_all.shape[0], a_all.device)[batch.local]
    terms = streaming.choose_kernel(
        dense_info_nce_terms, streaming.streamed_info_nce_terms, za.shape[0], a_all.shape[0],
        chunk_size, za.device,
    )  # fmt: skip
    a_to_b = terms(za, b_all, positive, None, temperature, True)
    b_to_a = terms(zb, a_all, positive, None, temperature, True)
    return mean_over_anchors(a_to_b.sum() + b_to_a.sum(), 2 * za.shape[0], batch, "clip", "no rows")
