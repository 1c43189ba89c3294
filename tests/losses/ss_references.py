"""Plain float64 transcriptions of the self-supervised, cross-modal and non-contrastive formulas
of LOSSES.md, written independently of contrastkit's implementation and as literally as
possible (direct exp/log, loops over anchors). Only meant for small batches and temperatures
where exp does not overflow in float64. Each returns a 0-dim tensor connected to its inputs, so
autograd gives the reference gradient.

Also transcribed here, from reading the papers' official code:
- `hcl_official`: the `criterion` of github.com/joshr17/HCL (image/main.py, estimator "hard");
  that code receives rows already normalised by its model, so the transcription normalises.
- `scl_official` / `hscl_official`: the supervised losses of github.com/rjiang03/H-SCL
  (main/main.py, nce_supervised_easy / nce_supervised_hard), whose `exp(2 * s)` is t = 0.5;
  here t is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def unit_rows(x: Tensor) -> Tensor:
    return x / x.norm(dim=1, keepdim=True)


def value_and_grad(fn: Callable[..., Tensor], *inputs: Tensor) -> tuple[Tensor, list[Tensor]]:
    """(loss, [d loss / d input]) for fresh leaf copies of `inputs`."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    value = fn(*leaves)
    grads = torch.autograd.grad(value, leaves, allow_unused=True)
    return value.detach(), [
        torch.zeros_like(leaf) if g is None else g for g, leaf in zip(grads, leaves, strict=True)
    ]


# ---------------------------------------------------------------------------- InfoNCE family


def nt_xent_ref(z1: Tensor, z2: Tensor, t: float) -> Tensor:
    """SimCLR eq. 1: l(i, j) = -log( exp(s_ij/t) / sum_{k != i} exp(s_ik/t) ), mean over 2B rows."""
    z = unit_rows(torch.cat([z1, z2]))
    b = z1.shape[0]
    losses = []
    for i in range(2 * b):
        j = (i + b) % (2 * b)
        others = [k for k in range(2 * b) if k != i]
        denominator = torch.exp(z[others] @ z[i] / t).sum()
        losses.append(-torch.log(torch.exp(z[i] @ z[j] / t) / denominator))
    return torch.stack(losses).mean()


def hcl_formula(z1: Tensor, z2: Tensor, t: float, tau_plus: float, beta: float) -> Tensor:
    """LOSSES.md's hcl, one row at a time."""
    z = unit_rows(torch.cat([z1, z2]))
    b = z1.shape[0]
    m = 2 * b - 2
    losses = []
    for i in range(2 * b):
        partner = (i + b) % (2 * b)
        pos = torch.exp(z[i] @ z[partner] / t)
        others = [j for j in range(2 * b) if j not in (i, partner)]
        neg = torch.exp(z[others] @ z[i] / t)
        w = neg**beta
        r = (w * neg).sum() / w.mean()
        ng = torch.maximum(
            (-tau_plus * m * pos + r) / (1 - tau_plus),
            torch.tensor(m * math.exp(-1 / t), dtype=z.dtype),
        )
        losses.append(-torch.log(pos / (pos + ng)))
    return torch.stack(losses).mean()


def hcl_official(out_1: Tensor, out_2: Tensor, t: float, tau_plus: float, beta: float) -> Tensor:
    """The HCL repository's criterion (estimator "hard"), masks and clamp as there."""
    out_1, out_2 = unit_rows(out_1), unit_rows(out_2)
    batch_size = out_1.shape[0]
    out = torch.cat([out_1, out_2], dim=0)
    neg = torch.exp(out @ out.t() / t)
    keep = torch.ones((batch_size, 2 * batch_size), dtype=torch.bool)
    for i in range(batch_size):
        keep[i, i] = False
        keep[i, i + batch_size] = False
    keep = torch.cat([keep, keep], dim=0)
    neg = neg.masked_select(keep).view(2 * batch_size, -1)
    pos = torch.exp((out_1 * out_2).sum(dim=-1) / t)
    pos = torch.cat([pos, pos], dim=0)
    n = 2 * batch_size - 2
    imp = (beta * neg.log()).exp()
    reweight_neg = (imp * neg).sum(dim=-1) / imp.mean(dim=-1)
    ng = (-tau_plus * n * pos + reweight_neg) / (1 - tau_plus)
    ng = torch.clamp(ng, min=n * math.e ** (-1 / t))
    return (-torch.log(pos / (pos + ng))).mean()


def info_nce_ref(
    query: Tensor, key: Tensor, t: float, queue: Tensor | None, in_batch: bool
) -> Tensor:
    """Row by row: logits = [q.k_i, q.k_j (j != i, if in_batch), q.n_m], -log softmax[0]."""
    q, k = unit_rows(query), unit_rows(key)
    n = None if queue is None else unit_rows(queue)
    losses = []
    for i in range(q.shape[0]):
        logits = [q[i] @ k[i] / t]
        if in_batch:
            logits += [q[i] @ k[j] / t for j in range(k.shape[0]) if j != i]
        if n is not None:
            logits += [q[i] @ n[m] / t for m in range(n.shape[0])]
        exps = torch.exp(torch.stack(logits))
        losses.append(-torch.log(exps[0] / exps.sum()))
    return torch.stack(losses).mean()


def moco_cross_entropy(query: Tensor, key: Tensor, t: float, queue: Tensor) -> Tensor:
    """MoCo's pseudo-code: logits = [l_pos, l_neg] / t, labels = zeros, cross-entropy."""
    q, k, n = unit_rows(query), unit_rows(key), unit_rows(queue)
    l_pos = (q * k).sum(dim=1, keepdim=True)
    l_neg = q @ n.T
    logits = torch.cat([l_pos, l_neg], dim=1) / t
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))


def clip_ref(a: Tensor, b: Tensor, t: float) -> Tensor:
    """CLIP's Fig. 3: logits = za zb^T / t, (CE(logits, arange) + CE(logits^T, arange)) / 2."""
    logits = unit_rows(a) @ unit_rows(b).T / t
    labels = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


# ---------------------------------------------------------------------------- non-contrastive


def byol_ref(p: Tensor, z: Tensor) -> Tensor:
    cos = (p * z).sum(dim=1) / (p.norm(dim=1) * z.norm(dim=1))
    return (2 - 2 * cos).mean()


def barlow_twins_ref(z1: Tensor, z2: Tensor, lambd: float) -> Tensor:
    """The Barlow Twins recipe: BatchNorm1d(affine=False) in training mode, c = bn1^T bn2 / B."""
    bn = torch.nn.BatchNorm1d(z1.shape[1], affine=False, eps=1e-5).to(z1.dtype).train()
    c = bn(z1).T @ bn(z2) / z1.shape[0]
    d = c.shape[0]
    on_diagonal = sum((1 - c[k, k]) ** 2 for k in range(d))
    off_diagonal = sum(c[k, m] ** 2 for k in range(d) for m in range(d) if k != m)
    return on_diagonal + lambd * off_diagonal


def vicreg_ref(z1: Tensor, z2: Tensor, sim: float, std: float, cov: float) -> Tensor:
    b, d = z1.shape
    invariance = ((z1 - z2) ** 2).mean()
    x, y = z1 - z1.mean(dim=0), z2 - z2.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    variance = torch.relu(1 - std_x).mean() / 2 + torch.relu(1 - std_y).mean() / 2
    off = ~torch.eye(d, dtype=torch.bool)
    cov_x, cov_y = x.T @ x / (b - 1), y.T @ y / (b - 1)
    covariance = cov_x[off].pow(2).sum() / d + cov_y[off].pow(2).sum() / d
    return sim * invariance + std * variance + cov * covariance


def sinkhorn_ref(scores: Tensor, epsilon: float, iterations: int) -> Tensor:
    """The SwAV paper's Algorithm 1 (exp domain), no gradient."""
    with torch.no_grad():
        q = torch.exp(scores / epsilon).t()
        q /= q.sum()
        k, b = q.shape
        for _ in range(iterations):
            q /= q.sum(dim=1, keepdim=True)
            q /= k
            q /= q.sum(dim=0, keepdim=True)
            q /= b
        return (q * b).t()


def swav_ref(s1: Tensor, s2: Tensor, t: float, epsilon: float, iterations: int) -> Tensor:
    q1, q2 = sinkhorn_ref(s1, epsilon, iterations), sinkhorn_ref(s2, epsilon, iterations)
    term_1 = (q1 * F.log_softmax(s2 / t, dim=1)).sum(dim=1).mean()
    term_2 = (q2 * F.log_softmax(s1 / t, dim=1)).sum(dim=1).mean()
    return -(term_1 + term_2) / 2


# ---------------------------------------------------------------------------- supervised forms


def supcon_khosla(x: Tensor, labels: Tensor, t: float) -> Tensor | None:
    """SupCon L_out (Khosla et al. eq. 2): -1/|P(i)| sum_p log( e^{s_ip/t} / sum_{a != i} e^{s_ia/t} )."""
    z, y = unit_rows(x), labels.tolist()
    losses = []
    for i in range(len(y)):
        positives = [p for p in range(len(y)) if p != i and y[p] == y[i]]
        if not positives:
            continue
        others = [a for a in range(len(y)) if a != i]
        denominator = torch.exp(z[others] @ z[i] / t).sum()
        losses.append(
            -sum(torch.log(torch.exp(z[i] @ z[p] / t) / denominator) for p in positives)
            / len(positives)
        )
    return torch.stack(losses).mean() if losses else None


def _hscl_pairs(x: Tensor, labels: Tensor, t: float, beta: float, weighted: bool) -> Tensor | None:
    z, y = unit_rows(x), labels.tolist()
    n = len(y)
    q = n - 2
    losses = []
    for i in range(n):
        negatives = [m for m in range(n) if y[m] != y[i]]
        if not negatives:
            continue
        neg = torch.exp(z[negatives] @ z[i] / t)
        imp = torch.exp(beta * (z[negatives] @ z[i]) / t) if weighted else torch.ones_like(neg)
        neg_mean = (imp * neg).sum() / imp.sum()
        for p in range(n):
            if p != i and y[p] == y[i]:
                pos = torch.exp(z[i] @ z[p] / t)
                losses.append(-torch.log(pos / (pos + q * neg_mean)))
    return torch.stack(losses).mean() if losses else None


def scl_official(x: Tensor, labels: Tensor, t: float) -> Tensor | None:
    """nce_supervised_easy: one term per positive pair, Q = n - 2 times the mean negative exp."""
    return _hscl_pairs(x, labels, t, 0.0, weighted=False)


def hscl_official(x: Tensor, labels: Tensor, t: float, beta: float) -> Tensor | None:
    """nce_supervised_hard: negatives tilted by imp = exp(beta s / t) (not detached)."""
    return _hscl_pairs(x, labels, t, beta, weighted=True)
