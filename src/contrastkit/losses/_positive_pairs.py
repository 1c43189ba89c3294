"""Per-anchor sums over positive pairs, visiting only the tiles that can hold positives.

`positive_pair_softplus` returns, for every row i, `sum_{p in P(i)} softplus(u_i - s_ip / t)`
with `P(i)` the columns that share row i's label, minus row i's own column. Rows and columns
are sorted by label, so each class sits on one diagonal block of the sorted similarity matrix:
a block of rows only meets the column range spanned by its own classes, and the work is about
`rows x (block + class size)` instead of `rows x columns`. Backward recomputes the tiles.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def positive_pair_softplus(
    rows: Tensor,
    cols: Tensor,
    u: Tensor,
    row_labels: Tensor,
    col_labels: Tensor,
    self_cols: Tensor,
    temperature: float,
    block: int,
) -> Tensor:
    """(m,) sums of softplus(u_i - rows_i . cols_p / t) over p with col_labels[p] ==
    row_labels[i] and p != self_cols[i]; differentiable in rows, cols and u."""
    plan = _Plan(row_labels, col_labels, self_cols, max(1, int(block)))
    return _PositivePairSoftplus.apply(rows, cols, u, plan, 1.0 / temperature)


class _Plan:
    """Label-sorted orders and, per block of sorted rows, the column range of its classes."""

    def __init__(self, row_labels: Tensor, col_labels: Tensor, self_cols: Tensor, block: int):
        m, n = row_labels.shape[0], col_labels.shape[0]
        self.block = block
        self.row_order = torch.argsort(row_labels, stable=True)
        self.col_order = torch.argsort(col_labels, stable=True)
        self.row_labels = row_labels[self.row_order]
        self.col_labels = col_labels[self.col_order].contiguous()
        col_rank = torch.empty_like(self.col_order)
        col_rank[self.col_order] = torch.arange(n, device=col_labels.device)
        own = self_cols[self.row_order]
        has_own = (own >= 0) & (own < n)
        self.self_pos = (
            torch.where(has_own, col_rank[own.clamp(0, max(n - 1, 0))], -1) if n else own
        )
        starts = list(range(0, m, block))
        if not starts or n == 0:
            self.ranges: list[tuple[int, int, int, int]] = []
            return
        first = self.row_labels[starts].contiguous()
        last = self.row_labels[[min(s + block, m) - 1 for s in starts]].contiguous()
        lo = torch.searchsorted(self.col_labels, first, right=False)
        hi = torch.searchsorted(self.col_labels, last, right=True)
        bounds = torch.stack([lo, hi]).tolist()  # the one host sync of the pass
        self.ranges = [
            (s, min(s + block, m), c_lo, c_hi)
            for s, c_lo, c_hi in zip(starts, *bounds, strict=True)
        ]

    def tiles(self):
        for r0, r1, c_lo, c_hi in self.ranges:
            # equal column tiles of about `block` (a range just over `block` is one tile)
            parts = max(1, round((c_hi - c_lo) / self.block))
            edges = [c_lo + (c_hi - c_lo) * q // parts for q in range(parts + 1)]
            for c0, c1 in zip(edges[:-1], edges[1:], strict=True):
                if c1 > c0:
                    yield r0, r1, c0, c1

    def keep(self, r0: int, r1: int, c0: int, c1: int) -> Tensor:
        """Bool tile: same label and not the row's own column."""
        same = self.row_labels[r0:r1, None] == self.col_labels[None, c0:c1]
        rel = self.self_pos[r0:r1] - c0
        inside = ((rel >= 0) & (rel < c1 - c0))[:, None]
        idx = rel.clamp(0, c1 - c0 - 1)[:, None]
        same.scatter_(1, idx, same.gather(1, idx) & ~inside)
        return same


class _PositivePairSoftplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows, cols, u, plan: _Plan, inv_t: float):  # type: ignore[override]
        rows_s = rows.detach()[plan.row_order]
        cols_s = cols.detach()[plan.col_order]
        u_s = u.detach()[plan.row_order]
        scaled = rows_s * inv_t
        out_s = rows_s.new_zeros(rows_s.shape[0])
        for r0, r1, c0, c1 in plan.tiles():
            x = torch.mm(scaled[r0:r1], cols_s[c0:c1].T)
            terms = F.softplus(torch.sub(u_s[r0:r1, None], x, out=x))
            out_s[r0:r1] += terms.mul_(plan.keep(r0, r1, c0, c1)).sum(1)
        out = torch.empty_like(out_s)
        out[plan.row_order] = out_s
        ctx.plan, ctx.inv_t = plan, inv_t
        ctx.save_for_backward(rows_s, cols_s, u_s)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        rows_s, cols_s, u_s = ctx.saved_tensors
        plan: _Plan = ctx.plan
        inv_t = ctx.inv_t
        g_s = grad[plan.row_order]
        scaled = rows_s * inv_t
        # d term / d s_ip = -sigmoid(u_i - s_ip/t) / t; d term / d u_i = sigmoid(...)
        row_factor = -g_s * inv_t
        rows_weighted = rows_s * row_factor[:, None]
        acc_rows = torch.zeros_like(rows_s)
        d_cols_s = torch.zeros_like(cols_s)
        sig_sum = torch.zeros_like(u_s)
        for r0, r1, c0, c1 in plan.tiles():
            x = torch.mm(scaled[r0:r1], cols_s[c0:c1].T)
            sig = torch.sub(u_s[r0:r1, None], x, out=x).sigmoid_()
            sig.mul_(plan.keep(r0, r1, c0, c1))
            sig_sum[r0:r1] += sig.sum(1)
            acc_rows[r0:r1].addmm_(sig, cols_s[c0:c1])
            d_cols_s[c0:c1].addmm_(sig.T, rows_weighted[r0:r1])
        d_rows = torch.empty_like(rows_s)
        d_rows[plan.row_order] = acc_rows * row_factor[:, None]
        d_cols = torch.empty_like(cols_s)
        d_cols[plan.col_order] = d_cols_s
        d_u = torch.empty_like(u_s)
        d_u[plan.row_order] = sig_sum * g_s
        return d_rows, d_cols, d_u, None, None
