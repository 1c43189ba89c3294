"""Tiled log-sum-exp aggregates of a similarity matrix that is never held in memory.

`streaming_lse(rows, cols, aggregates, ...)` returns, for every row i and every requested
aggregate k, the log-sum-exp over a set of columns of `coef_k * s_ij / t`, where
`s_ij = rows_i . cols_j`. The matrix `S` is visited in tiles of `block x block`; forward keeps
O(rows) running sums, and backward recomputes each tile and accumulates the gradient with two
matrix products per tile, so memory is linear in the batch.

Column sets: every column (`ALL`), the columns with the row's label (`SAME`) or the others
(`OTHER`); on top of that, per-row excluded columns (the row itself, its partner view).

Two ways to keep exp in range:
- fixed shift (the fast path): normalised rows give `-1 <= s <= 1`, so `exp(c (s - 1) / t)`
  spans at most `2 |c| / t` nats; below `_FIXED_SHIFT_SPAN` no row sum can underflow or
  overflow. One exp per tile then serves both the row sums and, when rows and columns are the
  same set (`symmetric`), the column sums, so only the upper triangle of tiles is visited.
- online maximum (any temperature): the classic running max / rescaled sum per row.

Backward uses the per-row results: the weight of entry (i, j) in aggregate k is
`exp(c_k s_ij / t - L_ik)`, and d L_ik / d s_ij = (c_k / t) times that weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

ALL, SAME, OTHER = "all", "same", "other"

# Largest span (in nats) of c * s / t over a row for which the fixed shift is used: the
# largest term of any row is then >= e^-span, far from the smallest normal number.
_FIXED_SHIFT_SPAN = {torch.float32: 64.0, torch.float64: 600.0}


@dataclass(frozen=True)
class Aggregate:
    """LSE over the columns `members` (ALL, SAME or OTHER label) of `coef * s_ij / t`; any real
    coef (0 gives the log of the set's size, a negative one favours dissimilar columns)."""

    coef: float
    members: str = ALL


@dataclass
class _Problem:
    aggregates: tuple[Aggregate, ...]
    inv_t: float
    block: int
    symmetric: bool
    fixed_shift: bool
    row_labels: Tensor | None
    col_labels: Tensor | None
    excluded: tuple[Tensor, ...]


def fixed_shift_ok(coefs: list[float], temperature: float, dtype: torch.dtype) -> bool:
    """Whether exp(c (s - 1) / t), which lies in [e^{-2|c|/t}, 1] for c >= 0 and in
    [1, e^{2|c|/t}] for c < 0, keeps every row sum well inside the dtype."""
    span = 2.0 * max(abs(c) for c in coefs) / temperature
    return span <= _FIXED_SHIFT_SPAN.get(dtype, _FIXED_SHIFT_SPAN[torch.float32])


def streaming_lse(
    rows: Tensor,
    cols: Tensor,
    aggregates: tuple[Aggregate, ...],
    temperature: float,
    *,
    block: int,
    symmetric: bool = False,
    row_labels: Tensor | None = None,
    col_labels: Tensor | None = None,
    excluded: tuple[Tensor, ...] = (),
) -> Tensor:
    """(K, m) tensor: L[k, i] = log sum_{j in set_k(i)} exp(coef_k * rows_i . cols_j / t).

    `symmetric=True` means `rows is cols` (all rows are anchors) and every column set is
    symmetric (i in set(j) iff j in set(i)); only the upper triangle of tiles is visited.
    `excluded` holds per-row column indices to leave out of every set (values outside
    [0, n) exclude nothing). An empty set gives -inf. Differentiable in `rows` and `cols`.
    """
    fixed = fixed_shift_ok([a.coef for a in aggregates], temperature, rows.dtype)
    problem = _Problem(
        aggregates=tuple(aggregates),
        inv_t=1.0 / temperature,
        block=max(1, int(block)),
        symmetric=symmetric and fixed,
        fixed_shift=fixed,
        row_labels=_as_ids(row_labels, rows.dtype),
        col_labels=_as_ids(col_labels, rows.dtype),
        excluded=tuple(excluded),
    )
    if symmetric:
        return _StreamingLSE.apply(rows, rows, problem)
    return _StreamingLSE.apply(rows, cols, problem)


def _as_ids(labels: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Labels as floats of the compute dtype (exact for ids below 2**24 in float32), so that
    tile masks come out of one comparison straight into a float buffer."""
    if labels is None:
        return None
    exact = 2**53 if dtype == torch.float64 else 2**24
    if labels.numel() and int(labels.abs().max()) >= exact:
        _, labels = torch.unique(labels, return_inverse=True)
    return labels.to(dtype)


class _StreamingLSE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rows: Tensor, cols: Tensor, problem: _Problem) -> Tensor:  # type: ignore[override]
        rows, cols = rows.detach(), cols.detach()
        if problem.fixed_shift:
            sums = _forward_fixed(rows, cols, problem)
            logs = sums.log()
        else:
            logs = _forward_online(rows, cols, problem)
        shift = torch.tensor([a.coef * problem.inv_t for a in problem.aggregates], dtype=rows.dtype)
        lse = logs + shift.to(rows.device)[:, None]
        ctx.problem = problem
        ctx.save_for_backward(rows, cols, logs)
        return lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        rows, cols, logs = ctx.saved_tensors
        problem: _Problem = ctx.problem
        coefs = torch.tensor([a.coef for a in problem.aggregates], dtype=rows.dtype)
        # scale[k, i] multiplies the tile weights of aggregate k in row i; rows whose set is
        # empty (log = -inf) get 0 so that no inf or NaN can appear.
        finite = torch.isfinite(logs)
        scale = grad * (coefs.to(rows.device)[:, None] * problem.inv_t)
        if problem.fixed_shift:
            # tile weights are exp(c (s - 1) / t); dividing by the row sum normalises them
            scale = torch.where(finite, scale * torch.exp(-logs.clamp(min=-1e30)), 0.0)
        else:
            scale = torch.where(finite, scale, 0.0)
        if problem.symmetric:
            return _backward_symmetric(rows, scale, logs, problem), None, None
        d_rows, d_cols = _backward_general(rows, cols, scale, logs, problem)
        return d_rows, d_cols, None


# ----------------------------------------------------------------------------- tile plumbing


class _Buffers:
    """Reused tile scratch tensors (fresh tens of MiB per tile would map and zero pages)."""

    def __init__(self, like: Tensor) -> None:
        self.like = like
        self.store: dict[str, Tensor] = {}

    def get(self, name: str, h: int, w: int) -> Tensor:
        buf = self.store.get(name)
        if buf is None or buf.numel() < h * w:
            buf = self.like.new_empty(h * w)
            self.store[name] = buf
        return buf[: h * w].view(h, w)


def _blocks(n: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _tiles(m: int, n: int, problem: _Problem):
    """(row block, column block, is_diagonal) in visiting order."""
    row_blocks = _blocks(m, problem.block)
    if problem.symmetric:
        for i, rb in enumerate(row_blocks):
            for j in range(i, len(row_blocks)):
                yield rb, row_blocks[j], i == j
    else:
        col_blocks = _blocks(n, problem.block)
        for rb in row_blocks:
            for cb in col_blocks:
                yield rb, cb, False


def _augmented(rows: Tensor, cols: Tensor, inv_t: float) -> tuple[Tensor, Tensor]:
    """[rows / t, -1 / t] and [cols, 1]: one matrix product gives (s - 1) / t per entry,
    so the shift costs no pass over the tile."""
    r = torch.cat([rows * inv_t, rows.new_full((rows.shape[0], 1), -inv_t)], dim=1)
    c = torch.cat([cols, cols.new_ones((cols.shape[0], 1))], dim=1)
    return r, c


class _Masks:
    """Per-tile label masks, built lazily from the label vectors (never larger than a tile).

    The fixed-shift path multiplies exp tiles by 0/1 float masks: comparing float label ids
    straight into a float buffer and multiplying is several times faster on CPU than a bool
    mask with masked_fill, whose cost also grows with the number of hits."""

    def __init__(self, problem: _Problem, rb, cb, bufs: _Buffers) -> None:
        self.problem, self.rb, self.cb, self.bufs = problem, rb, cb, bufs
        self._cache: dict[str, Tensor] = {}

    def _labels(self) -> tuple[Tensor, Tensor]:
        p = self.problem
        assert p.row_labels is not None and p.col_labels is not None
        return p.row_labels[self.rb[0] : self.rb[1], None], p.col_labels[
            None, self.cb[0] : self.cb[1]
        ]

    def numeric(self, members: str) -> Tensor:
        """0/1 tile in the compute dtype: 1 where the column is in the set."""
        if members not in self._cache:
            rl, cl = self._labels()
            out = self.bufs.get(f"mask_{members}", rl.shape[0], cl.shape[1])
            (torch.eq if members == SAME else torch.ne)(rl, cl, out=out)
            self._cache[members] = out
        return self._cache[members]

    def outside(self, members: str) -> Tensor:
        """Bool tile: True where the column is not in the set (online path)."""
        rl, cl = self._labels()
        return torch.ne(rl, cl) if members == SAME else torch.eq(rl, cl)


def _exclude(tile: Tensor, problem: _Problem, rb, cb, fill: float) -> None:
    """Set each row's excluded columns (itself, its partner) that fall in this tile to fill."""
    (r0, r1), (c0, c1) = rb, cb
    width = c1 - c0
    for excluded in problem.excluded:
        rel = excluded[r0:r1] - c0
        inside = ((rel >= 0) & (rel < width))[:, None]
        idx = rel.clamp(0, width - 1)[:, None]
        tile.scatter_(1, idx, torch.where(inside, fill, tile.gather(1, idx)))


def _exp_tiles(x: Tensor, problem: _Problem, masks: _Masks, bufs: _Buffers):
    """Yield (k, W_k) for every aggregate: W_k = exp(c_k * x) restricted to its set.

    `x` holds (s - 1) / t and is reused as storage. A coefficient that is the sum of two
    others already computed (1 + h = 1 + h, 2 = 1 + 1) costs a product instead of an exp.
    """
    aggregates = problem.aggregates
    coefs = sorted({a.coef for a in aggregates})
    exps: dict[float, Tensor] = {}
    for idx, c in enumerate(coefs):
        dest = x if idx == len(coefs) - 1 else bufs.get(f"e{idx}", *x.shape)
        split = next(((a, b) for a in exps for b in exps if abs(a + b - c) < 1e-12), None)
        if split is not None:
            torch.mul(exps[split[0]], exps[split[1]], out=dest)
        elif dest is x:
            (x if c == 1.0 else x.mul_(c)).exp_()
        else:
            (torch.exp(x, out=dest) if c == 1.0 else torch.mul(x, c, out=dest).exp_())
        exps[c] = dest
    users = {c: sum(a.coef == c for a in aggregates) for c in coefs}
    for k, agg in enumerate(aggregates):
        users[agg.coef] -= 1
        tile = exps[agg.coef]
        if users[agg.coef] > 0:
            tile = bufs.get("copy", *x.shape).copy_(tile)
        if agg.members != ALL:
            tile.mul_(masks.numeric(agg.members))
        _exclude(tile, problem, masks.rb, masks.cb, 0.0)
        yield k, tile


# ----------------------------------------------------------------------------- forward


def _forward_fixed(rows: Tensor, cols: Tensor, problem: _Problem) -> Tensor:
    """(K, m) sums of exp(c (s - 1) / t) over each set."""
    m, n = rows.shape[0], cols.shape[0]
    k_aggs = len(problem.aggregates)
    sums = rows.new_zeros((k_aggs, m))
    ra, ca = _augmented(rows, cols, problem.inv_t)
    bufs = _Buffers(rows)
    for rb, cb, diag in _tiles(m, n, problem):
        x = bufs.get("x", rb[1] - rb[0], cb[1] - cb[0])
        torch.mm(ra[rb[0] : rb[1]], ca[cb[0] : cb[1]].T, out=x)
        masks = _Masks(problem, rb, cb, bufs)
        for k, tile in _exp_tiles(x, problem, masks, bufs):
            sums[k, rb[0] : rb[1]] += tile.sum(1)
            if problem.symmetric and not diag:
                sums[k, cb[0] : cb[1]] += tile.sum(0)
    return sums


def _forward_online(rows: Tensor, cols: Tensor, problem: _Problem) -> Tensor:
    """(K, m) log sums of exp(c (s - 1) / t), with a running per-row maximum."""
    m, n = rows.shape[0], cols.shape[0]
    k_aggs = len(problem.aggregates)
    run_max = rows.new_full((k_aggs, m), -math.inf)
    run_sum = rows.new_zeros((k_aggs, m))
    ra, ca = _augmented(rows, cols, problem.inv_t)
    bufs = _Buffers(rows)
    for rb, cb, _ in _tiles(m, n, problem):
        r0, r1 = rb
        x = bufs.get("x", r1 - r0, cb[1] - cb[0])
        torch.mm(ra[r0:r1], ca[cb[0] : cb[1]].T, out=x)
        masks = _Masks(problem, rb, cb, bufs)
        for k, agg in enumerate(problem.aggregates):
            y = bufs.get("y", *x.shape)
            torch.mul(x, agg.coef, out=y)
            if agg.members != ALL:
                y.masked_fill_(masks.outside(agg.members), -math.inf)
            _exclude(y, problem, rb, cb, -math.inf)
            new_max = torch.maximum(run_max[k, r0:r1], y.amax(1))
            safe = torch.where(torch.isfinite(new_max), new_max, 0.0)
            rescale = torch.exp(run_max[k, r0:r1] - safe)
            run_sum[k, r0:r1] = run_sum[k, r0:r1] * rescale + y.sub_(safe[:, None]).exp_().sum(1)
            run_max[k, r0:r1] = new_max
    return run_max + run_sum.log()


# ----------------------------------------------------------------------------- backward


def _weight_tiles(
    rows_aug: Tensor, cols_aug: Tensor, rb, cb, logs: Tensor, problem: _Problem, bufs: _Buffers
):
    """Recompute the tile and yield (k, W_k): exp(c (s-1)/t) (fixed) or the normalised
    softmax weights exp(c (s-1)/t - log_k) (online)."""
    x = bufs.get("x", rb[1] - rb[0], cb[1] - cb[0])
    torch.mm(rows_aug[rb[0] : rb[1]], cols_aug[cb[0] : cb[1]].T, out=x)
    masks = _Masks(problem, rb, cb, bufs)
    if problem.fixed_shift:
        yield from _exp_tiles(x, problem, masks, bufs)
        return
    for k, agg in enumerate(problem.aggregates):
        # log = -inf only for rows with an empty set: +inf there makes their weights 0
        row_log = logs[k, rb[0] : rb[1]]
        row_log = torch.where(torch.isfinite(row_log), row_log, math.inf)
        y = bufs.get("y", *x.shape)
        torch.mul(x, agg.coef, out=y)
        y.sub_(row_log[:, None]).exp_()
        if agg.members != ALL:
            y.masked_fill_(masks.outside(agg.members), 0.0)
        _exclude(y, problem, rb, cb, 0.0)
        yield k, y


def _backward_general(
    rows: Tensor, cols: Tensor, scale: Tensor, logs: Tensor, problem: _Problem
) -> tuple[Tensor, Tensor]:
    """d/d rows and d/d cols: per tile C = sum_k scale_k[i] W_k[i, j]; rows += C cols,
    cols += C^T rows. With one aggregate the row scale is moved onto the products' other
    factor, so the tile needs no extra pass."""
    m, n = rows.shape[0], cols.shape[0]
    ra, ca = _augmented(rows, cols, problem.inv_t)
    bufs = _Buffers(rows)
    single = len(problem.aggregates) == 1
    acc_rows = torch.zeros_like(rows)
    d_cols = torch.zeros_like(cols)
    scaled_rows = rows * scale[0][:, None] if single else rows
    for rb, cb, _ in _tiles(m, n, problem):
        (r0, r1), (c0, c1) = rb, cb
        if single:
            for _, w in _weight_tiles(ra, ca, rb, cb, logs, problem, bufs):
                acc_rows[r0:r1].addmm_(w, cols[c0:c1])
                d_cols[c0:c1].addmm_(w.T, scaled_rows[r0:r1])
            continue
        c = bufs.get("c", r1 - r0, c1 - c0)
        for k, w in _weight_tiles(ra, ca, rb, cb, logs, problem, bufs):
            if k == 0:
                torch.mul(w, scale[k, r0:r1, None], out=c)
            else:
                c.addcmul_(w, scale[k, r0:r1, None])
        acc_rows[r0:r1].addmm_(c, cols[c0:c1])
        d_cols[c0:c1].addmm_(c.T, rows[r0:r1])
    d_rows = acc_rows * scale[0][:, None] if single else acc_rows
    return d_rows, d_cols


def _backward_symmetric(z: Tensor, scale: Tensor, logs: Tensor, problem: _Problem) -> Tensor:
    """d/dz when rows and columns are the same set: C_ij = sum_k W_k[i, j] (a_k[i] + a_k[j])
    and dz = C z, with each upper tile serving both its rows and its columns.

    Building C costs two passes over the tile; the alternative without them, one product
    with [z, a z] per role, doubles the product width and measured 1.7x slower on CPU."""
    za, ca = _augmented(z, z, problem.inv_t)
    bufs = _Buffers(z)
    dz = torch.zeros_like(z)
    single = len(problem.aggregates) == 1
    for rb, cb, diag in _tiles(z.shape[0], z.shape[0], problem):
        (r0, r1), (c0, c1) = rb, cb
        c = None
        for k, w in _weight_tiles(za, ca, rb, cb, logs, problem, bufs):
            pair = bufs.get("pair", r1 - r0, c1 - c0)
            torch.add(scale[k, r0:r1, None], scale[k, None, c0:c1], out=pair)
            if single:
                c = w.mul_(pair)
            elif c is None:
                c = torch.mul(w, pair, out=bufs.get("c", r1 - r0, c1 - c0))
            else:
                c.addcmul_(w, pair)
        assert c is not None
        dz[r0:r1].addmm_(c, z[c0:c1])
        if not diag:
            dz[c0:c1].addmm_(c.T, z[r0:r1])
    return dz
