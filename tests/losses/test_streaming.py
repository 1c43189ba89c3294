"""Streaming (memory-linear) loss terms against plain full-matrix transcriptions of LOSSES.md.

The references below build the whole similarity matrix in float64 and follow the formulas
anchor by anchor; the streaming kernels must give the same per-anchor values (relative 1e-8)
and gradients (relative 1e-6) for every tile size, including tiles that do not divide N.
"""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses._tiles import fixed_shift_ok
from contrastkit.losses.streaming import (
    default_chunk_size,
    streamed_hcl_terms,
    streamed_hscl_terms,
    streamed_info_nce_terms,
    streamed_supcon_terms,
    use_streaming,
)

VALUE_TOL = {"rtol": 1e-8, "atol": 1e-11}
GRAD_TOL = {"rtol": 1e-6, "atol": 1e-10}
SIZES = [1, 2, 5, 33, 100, 257]
PATTERNS = ["singletons", "one_class", "pairs", "mixed"]
# every size with every label pattern, except the slow-to-reference largest size: mixed only
SIZE_PATTERNS = [(n, p) for n in SIZES for p in PATTERNS if n < 200 or p == "mixed"]


# ----------------------------------------------------------------------------- references


def _lse(v: Tensor) -> Tensor:
    return torch.logsumexp(v, dim=0)


def ref_supcon(z: Tensor, y: Tensor, anchors: Tensor, t: float, h: float):
    s, n = z @ z.T / t, len(y)
    out, valid = [], []
    for i in anchors.tolist():
        pos = [j for j in range(n) if j != i and y[j] == y[i]]
        neg = [j for j in range(n) if y[j] != y[i]]
        valid.append(bool(pos))
        if not pos:
            out.append(z.sum() * 0)
            continue
        log_d = _lse(s[i, pos])
        if neg:
            tilted = _lse((1 + h) * s[i, neg]) - _lse(h * s[i, neg]) + math.log(len(neg))
            log_d = torch.logaddexp(log_d, tilted)
        out.append(log_d - s[i, pos].mean())
    return torch.stack(out), torch.tensor(valid)


def ref_hscl(z: Tensor, y: Tensor, anchors: Tensor, t: float, beta: float, q: int):
    s, n = z @ z.T / t, len(y)
    sums, counts = [], []
    for i in anchors.tolist():
        pos = [j for j in range(n) if j != i and y[j] == y[i]]
        neg = [j for j in range(n) if y[j] != y[i]]
        if not neg or not pos:
            sums.append(z.sum() * 0)
            counts.append(0)
            continue
        log_nbar = _lse((1 + beta) * s[i, neg]) - _lse(beta * s[i, neg])
        # -log(e^{s_ip} / (e^{s_ip} + Q nbar)) = log(1 + Q nbar e^{-s_ip})
        log_q = math.log(q) if q > 0 else -math.inf
        sums.append(F.softplus(log_q + log_nbar - s[i, pos]).sum())
        counts.append(len(pos))
    return torch.stack(sums), torch.tensor(counts)


def ref_hcl(z: Tensor, partner: Tensor, anchors: Tensor, t: float, tau: float, beta: float):
    """Literal LOSSES.md hcl, with exp (float64, moderate t)."""
    n = z.shape[0]
    m = n - 2
    out = []
    for i in anchors.tolist():
        p = int(partner[i])
        pos = torch.exp((z[i] * z[p]).sum() / t)
        others = [j for j in range(n) if j not in (i, p)]
        neg = torch.exp(z[others] @ z[i] / t)
        w = neg**beta
        r = (w * neg).sum() / w.mean()
        floor = m * torch.exp(-1 / torch.as_tensor(t, dtype=z.dtype))
        ng = torch.maximum((-tau * m * pos + r) / (1 - tau), floor)
        out.append(-torch.log(pos / (pos + ng)))
    return torch.stack(out)


def ref_info_nce(query, keys, positive, negatives, t, in_batch):
    out = []
    for i in range(query.shape[0]):
        cols = [keys[positive[i]][None]]
        if in_batch:
            cols = [keys[j][None] for j in range(keys.shape[0]) if j != positive[i]] + cols
        if negatives is not None:
            cols.append(negatives)
        logits = torch.cat(cols) @ query[i] / t
        out.append(_lse(logits) - (query[i] * keys[positive[i]]).sum() / t)
    return torch.stack(out)


# ----------------------------------------------------------------------------- helpers


def _labels(pattern: str, n: int, g: torch.Generator) -> Tensor:
    if pattern == "singletons":
        return torch.randperm(n, generator=g) * 7 - 3  # all distinct, negative ids too
    if pattern == "one_class":
        return torch.full((n,), 42)
    if pattern == "pairs":
        return torch.arange(n) // 2
    labels = torch.randint(0, 4, (n,), generator=g) * 10
    labels[: max(1, n // 10)] = 1000 + torch.arange(max(1, n // 10))  # some singleton classes
    return labels[torch.randperm(n, generator=g)]


def _unit(n: int, d: int, g: torch.Generator, dtype=torch.float64) -> Tensor:
    return torch.randn(n, d, generator=g, dtype=dtype)


def _compare(stream_fns, ref_fn, inputs: list[Tensor], g: torch.Generator):
    """Values and gradients (through a random weighting of the per-anchor outputs) of each
    streaming variant against one evaluation of the reference."""
    leaves_r = [x.clone().requires_grad_(True) for x in inputs]
    out_r = ref_fn(*leaves_r)
    weights = torch.rand(out_r.shape, generator=g, dtype=torch.float64) + 0.5
    grads_r = None
    if out_r.requires_grad:
        grads_r = torch.autograd.grad((out_r * weights).sum(), leaves_r, allow_unused=True)
    for stream_fn in stream_fns if isinstance(stream_fns, list) else [stream_fns]:
        leaves_s = [x.clone().requires_grad_(True) for x in inputs]
        out_s = stream_fn(*leaves_s)
        torch.testing.assert_close(out_s, out_r.detach(), **VALUE_TOL)
        if grads_r is None:
            continue
        grads_s = torch.autograd.grad((out_s * weights).sum(), leaves_s, allow_unused=True)
        for gs, gr, x in zip(grads_s, grads_r, inputs, strict=True):
            gs = torch.zeros_like(x) if gs is None else gs
            gr = torch.zeros_like(x) if gr is None else gr
            assert torch.isfinite(gs).all()
            torch.testing.assert_close(gs, gr, **GRAD_TOL)


def _anchor_sets(n: int) -> list[Tensor]:
    sets = [torch.arange(n)]
    if n >= 5:
        sets.append(torch.arange(n // 3, n - n // 4))  # this rank's rows under gather
    return sets


def _chunks(n: int) -> list[int]:
    """Tile sides that do not divide n (and one larger than n)."""
    if n <= 5:
        return [1, 2, 64]
    return sorted({7 if n < 100 else 31, n // 3 + 1, 64})


# ----------------------------------------------------------------------------- supcon


@pytest.mark.parametrize("n,pattern", SIZE_PATTERNS)
@pytest.mark.parametrize("hardness", [0.0, 0.7, -1.0])
def test_supcon_terms_match_reference(n, pattern, hardness, generator):
    x, y = _unit(n, 6, generator), _labels(pattern, n, generator)
    for anchors in _anchor_sets(n):
        expected_valid = ref_supcon(F.normalize(x, dim=1), y, anchors, 0.3, hardness)[1]

        def stream(x, chunk, anchors=anchors, expected_valid=expected_valid):
            loss, valid = streamed_supcon_terms(
                F.normalize(x, dim=1), y, anchors, 0.3, hardness, chunk_size=chunk
            )
            assert valid.tolist() == expected_valid.tolist()
            return loss

        def ref(x, anchors=anchors):
            return ref_supcon(F.normalize(x, dim=1), y, anchors, 0.3, hardness)[0]

        _compare([partial(stream, chunk=c) for c in _chunks(n)], ref, [x], generator)


def test_supcon_invalid_anchors_are_zero_with_zero_gradient(generator):
    x = _unit(6, 4, generator).requires_grad_(True)
    y = torch.tensor([0, 1, 2, 3, 4, 4])
    loss, valid = streamed_supcon_terms(
        F.normalize(x, dim=1), y, torch.arange(6), 0.1, 0.5, chunk_size=4
    )
    assert valid.tolist() == [False] * 4 + [True] * 2
    assert loss[:4].eq(0).all()
    (grad,) = torch.autograd.grad(loss[:4].sum(), x)
    assert grad.eq(0).all()


# ----------------------------------------------------------------------------- hscl


@pytest.mark.parametrize("n,pattern", SIZE_PATTERNS)
@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5])
def test_hscl_terms_match_reference(n, pattern, beta, generator):
    x, y = _unit(n, 6, generator), _labels(pattern, n, generator)
    # Q = n - 2 (the default) for every anchor set, and a custom Q on all rows
    for anchors, q in [(a, max(n - 2, 0)) for a in _anchor_sets(n)] + [(torch.arange(n), 3)]:
        expected = ref_hscl(F.normalize(x, dim=1), y, anchors, 0.5, beta, q)[1]

        def stream(x, chunk, anchors=anchors, q=q, expected=expected):
            z = F.normalize(x, dim=1)
            sums, counts = streamed_hscl_terms(z, y, anchors, 0.5, beta, q, chunk_size=chunk)
            assert counts.tolist() == expected.tolist()
            return sums

        def ref(x, anchors=anchors, q=q):
            return ref_hscl(F.normalize(x, dim=1), y, anchors, 0.5, beta, q)[0]

        _compare([partial(stream, chunk=c) for c in _chunks(n)], ref, [x], generator)


# ----------------------------------------------------------------------------- hcl / dcl


def _two_views(b: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    z = _unit(2 * b, 5, g)
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    return z, partner


@pytest.mark.parametrize("b", [2, 3, 17, 50, 101])
@pytest.mark.parametrize("tau_plus", [0.0, 0.1])
@pytest.mark.parametrize("beta", [0.0, 1.0, -1.0])
def test_hcl_terms_match_reference(b, tau_plus, beta, generator):
    x, partner = _two_views(b, generator)
    # all rows, and one rank's anchors under gather (its rows of both views)
    rank_rows = torch.cat([torch.arange(b // 2, b), torch.arange(b + b // 2, 2 * b)])
    for anchors in (torch.arange(2 * b), rank_rows):

        def stream(x, chunk, anchors=anchors):
            z = F.normalize(x, dim=1)
            return streamed_hcl_terms(z, partner, anchors, 0.5, tau_plus, beta, chunk_size=chunk)

        def ref(x, anchors=anchors):
            return ref_hcl(F.normalize(x, dim=1), partner, anchors, 0.5, tau_plus, beta)

        _compare([partial(stream, chunk=c) for c in sorted({3, b + 1, 64})], ref, [x], generator)


def test_hcl_clamp_branch_matches_reference(generator):
    """Large tau_plus and close positives: (R - tau M pos) / (1 - tau) falls under M e^{-1/t}."""
    b = 6
    base = _unit(b, 4, generator)
    x = torch.cat([base, base + 0.01 * _unit(b, 4, generator)])
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    anchors = torch.arange(2 * b)

    def stream(x):
        return streamed_hcl_terms(
            F.normalize(x, dim=1), partner, anchors, 0.2, 0.5, 1.0, chunk_size=5
        )

    def ref(x):
        return ref_hcl(F.normalize(x, dim=1), partner, anchors, 0.2, 0.5, 1.0)

    _compare(stream, ref, [x], generator)


def test_hcl_without_negatives_is_finite_zero(generator):
    x, partner = _two_views(1, generator)
    x.requires_grad_(True)
    out = streamed_hcl_terms(
        F.normalize(x, dim=1), partner, torch.arange(2), 0.5, 0.1, 1.0, chunk_size=1
    )
    assert out.eq(0).all()
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(grad).all()


# ----------------------------------------------------------------------------- info_nce


@pytest.mark.parametrize("m,n", [(1, 1), (5, 5), (33, 40), (100, 100)])
@pytest.mark.parametrize("queue", [0, 7, 50])
@pytest.mark.parametrize("in_batch", [True, False])
def test_info_nce_terms_match_reference(m, n, queue, in_batch, generator):
    q, k = _unit(m, 6, generator), _unit(n, 6, generator)
    neg = _unit(queue, 6, generator) if queue else None
    positive = torch.randint(0, n, (m,), generator=generator)
    if m == n:
        positive = torch.arange(n)
    inputs = [q, k] + ([neg] if neg is not None else [])

    def stream(q, k, *neg, chunk):
        negatives = F.normalize(neg[0], dim=1) if neg else None
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        return streamed_info_nce_terms(q, k, positive, negatives, 0.2, in_batch, chunk_size=chunk)

    def ref(q, k, *neg):
        negatives = F.normalize(neg[0], dim=1) if neg else None
        q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
        return ref_info_nce(q, k, positive, negatives, 0.2, in_batch)

    chunks = sorted({1 if m < 5 else 7, 64})
    if not in_batch and neg is None:
        assert stream(*inputs, chunk=chunks[0]).eq(0).all()  # the positive alone: loss 0
        return
    _compare([partial(stream, chunk=c) for c in chunks], ref, inputs, generator)


def test_learnable_temperature_gets_its_gradient(generator):
    """A 0-dim temperature tensor (CLIP's learnable scale): same value and d/dt as dense."""
    q, k = _unit(20, 6, generator), _unit(20, 6, generator)
    z, partner = _two_views(10, generator)
    positive = torch.arange(20)

    def grads(t_value, fn):
        t = torch.tensor(t_value, dtype=torch.float64, requires_grad=True)
        out = fn(t)
        (g,) = torch.autograd.grad(out.sum(), t)
        return out.detach(), g

    qn, kn, zn = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(z, dim=1)
    cases = [
        (
            lambda t: streamed_info_nce_terms(qn, kn, positive, None, t, True, chunk_size=7),
            lambda t: ref_info_nce(qn, kn, positive, None, t, True),
        ),
        (
            lambda t: streamed_hcl_terms(zn, partner, torch.arange(20), t, 0.1, 0.5, chunk_size=7),
            lambda t: ref_hcl(zn, partner, torch.arange(20), t, 0.1, 0.5),
        ),
    ]
    for stream_fn, ref_fn in cases:
        value_s, grad_s = grads(0.3, stream_fn)
        value_r, grad_r = grads(0.3, ref_fn)
        torch.testing.assert_close(value_s, value_r, **VALUE_TOL)
        torch.testing.assert_close(grad_s, grad_r, **GRAD_TOL)


# ----------------------------------------------------------------------------- numerics


def test_small_temperature_uses_the_online_path_and_stays_exact(generator):
    """t so small that the fixed shift could underflow: the running-maximum path takes over."""
    x, y = _unit(40, 5, generator), _labels("mixed", 40, generator)
    anchors = torch.arange(40)
    assert not fixed_shift_ok([1.0], 0.002, torch.float64)
    for t, h in [(0.002, 0.0), (0.002, 0.5)]:

        def stream(x, t=t, h=h):
            return streamed_supcon_terms(F.normalize(x, dim=1), y, anchors, t, h, chunk_size=9)[0]

        def ref(x, t=t, h=h):
            return ref_supcon(F.normalize(x, dim=1), y, anchors, t, h)[0]

        _compare(stream, ref, [x], generator)


def test_antipodal_rows_with_small_temperature_are_finite_in_float32():
    """Two opposite rows: every similarity is -1; with t = 0.01 exp(-2/t) underflows float32."""
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    z = F.normalize(x, dim=1)
    loss, valid = streamed_supcon_terms(z, y, torch.arange(4), 0.01, 0.0, chunk_size=3)
    expected = ref_supcon(z.double(), y, torch.arange(4), 0.01, 0.0)[0].float()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-4)
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_are_computed_in_float32(dtype, generator):
    x = _unit(50, 8, generator).to(dtype)
    y = _labels("mixed", 50, generator)
    z = F.normalize(x.float(), dim=1).to(dtype)
    loss, _ = streamed_supcon_terms(z, y, torch.arange(50), 0.1, 0.5, chunk_size=16)
    assert loss.dtype == torch.float32
    expected = ref_supcon(z.double(), y, torch.arange(50), 0.1, 0.5)[0]
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-5)
    sums, _ = streamed_hscl_terms(z, y, torch.arange(50), 0.1, 1.0, 48, chunk_size=16)
    torch.testing.assert_close(
        sums.double(),
        ref_hscl(z.double(), y, torch.arange(50), 0.1, 1.0, 48)[0],
        rtol=1e-5,
        atol=1e-4,
    )


def test_float32_matches_float64_reference(generator):
    x, y = _unit(300, 16, generator), _labels("mixed", 300, generator)
    z64 = F.normalize(x, dim=1)
    loss, _ = streamed_supcon_terms(z64.float(), y, torch.arange(300), 0.07, 0.0, chunk_size=128)
    torch.testing.assert_close(
        loss.double(), ref_supcon(z64, y, torch.arange(300), 0.07, 0.0)[0], rtol=1e-5, atol=1e-5
    )


def test_backward_holds_no_square_matrix(generator):
    """Everything autograd keeps for backward is O(N d), never N x N."""
    n, d = 600, 8
    x = _unit(n, d, generator).float().requires_grad_(True)
    y = _labels("mixed", n, generator)
    sizes: list[int] = []

    def pack(t: Tensor) -> Tensor:
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z = F.normalize(x, dim=1)
        loss = streamed_supcon_terms(z, y, torch.arange(n), 0.1, 0.5, chunk_size=128)[0].sum()
        loss = (
            loss
            + streamed_hscl_terms(z, y, torch.arange(n), 0.5, 1.0, n - 2, chunk_size=128)[0].sum()
        )
    assert max(sizes) <= n * (d + 2)
    loss.backward()
    assert torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------- policy


def test_dispatch_policy():
    assert use_streaming(10, 10, 4, "cpu")  # an explicit chunk size forces streaming
    assert not use_streaming(64, 64, None, "cpu")
    assert use_streaming(65536, 65536, None, "cpu")
    assert default_chunk_size(65536, 65536, "cpu") >= 256
    assert default_chunk_size(3, 5, "cpu") == 5


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_chunk_size_is_a_value_error(bad, generator):
    x = F.normalize(_unit(4, 3, generator), dim=1)
    with pytest.raises(ValueError, match="chunk_size"):
        streamed_supcon_terms(
            x, torch.tensor([0, 0, 1, 1]), torch.arange(4), 0.1, 0.0, chunk_size=bad
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_cpu(generator):
    x, y = _unit(300, 16, generator), _labels("mixed", 300, generator)
    z = F.normalize(x, dim=1)
    cpu = streamed_supcon_terms(z, y, torch.arange(300), 0.1, 0.5, chunk_size=64)[0]
    gpu = streamed_supcon_terms(
        z.cuda(), y.cuda(), torch.arange(300).cuda(), 0.1, 0.5, chunk_size=64
    )[0]
    torch.testing.assert_close(gpu.cpu(), cpu, **VALUE_TOL)


# ----------------------------------------------------------------------------- public functions


def _public_cases():
    import contrastkit.losses as L

    y = torch.arange(40) % 6
    return {
        "supcon": lambda a, b, q, c: L.supcon(a, y, temperature=0.2, chunk_size=c),
        "supcon_hardness": lambda a, b, q, c: L.supcon(a, y, hardness=0.5, chunk_size=c),
        "hscl": lambda a, b, q, c: L.hscl(a, y, beta=1.0, chunk_size=c),
        "hscl_scl": lambda a, b, q, c: L.hscl(a, y, beta=0.0, num_negatives=10, chunk_size=c),
        "nt_xent": lambda a, b, q, c: L.nt_xent(a, b, chunk_size=c),
        "info_nce": lambda a, b, q, c: L.info_nce(a, b, chunk_size=c),
        "info_nce_queue": lambda a, b, q, c: L.info_nce(a, b, negatives=q, chunk_size=c),
        "moco": lambda a, b, q, c: L.info_nce(
            a, b, negatives=q, in_batch_negatives=False, chunk_size=c
        ),
        "dcl": lambda a, b, q, c: L.dcl(a, b, chunk_size=c),
        "hcl": lambda a, b, q, c: L.hcl(a, b, chunk_size=c),
        "clip": lambda a, b, q, c: L.clip(a, b, chunk_size=c),
    }


@pytest.mark.parametrize("name", list(_public_cases()))
def test_public_functions_stream_to_the_dense_result(name, generator):
    """chunk_size forces the streaming kernel; None at this size runs the dense one."""
    assert not use_streaming(80, 80, None, "cpu")
    loss = _public_cases()[name]
    a, b, queue = _unit(40, 8, generator), _unit(40, 8, generator), _unit(13, 8, generator)

    def dense(a, b, queue):
        return loss(a, b, queue, None)

    _compare([partial(loss, c=c) for c in (7, 16, 1000)], dense, [a, b, queue], generator)
