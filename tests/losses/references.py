"""Plain float64 transcriptions of the supervised and pairwise formulas of LOSSES.md.

Written as literally as possible, with Python loops over rows, pairs and triplets and direct
exp/log, independent of contrastkit's implementation; only meant for small batches and
temperatures where exp does not overflow in float64. Each function returns a 0-dim tensor
connected to `x` (so autograd gives the reference gradient), or None when the formula leaves
no anchor (the library then returns 0 with a warning).

Also here: a transcription of the H-SCL paper's official supervised code, to check `hscl`
against the authors' own computation.
"""

from __future__ import annotations

import torch
from torch import Tensor


def unit_rows(x: Tensor) -> Tensor:
    """z_i = x_i / ||x_i||."""
    return x / x.norm(dim=1, keepdim=True)


def _sim(z: Tensor, i: int, j: int) -> Tensor:
    return (z[i] * z[j]).sum()


def _dist(z: Tensor, i: int, j: int) -> Tensor:
    return ((z[i] - z[j]) ** 2).sum().sqrt()


def _num(t: Tensor) -> float:
    return t.detach().item()


def _mean(terms: list[Tensor]) -> Tensor | None:
    return torch.stack(terms).mean() if terms else None


def _positives(y: list[int], i: int) -> list[int]:
    return [j for j in range(len(y)) if j != i and y[j] == y[i]]


def _negatives(y: list[int], i: int) -> list[int]:
    return [j for j in range(len(y)) if y[j] != y[i]]


def supcon_ref(x: Tensor, labels: Tensor, temperature: float, hardness: float = 0.0):
    z, y, t = unit_rows(x), labels.tolist(), temperature
    terms = []
    for i in range(len(y)):
        pos, neg = _positives(y, i), _negatives(y, i)
        if not pos:
            continue
        d = sum(torch.exp(_sim(z, i, p) / t) for p in pos)
        if neg:
            w = [torch.exp(hardness * _sim(z, i, m) / t) for m in neg]
            tilted = sum(w[k] * torch.exp(_sim(z, i, m) / t) for k, m in enumerate(neg))
            d = d + len(neg) * tilted / sum(w)
        terms.append(-(1.0 / len(pos)) * sum(_sim(z, i, p) / t - torch.log(d) for p in pos))
    return _mean(terms)


def hscl_ref(
    x: Tensor, labels: Tensor, temperature: float, beta: float, num_negatives: int | None = None
):
    z, y, t = unit_rows(x), labels.tolist(), temperature
    q = num_negatives if num_negatives is not None else len(y) - 2
    terms = []
    for i in range(len(y)):
        neg = _negatives(y, i)
        if not neg:
            continue
        w = [torch.exp(beta * _sim(z, i, m) / t) for m in neg]
        nbar = sum(w[k] * torch.exp(_sim(z, i, m) / t) for k, m in enumerate(neg)) / sum(w)
        for p in _positives(y, i):
            e = torch.exp(_sim(z, i, p) / t)
            terms.append(-torch.log(e / (e + q * nbar)))
    return _mean(terms)


def logistic_pair_ref(x: Tensor, labels: Tensor, temperature, bias=0.0):
    z, y, n = unit_rows(x), labels.tolist(), len(labels)
    if n < 2:
        return None
    total = 0.0
    for i in range(n):
        for j in range(n):
            if j != i:
                sign = 1.0 if y[i] == y[j] else -1.0
                logit = _sim(z, i, j) / temperature + bias
                total = total + torch.log(1.0 + torch.exp(-sign * logit))
    return total / n


def contrastive_pair_ref(x: Tensor, labels: Tensor, pos_margin: float, neg_margin: float):
    z, y, n = unit_rows(x), labels.tolist(), len(labels)
    pos_terms, neg_terms = [], []
    for i in range(n):
        for j in range(n):
            if j == i:
                continue
            d = _dist(z, i, j)
            if y[i] == y[j]:
                pos_terms.append(torch.relu(d - pos_margin) ** 2)
            else:
                neg_terms.append(torch.relu(neg_margin - d) ** 2)
    if not pos_terms and not neg_terms:
        return None
    zero = x.sum() * 0
    pos_mean = _mean(pos_terms) if pos_terms else zero
    neg_mean = _mean(neg_terms) if neg_terms else zero
    return pos_mean + neg_mean


def triplet_ref(x: Tensor, labels: Tensor, margin: float, mining: str):
    z, y, n = unit_rows(x), labels.tolist(), len(labels)
    if mining == "batch_hard":
        terms = []
        for i in range(n):
            pos, neg = _positives(y, i), _negatives(y, i)
            if pos and neg:
                hardest_pos = max((_dist(z, i, p) for p in pos), key=_num)
                hardest_neg = min((_dist(z, i, m) for m in neg), key=_num)
                terms.append(torch.relu(hardest_pos - hardest_neg + margin))
        return _mean(terms)
    if mining == "semi_hard":
        terms = []
        for i in range(n):
            neg = _negatives(y, i)
            if not neg:
                continue
            for p in _positives(y, i):
                d_ip = _dist(z, i, p)
                farther = [_dist(z, i, m) for m in neg if _num(_dist(z, i, m)) > _num(d_ip)]
                if farther:
                    d_im = min(farther, key=_num)
                else:
                    d_im = max((_dist(z, i, m) for m in neg), key=_num)
                terms.append(torch.relu(d_ip - d_im + margin))
        return _mean(terms)
    if mining == "all":
        terms, n_valid = [], 0
        for i in range(n):
            for p in _positives(y, i):
                for m in _negatives(y, i):
                    n_valid += 1
                    loss = torch.relu(_dist(z, i, p) - _dist(z, i, m) + margin)
                    if _num(loss) > 0:
                        terms.append(loss)
        if n_valid == 0:
            return None
        return _mean(terms) if terms else x.sum() * 0
    raise ValueError(mining)


def npair_ref(anchors: Tensor, positives: Tensor, l2_reg: float = 0.0):
    n = anchors.shape[0]
    if n == 0:
        return None
    total = 0.0
    for i in range(n):
        logits = [(anchors[i] * positives[j]).sum() for j in range(n)]
        total = total - torch.log(torch.exp(logits[i]) / sum(torch.exp(v) for v in logits))
    reg = sum((anchors[i] ** 2).sum() + (positives[i] ** 2).sum() for i in range(n)) / n
    return total / n + l2_reg * reg


# The H-SCL authors' supervised losses (github.com/rjiang03/H-SCL, main/main.py, functions
# `nce_supervised_easy` and `nce_supervised_hard`), transcribed for CPU. Their batch is two
# views of B images (`out_1`, `out_2`, already L2-normalised by their model) with the image
# labels repeated. How their code differs from LOSSES.md, and so where the tests compare:
# - the temperature is fixed at 0.5 (`exp(2 * s)`), and Q = 2B - 2 (`batch - 2`);
# - the weights `imp = neg^beta` are detached when beta < 1 (or gradient_imp=False): same
#   value, different gradient, so gradients are compared only for beta >= 1;
# - in the hard function beta = 0 gives NaN (0 * log 0 on the masked entries); the SCL
#   baseline is their separate "easy" function, which `hscl(beta=0)` must match;
# - an anchor without negatives makes 0/0 = NaN there, and plain exp overflows for small
#   temperatures; LOSSES.md skips such pairs and works in log space, so the tests use
#   batches where every row has a negative;
# - the `Ng = max(..., N e^{-1/t})` clamp belongs to their unsupervised `criterion` (H-UCL),
#   not to these supervised functions; main_loss.py has a variant that keeps only the other
#   view as positive, which LOSSES.md does not follow (one term per positive pair).


def _two_view_batch(view_1: Tensor, view_2: Tensor, image_labels: Tensor):
    """Their setup: rows are both views stacked, exp(s/0.5) for every pair, label masks."""
    rows = torch.cat([view_1, view_2], dim=0)
    labels = torch.cat([image_labels, image_labels], dim=0)
    exp_sim = torch.exp(rows @ rows.T / 0.5)
    same = (labels[:, None] == labels[None, :]).to(rows.dtype)
    positive = same - torch.eye(len(labels), dtype=rows.dtype)
    negative = 1 - same
    return exp_sim, positive, negative, len(labels)


def _official_pair_losses(exp_sim, positive, neg_mean, n_rows):
    """-log(pos / (pos + (n - 2) * mean of the negatives)), averaged over positive pairs."""
    rows, cols = torch.where(positive != 0)
    pos = exp_sim[rows, cols]
    return (-torch.log(pos / (pos + (n_rows - 2) * neg_mean[rows]))).mean()


def official_scl_easy(view_1: Tensor, view_2: Tensor, image_labels: Tensor) -> Tensor:
    """Their SCL baseline: the plain mean of exp(s/t) over an anchor's negatives."""
    exp_sim, positive, negative, n_rows = _two_view_batch(view_1, view_2, image_labels)
    neg_mean = (negative * exp_sim).sum(dim=1) / negative.sum(dim=1)
    return _official_pair_losses(exp_sim, positive, neg_mean, n_rows)


def official_hscl_hard(
    view_1: Tensor, view_2: Tensor, image_labels: Tensor, beta: float, gradient_imp: bool = True
) -> Tensor:
    """Their H-SCL: negatives weighted by exp(s/t)^beta, weights detached when beta < 1."""
    exp_sim, positive, negative, n_rows = _two_view_batch(view_1, view_2, image_labels)
    neg = negative * exp_sim
    if gradient_imp and beta >= 1:
        weights = negative * neg**beta
    else:
        weights = (negative * torch.exp(beta * torch.log(neg))).detach()
    neg_mean = (weights * neg).sum(dim=1) / weights.sum(dim=1)
    return _official_pair_losses(exp_sim, positive, neg_mean, n_rows)
