"""In-batch sampled softmax with the logQ correction and accidental hits masked.

Batch row b holds a user u_b and the item v_b they interacted with; the other rows' items are
b's negatives. With rows L2-normalised and t the temperature,

    z_bc = cos(u_b, v_c) / t - log q_c        (logQ correction, Yi et al. 2019, eq. 3)
    l_b  = -log( e^{z_bb} / ( sum_{c not in hits(b)} e^{z_bc} + sum_m e^{cos(u_b, n_bm) / t} ) )
    loss = mean_b l_b

q_c is the probability that item c is a batch row's item (its share of the training
interactions): popular items turn up as negatives more often than their share of the catalogue,
and without the correction the model learns to push them down. hits(b) are the batch items
other than row b's own that user b has also interacted with (an item in their history, the
same item twice in a batch): they are not negatives, so they are left out. n_bm are optional
mined hard negatives of row b (their sampling probability is unknown: no correction).

Without correction, mask and hard negatives this is exactly `contrastkit.losses.info_nce(u, v,
temperature=t)` (the tests check it). It stays here, on the dense logits, because info_nce's
kernels take neither a per-column logit offset nor a per-pair mask. At this application's batch
size (1024 x 1024 logits, 4 MiB) the dense kernel is as fast as the streaming one (the
crossover measured in `losses/streaming.py`); a batch of 8192 would want the two in a kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sampled_softmax(
    users: Tensor,
    items: Tensor,
    *,
    temperature: float,
    log_q: Tensor | None = None,
    hits: Tensor | None = None,
    hard_negatives: Tensor | None = None,
) -> Tensor:
    """Mean over rows of l_b above.

    users, items: (B, D), row b of each a positive pair. log_q: (B,) log q of each row's item.
    hits: (B, B) bool, True where row b's user also interacted with row c's item (the diagonal
    is ignored). hard_negatives: (B, K, D) per-row negatives, or None.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    u = F.normalize(users.float(), dim=1)
    v = F.normalize(items.float(), dim=1)
    logits = (u @ v.T) / temperature
    if log_q is not None:
        logits = logits - log_q.float()[None, :]
    rows = torch.arange(len(u), device=u.device)
    if hits is not None:
        hits = hits.clone()
        hits[rows, rows] = False
        logits = logits.masked_fill(hits, float("-inf"))
    if hard_negatives is not None and hard_negatives.shape[1] > 0:
        n = F.normalize(hard_negatives.float(), dim=2)
        logits = torch.cat([logits, torch.einsum("bd,bkd->bk", u, n) / temperature], dim=1)
    return F.cross_entropy(logits, rows)
