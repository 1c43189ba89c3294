"""Memory-linear per-anchor terms of the InfoNCE-family losses (the "memory-linear" issue).

Each `*_terms` function has the signature and the return values of its dense counterpart
(used by `supervised.py` and `self_supervised.py`), plus a `chunk_size` keyword, and gives the
same values and gradients without ever holding an N x N matrix: the similarity matrix is
visited in tiles (`contrastkit.losses._tiles`), with O(N) state, and recomputed in backward.
The formulas are those of docs/losses.md, rewritten in log-space on per-anchor aggregates:

- supcon, hardness 0:  l_i = LSE_{j != i}(s_ij/t) - (1/|P(i)|) sum_{p in P(i)} s_ip/t
  (with hardness 0, D_i is the sum over all j != i); the positive sum comes from per-class
  sums of the rows, no tile needed.
- supcon, hardness h:  log D_i = logaddexp(LSE_P(s/t), log|N(i)| + LSE_N((1+h)s/t) - LSE_N(h s/t)).
- hscl:                l_ip = softplus(log Q + LSE_N((1+b)s/t) - LSE_N(b s/t) - s_ip/t), first the
  negative aggregates over all tiles, then the positive pairs over the label-sorted diagonal
  blocks only (`_positive_pairs`).
- hcl / dcl:           log R = log M + LSE((1+b)s/t) - LSE(b s/t) over j not in {i, partner(i)}.
- info_nce / clip:     LSE over the in-batch keys and the queue, minus s(q_i, k_pos)/t.

Dispatch: `use_streaming` says when the streaming path is used, `default_chunk_size` the tile.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses._checks import log1mexp
from contrastkit.losses._positive_pairs import positive_pair_softplus
from contrastkit.losses._tiles import ALL, OTHER, SAME, Aggregate, streaming_lse

__all__ = [
    "choose_kernel",
    "default_chunk_size",
    "streamed_hcl_terms",
    "streamed_hscl_terms",
    "streamed_info_nce_terms",
    "streamed_supcon_terms",
    "use_streaming",
]

# Crossover, measured forward + backward (d = 128, float32, median of 7):
# - 2-core CPU (torch 2.13, MKL): supcon over N rows, dense vs streaming: N = 512: 2.7 vs 3.0 ms,
#   724: 5.4 vs 4.4, 1024: 12.8 vs 6.9, 2048: 63 vs 19; info_nce (rows != columns, no symmetry
#   to exploit): 724: 3.6 vs 4.1, 1024: 6.5 vs 7.0, 2048: 38 vs 23; hscl 1024: 21.3 vs 22.0.
#   So streaming from 1024 x 1024 pairs on: even there (info_nce within 8%, supcon 1.8x faster)
#   and faster and far smaller above. Below, dense is faster and its matrix is small anyway.
# - H100 (torch 2.11, CUDA 13): supcon N = 2048: 2.8 vs 4.2 ms, 8192: 7.4 vs 5.9 ms (1.4 GiB vs
#   0.6 GiB), 32768: 92 ms / 21 GiB vs 31 ms / 0.7 GiB; crossover between 2048 and 8192.
CPU_MIN_PAIRS = 1024 * 1024
GPU_MIN_PAIRS = 6144 * 6144
# Tile side. CPU: 1024 x 1024 float32 tiles (4 MiB) stay in cache and keep MKL at full speed
# (2048 was no faster, 4096 slower). GPU: 8192 beat 4096 and 16384 at N = 65536 (102 ms).
CPU_CHUNK = 1024
GPU_CHUNK = 8192


def use_streaming(
    n_anchors: int, n_columns: int, chunk_size: int | None, device: torch.device | str
) -> bool:
    """True when the streaming kernels should be used: always when `chunk_size` is given,
    otherwise when the anchors x columns similarity matrix is large enough for them to win."""
    if chunk_size is not None:
        return True
    on_gpu = torch.device(device).type == "cuda"
    return n_anchors * n_columns >= (GPU_MIN_PAIRS if on_gpu else CPU_MIN_PAIRS)


def choose_kernel(
    dense: Callable[..., Any],
    streamed: Callable[..., Any],
    n_anchors: int,
    n_columns: int,
    chunk_size: int | None,
    device: torch.device | str,
) -> Callable[..., Any]:
    """The kernel for these sizes: `streamed` (over tiles of `chunk_size` rows) when
    `use_streaming` says so, else `dense`. Both take the same arguments and return the same
    values; this is the one place a loss family's kernel is chosen."""
    if use_streaming(n_anchors, n_columns, chunk_size, device):
        return functools.partial(streamed, chunk_size=chunk_size)
    return dense


def default_chunk_size(n_anchors: int, n_columns: int, device: torch.device | str) -> int:
    """Tile side used when `chunk_size` is None."""
    side = GPU_CHUNK if torch.device(device).type == "cuda" else CPU_CHUNK
    return max(1, min(side, max(n_anchors, n_columns, 1)))


def _check_chunk(chunk_size: int | None, n_anchors: int, n_columns: int, device) -> int:
    if chunk_size is None:
        return default_chunk_size(n_anchors, n_columns, device)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return chunk_size


def _promote(z: Tensor) -> Tensor:
    return z if z.dtype in (torch.float32, torch.float64) else z.float()


def _fold_temperature(temperature: float | Tensor, *tensors: Tensor, power: float = 1.0):
    """(float t0, tensors scaled by (t0 / t)^power): with a learnable 0-dim temperature the
    kernels run with the plain number t0 while autograd still reaches t through the scale,
    whose value is exactly 1 (use power 0.5 when both factors of s come from one tensor)."""
    if not isinstance(temperature, Tensor):
        return float(temperature), tensors
    t0 = float(temperature.detach())
    if not temperature.requires_grad:
        return t0, tensors
    scale = (t0 / temperature) ** power
    return t0, tuple(x * scale.to(x.dtype) for x in tensors)


def _is_every_row(anchors: Tensor, n: int) -> bool:
    """Whether the anchors are rows 0..n-1 in order (then the similarity blocks are symmetric)."""
    if anchors.numel() != n:
        return False
    return bool((anchors == torch.arange(n, device=anchors.device)).all())


class _LabelStats:
    """Compact labels 0..C-1 of all rows, class sizes, and per-anchor |P(i)|, |N(i)|."""

    def __init__(self, labels: Tensor, anchors: Tensor) -> None:
        _, self.ids, counts = torch.unique(labels, return_inverse=True, return_counts=True)
        self.ids = self.ids.reshape(-1)
        self.num_classes = counts.shape[0]
        anchor_counts = counts[self.ids[anchors]]
        self.n_pos = anchor_counts - 1
        self.n_neg = labels.shape[0] - anchor_counts


def _positive_similarity_sum(z: Tensor, rows: Tensor, ids: Tensor, anchor_ids: Tensor, n_cls: int):
    """sum_{p in P(i)} s_ip = z_i . (sum of z over i's class) - z_i . z_i, with autograd."""
    class_sums = z.new_zeros((n_cls, z.shape[1])).index_add(0, ids, z)
    return (rows * class_sums[anchor_ids]).sum(1) - (rows * rows).sum(1)


def _log(count: Tensor, dtype: torch.dtype) -> Tensor:
    return count.to(dtype).clamp(min=1).log()


def streamed_supcon_terms(
    z: Tensor,
    labels: Tensor,
    anchors: Tensor,
    temperature: float | Tensor,
    hardness: float,
    *,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """(l_i for each anchor, valid = |P(i)| >= 1), l_i = 0 where not valid.

    `z`: all rows, L2-normalised; `labels`: their labels; `anchors`: row indices of the
    anchors (this rank's rows). SupCon L_out with the optional hardness tilt (docs/losses.md).
    """
    temperature, (z,) = _fold_temperature(temperature, _promote(z), power=0.5)
    n = z.shape[0]
    anchors = anchors.to(device=z.device, dtype=torch.long)
    block = _check_chunk(chunk_size, anchors.numel(), n, z.device)
    stats = _LabelStats(labels.to(z.device), anchors)
    valid = stats.n_pos >= 1
    every = _is_every_row(anchors, n)
    rows = z if every else z[anchors]
    common = dict(block=block, symmetric=every, excluded=(anchors,))
    if hardness == 0:
        (log_d,) = streaming_lse(rows, z, (Aggregate(1.0, ALL),), temperature, **common)
    else:
        aggregates = (
            Aggregate(1.0, SAME),
            Aggregate(1.0 + hardness, OTHER),
            Aggregate(hardness, OTHER),
        )
        ids = stats.ids
        log_pos, log_tilt, log_weight = streaming_lse(
            rows, z, aggregates, temperature, row_labels=ids[anchors], col_labels=ids, **common
        )
        has_neg = stats.n_neg > 0
        log_pos = torch.where(valid, log_pos, 0.0)
        neg_part = _log(stats.n_neg, z.dtype) + torch.where(has_neg, log_tilt - log_weight, 0.0)
        log_d = torch.where(has_neg, torch.logaddexp(log_pos, neg_part), log_pos)
    log_d = torch.where(valid, log_d, 0.0)
    pos_sum = _positive_similarity_sum(z, rows, stats.ids, stats.ids[anchors], stats.num_classes)
    loss = log_d - pos_sum / (temperature * stats.n_pos.clamp(min=1).to(z.dtype))
    return torch.where(valid, loss, 0.0), valid


def streamed_hscl_terms(
    z: Tensor,
    labels: Tensor,
    anchors: Tensor,
    temperature: float | Tensor,
    beta: float,
    num_negatives: int,
    *,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """(sum over p in P(i) of l_ip, number of such pairs) per anchor; pairs count only when
    the anchor has a negative. l_ip = -log(e^{s_ip/t} / (e^{s_ip/t} + Q nbar_i)) (docs/losses.md)."""
    temperature, (z,) = _fold_temperature(temperature, _promote(z), power=0.5)
    n = z.shape[0]
    anchors = anchors.to(device=z.device, dtype=torch.long)
    block = _check_chunk(chunk_size, anchors.numel(), n, z.device)
    stats = _LabelStats(labels.to(z.device), anchors)
    ids, anchor_ids = stats.ids, stats.ids[anchors]
    every = _is_every_row(anchors, n)
    rows = z if every else z[anchors]
    if beta == 0:
        aggregates: tuple[Aggregate, ...] = (Aggregate(1.0, OTHER),)
    else:
        aggregates = (Aggregate(1.0 + beta, OTHER), Aggregate(beta, OTHER))
    lse = streaming_lse(
        rows,
        z,
        aggregates,
        temperature,
        block=block,
        symmetric=every,
        row_labels=anchor_ids,
        col_labels=ids,
    )
    log_weight = lse[1] if beta != 0 else _log(stats.n_neg, z.dtype)
    has = (stats.n_neg > 0) & (stats.n_pos > 0)
    log_q = math.log(num_negatives) if num_negatives > 0 else -math.inf
    u = torch.where(has, log_q + lse[0] - log_weight, 0.0)
    pair_sums = positive_pair_softplus(rows, z, u, anchor_ids, ids, anchors, temperature, block)
    count = torch.where(has, stats.n_pos, 0)
    return torch.where(has, pair_sums, 0.0), count


def streamed_hcl_terms(
    z: Tensor,
    partner: Tensor,
    anchors: Tensor,
    temperature: float | Tensor,
    tau_plus: float,
    beta: float,
    *,
    chunk_size: int | None = None,
) -> Tensor:
    """HCL loss of each anchor (docs/losses.md), computed in log-space; M = rows - 2 negatives.

    `partner[i]` is the row index of i's other view, one entry per row of `z` (or one per
    anchor when its length differs). With tau_plus = 0 the floor M e^{-1/t} cannot bind
    (s >= -1 gives R >= M e^{-1/t}) and is left out, so beta = tau_plus = 0 is NT-Xent.
    """
    t_real = temperature
    temperature, (z,) = _fold_temperature(temperature, _promote(z), power=0.5)
    n = z.shape[0]
    anchors = anchors.to(device=z.device, dtype=torch.long)
    partner = partner.to(device=z.device, dtype=torch.long)
    anchor_partner = partner[anchors] if partner.shape[0] == n else partner
    m_neg = n - 2
    rows = z[anchors]
    s_pos = (rows * z[anchor_partner]).sum(1) / temperature
    if m_neg <= 0:
        return s_pos * 0
    block = _check_chunk(chunk_size, anchors.numel(), n, z.device)
    every = (
        partner.shape[0] == n
        and _is_every_row(anchors, n)
        and bool((partner[partner] == anchors).all())
    )
    if beta == 0:
        aggregates: tuple[Aggregate, ...] = (Aggregate(1.0, ALL),)
    else:
        aggregates = (Aggregate(1.0 + beta, ALL), Aggregate(beta, ALL))
    lse = streaming_lse(
        z if every else rows,
        z,
        aggregates,
        temperature,
        block=block,
        symmetric=every,
        excluded=(anchors, anchor_partner),
    )
    log_m = math.log(m_neg)
    log_r = lse[0] if beta == 0 else log_m + lse[0] - lse[1]
    if tau_plus == 0:
        return F.softplus(log_r - s_pos)
    # Ng = max((R - tau M pos) / (1 - tau), M e^{-1/t}); R - tau M pos = R (1 - e^d)
    log_floor = log_m - 1.0 / t_real
    d = math.log(tau_plus) + log_m + s_pos - log_r
    above = d < 0
    debiased = log_r + log1mexp(torch.where(above, d, -1.0)) - math.log1p(-tau_plus)
    log_ng = torch.where(above, torch.clamp(debiased, min=log_floor), log_floor)
    return F.softplus(log_ng - s_pos)


def streamed_info_nce_terms(
    query: Tensor,
    keys: Tensor,
    positive: Tensor,
    negatives: Tensor | None,
    temperature: float | Tensor,
    in_batch_negatives: bool,
    *,
    chunk_size: int | None = None,
) -> Tensor:
    """Cross-entropy of each query row with keys[positive[i]] as its target, against the
    other keys (if `in_batch_negatives`) and every row of `negatives` (a queue)."""
    dtype = torch.float64 if torch.float64 in (query.dtype, keys.dtype) else torch.float32
    temperature, (query,) = _fold_temperature(temperature, query.to(dtype))
    keys = keys.to(dtype)
    positive = positive.to(device=query.device, dtype=torch.long)
    s_pos = (query * keys[positive]).sum(1) / temperature
    parts = ([keys] if in_batch_negatives else []) + (
        [negatives.to(dtype)] if negatives is not None else []
    )
    if not parts:
        return s_pos * 0
    cols = parts[0] if len(parts) == 1 else torch.cat(parts)
    block = _check_chunk(chunk_size, query.shape[0], cols.shape[0], query.device)
    (lse,) = streaming_lse(query, cols, (Aggregate(1.0, ALL),), temperature, block=block)
    if in_batch_negatives:
        return lse - s_pos
    return torch.logaddexp(lse, s_pos) - s_pos
