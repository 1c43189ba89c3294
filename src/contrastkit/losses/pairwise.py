"""Pair- and triplet-based metric losses: logistic pairs, contrastive pairs, triplets, N-pairs,
and CoSENT on labelled or scored pairs.

All but `npair` work on L2-normalised rows. Under `gather`, each rank scores its own anchors
against every rank's rows and divides by global counts, so the gradients averaged over ranks
equal the single-process gradients on the concatenated batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses._checks import (
    check_finite_number,
    check_labels,
    check_matrix,
    check_positive,
    check_same_shape,
    compute_dtype,
    full_precision,
    normalise,
    zero_loss,
)
from contrastkit.losses._gather import Gathered, gather_rows, global_count, mean_over_anchors

MINING_CHOICES = ("batch_hard", "semi_hard", "all")


def logistic_pair(
    x: Tensor,
    labels: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    bias: float | Tensor = 0.0,
    gather: bool = False,
) -> Tensor:
    """Pairwise logistic loss (sigmoid loss as in SigLIP, Zhai et al. 2023, arXiv 2303.15343).

    With `y_ij = +1` for rows of the same label and `-1` otherwise::

        loss = (1/n) sum_i sum_{j != i} log(1 + exp(-y_ij (s_ij/t + bias)))

    `temperature` and `bias` may be floats or 0-dim tensors (e.g. learnable parameters).
    A batch of a single row has no pair: exact 0 on the graph and a `NoValidAnchorsWarning`.
    """
    check_matrix(x, "x")
    check_labels(labels, x)
    check_positive(temperature, "temperature")
    with full_precision(x):
        batch, z_all, anchors, same, is_self = _labelled_rows(x, labels, gather)

        logits = (z_all[anchors] @ z_all.T) / temperature + bias
        signs = torch.where(same, 1.0, -1.0).to(logits.dtype)
        margins = -signs * logits
        pair_losses = torch.logaddexp(torch.zeros_like(margins), margins)  # softplus, exact
        total = torch.where(is_self, 0.0, pair_losses).sum()
        count = len(anchors) if z_all.shape[0] >= 2 else 0
        return mean_over_anchors(
            total, count, batch, "logistic_pair", "the batch has a single row, so there is no pair"
        )


def contrastive_pair(
    x: Tensor,
    labels: Tensor,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    gather: bool = False,
) -> Tensor:
    """Contrastive (pair) loss of Hadsell, Chopra and LeCun 2006 (CVPR, "Dimensionality
    reduction by learning an invariant mapping"), with `d_ij = ||z_i - z_j||_2` on normalised
    rows and ordered pairs `i != j`::

        loss = mean_{positive pairs} relu(d_ij - pos_margin)^2
             + mean_{negative pairs} relu(neg_margin - d_ij)^2

    An empty set of pairs contributes 0; if both are empty the loss is an exact 0 on the graph
    and a `NoValidAnchorsWarning` is issued.
    """
    check_matrix(x, "x")
    check_labels(labels, x)
    check_finite_number(pos_margin, "pos_margin")
    check_finite_number(neg_margin, "neg_margin")
    with full_precision(x):
        batch, z_all, anchors, same, is_self = _labelled_rows(x, labels, gather)
        positive, negative = same & ~is_self, ~same

        d = _distances(z_all[anchors], z_all)
        pos_total = torch.where(positive, F.relu(d - pos_margin) ** 2, 0.0).sum()
        neg_total = torch.where(negative, F.relu(neg_margin - d) ** 2, 0.0).sum()
        n_pos = global_count(positive.sum(), batch)
        n_neg = global_count(negative.sum(), batch)
        if n_pos == 0 and n_neg == 0:
            return zero_loss(z_all, "contrastive_pair", "the batch has no pair (a single row)")
        scale = batch.world_size
        return pos_total * (scale / n_pos if n_pos else 0.0) + neg_total * (
            scale / n_neg if n_neg else 0.0
        )


def triplet(
    x: Tensor,
    labels: Tensor,
    *,
    margin: float = 0.2,
    mining: str = "batch_hard",
    gather: bool = False,
) -> Tensor:
    """Triplet margin loss (Schroff et al. 2015, FaceNet, arXiv 1503.03832; batch-hard mining
    from Hermans et al. 2017, arXiv 1703.07737), Euclidean distance on normalised rows.

    `mining`:

    - `"batch_hard"`: for each anchor with >= 1 positive and >= 1 negative,
      `relu(max_p d_ip - min_m d_im + margin)`; mean over those anchors.
    - `"semi_hard"`: for each positive pair (i, p) whose anchor has a negative, the closest
      negative farther than the positive (`d_im > d_ip`), or the farthest negative if none is;
      `relu(d_ip - d_im* + margin)`; mean over those pairs.
    - `"all"`: every valid triplet (i, p, m), `relu(d_ip - d_im + margin)`; mean over the
      triplets with a non-zero loss (0 on the graph, without a warning, when every triplet
      satisfies the margin).

    No valid anchor, pair or triplet: exact 0 on the graph and a `NoValidAnchorsWarning`.
    """
    if mining not in MINING_CHOICES:
        raise ValueError(
            f"mining must be one of {', '.join(repr(m) for m in MINING_CHOICES)}; got {mining!r}"
        )
    check_matrix(x, "x")
    check_labels(labels, x)
    check_finite_number(margin, "margin")
    with full_precision(x):
        batch, z_all, anchors, same, is_self = _labelled_rows(x, labels, gather)
        positive, negative = same & ~is_self, ~same
        d = _distances(z_all[anchors], z_all)
        if mining == "batch_hard":
            return _batch_hard(d, positive, negative, margin, batch)
        if mining == "semi_hard":
            return _semi_hard(d, positive, negative, margin, batch)
        return _all_triplets(d, positive, negative, margin, batch)


def npair(
    anchors: Tensor,
    positives: Tensor,
    *,
    l2_reg: float = 0.0,
    gather: bool = False,
) -> Tensor:
    """N-pair loss (Sohn 2016, NeurIPS, "Improved deep metric learning with multi-class N-pair
    loss objective") on raw, not normalised, vectors::

        loss = cross_entropy(anchors @ positives.T, arange(n)) + l2_reg * mean_i(||a_i||^2 + ||p_i||^2)

    Computed in float32 at least. Under `gather`, this rank's anchors are scored against every
    rank's positives (the target of a row is its global index). An empty batch gives an exact
    0 on the graph and a `NoValidAnchorsWarning`.
    """
    check_matrix(anchors, "anchors")
    check_matrix(positives, "positives")
    check_same_shape(anchors, positives, "anchors", "positives")
    check_finite_number(l2_reg, "l2_reg")
    if l2_reg < 0:
        raise ValueError(f"l2_reg must be >= 0, got {l2_reg}")
    with full_precision(anchors):
        dtype = compute_dtype(anchors, positives)
        a, p = anchors.to(dtype), positives.to(dtype)
        batch = gather_rows(p, gather=gather)
        (p_all,) = batch.tensors
        targets = torch.arange(batch.start, batch.stop, device=a.device)
        logits = a @ p_all.T
        cross_entropy = F.cross_entropy(logits, targets, reduction="sum")
        total = cross_entropy + l2_reg * ((a * a).sum() + (p * p).sum())
        return mean_over_anchors(total, a.shape[0], batch, "npair", "the batch is empty")


def cosent(
    a: Tensor,
    b: Tensor,
    scores: Tensor,
    *,
    temperature: float = 0.05,
    gather: bool = False,
) -> Tensor:
    """CoSENT (Su 2022, "CoSENT: a more efficient sentence vector scheme"): pairs (a_i, b_i)
    with a score each (1 = duplicate, 0 = not; or a graded similarity), ranked by cosine::

        s_i = cos(a_i, b_i)
        loss = log(1 + sum over (i, j) with y_i > y_j of exp((s_j - s_i) / t))

    Every pair of a higher score is pushed above every pair of a lower one, so the loss
    optimises the ranking that average precision (duplicates) and Spearman (STS) measure,
    with no threshold to learn. A batch in which no two pairs have different scores has no
    ordered pair: exact 0 on the graph and a `NoValidAnchorsWarning`. Under `gather` every
    rank computes the loss of the gathered batch (the all-gather's backward and DDP's average
    then give the single-process gradients).
    """
    check_matrix(a, "a")
    check_matrix(b, "b")
    check_same_shape(a, b, "a", "b")
    if not isinstance(scores, Tensor) or scores.shape != (a.shape[0],):
        raise ValueError(f"scores must be a tensor of one score per pair ({a.shape[0]},)")
    if not bool(torch.isfinite(scores.float()).all()):
        raise ValueError("scores must be finite numbers, one per pair")
    check_positive(temperature, "temperature")
    with full_precision(a):
        dtype = compute_dtype(a, b)
        za, zb = normalise(a, dtype), normalise(b, dtype)
        batch = gather_rows(za, zb, scores.to(device=a.device, dtype=dtype), gather=gather)
        za, zb, y = batch.tensors
        s = (za * zb).sum(dim=1) / temperature
        ordered = y[:, None] > y[None, :]  # (i, j): pair i should rank above pair j
        if not bool(ordered.any()):
            return zero_loss(za, "cosent", "no two pairs in the batch have different scores",
                             "Mix pairs of different scores (duplicates and not) in each batch.")  # fmt: skip
        differences = (s[None, :] - s[:, None])[ordered]
        return torch.logsumexp(torch.cat([differences.new_zeros(1), differences]), dim=0)


class _LabelledRows(NamedTuple):
    batch: Gathered
    z_all: Tensor  # every rank's normalised rows
    anchors: Tensor  # this rank's rows: indices into z_all
    same: Tensor  # (anchors, rows): same label
    is_self: Tensor  # (anchors, rows): the anchor itself


def _labelled_rows(x: Tensor, labels: Tensor, gather: bool) -> _LabelledRows:
    """Normalised rows (gathered across ranks under `gather`), this rank's anchors among them
    and the boolean masks the pair losses select from."""
    z = normalise(x)
    batch = gather_rows(z, labels.to(device=z.device, dtype=torch.long), gather=gather)
    z_all, labels_all = batch.tensors
    anchors = torch.arange(batch.start, batch.stop, device=z.device)
    same = labels_all[anchors, None] == labels_all[None, :]
    is_self = anchors[:, None] == torch.arange(labels_all.shape[0], device=z.device)[None, :]
    return _LabelledRows(batch, z_all, anchors, same, is_self)


def _distances(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances between rows of `a` and `b`, with a zero (not NaN) gradient where
    two rows coincide (the square root is not differentiable at 0)."""
    squared = (
        (a * a).sum(dim=1, keepdim=True) + (b * b).sum(dim=1)[None, :] - 2.0 * (a @ b.T)
    ).clamp_min(0.0)
    nonzero = squared > 0
    return torch.where(nonzero, torch.where(nonzero, squared, 1.0).sqrt(), 0.0)


def _batch_hard(
    d: Tensor, positive: Tensor, negative: Tensor, margin: float, batch: Gathered
) -> Tensor:
    hardest_pos = torch.where(positive, d, -1.0).max(dim=1).values
    hardest_neg = torch.where(negative, d, torch.finfo(d.dtype).max).min(dim=1).values
    valid = positive.any(dim=1) & negative.any(dim=1)
    losses = F.relu(hardest_pos - hardest_neg + margin)
    return mean_over_anchors(
        torch.where(valid, losses, 0.0).sum(),
        valid.sum(),
        batch,
        "triplet",
        "no row has both a positive (same label) and a negative (other label)",
    )


def _sorted_negative_distances(d: Tensor, negative: Tensor) -> tuple[Tensor, Tensor]:
    """Each anchor's negative distances in ascending order, padded at the end with the largest
    finite number; and the number of negatives of each anchor."""
    padded = torch.where(negative, d, torch.finfo(d.dtype).max)
    return padded.sort(dim=1).values, negative.sum(dim=1)


def _semi_hard(
    d: Tensor, positive: Tensor, negative: Tensor, margin: float, batch: Gathered
) -> Tensor:
    sorted_neg, n_neg = _sorted_negative_distances(d, negative)
    # For every (i, j): the first negative strictly farther than d_ij, if there is one.
    first_farther = torch.searchsorted(sorted_neg.detach(), d.detach().contiguous(), right=True)
    has_farther = first_farther < n_neg[:, None]
    farthest = (n_neg - 1).clamp_min(0)[:, None].expand_as(first_farther)
    chosen = torch.where(has_farther, first_farther, farthest)
    chosen_neg = sorted_neg.gather(1, chosen)
    pair = positive & (n_neg > 0)[:, None]
    losses = F.relu(d - chosen_neg + margin)
    return mean_over_anchors(
        torch.where(pair, losses, 0.0).sum(),
        pair.sum(),
        batch,
        "triplet",
        "no positive pair has a negative (another label) for its anchor",
    )


def _all_triplets(
    d: Tensor, positive: Tensor, negative: Tensor, margin: float, batch: Gathered
) -> Tensor:
    """Sum over (i, p, m) of relu(d_ip - d_im + margin) without an (n x n x n) tensor.

    For a positive p of anchor i, the negatives with a non-zero loss are those with
    d_im < d_ip + margin: the first `k` of i's sorted negative distances, whose sum a prefix
    sum gives. The triplet sum is then `k * (d_ip + margin) - prefix_k`.
    """
    sorted_neg, n_neg = _sorted_negative_distances(d, negative)
    real = torch.arange(d.shape[1], device=d.device)[None, :] < n_neg[:, None]
    prefix = torch.cat(
        [d.new_zeros(d.shape[0], 1), torch.where(real, sorted_neg, 0.0).cumsum(dim=1)], dim=1
    )
    threshold = d + margin
    active = torch.searchsorted(sorted_neg.detach(), threshold.detach().contiguous())
    active = torch.minimum(active, n_neg[:, None])
    sums = active.to(d.dtype) * threshold - prefix.gather(1, active)
    total = torch.where(positive, sums, 0.0).sum()

    n_valid = global_count((positive.sum(dim=1) * n_neg).sum(), batch)
    if n_valid == 0:
        return zero_loss(
            batch.tensors[0],
            "triplet",
            "no row has both a positive (same label) and a negative (other label)",
        )
    n_nonzero = global_count(torch.where(positive, active, 0).sum(), batch)
    if n_nonzero == 0:
        return total * 0.0  # every triplet satisfies the margin: a true 0, not a missing batch
    return total * (batch.world_size / n_nonzero)
