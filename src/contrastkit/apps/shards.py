"""Embedding under `torchrun`: each process embeds one contiguous block of the rows, and rank
0 gathers the blocks in order (gloo, so CPU processes and GPU processes alike). Without
torchrun the one process embeds everything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from contrastkit.errors import UserError
from contrastkit.training.distributed import DistInfo, init_distributed


def join_torchrun() -> DistInfo:
    """Join the process group torchrun describes (a group of one without torchrun)."""
    return init_distributed(torch.device("cpu"))


def shard(n_rows: int, info: DistInfo) -> slice:
    """The contiguous block of rows that rank `info.rank` embeds (blocks differ by <= 1 row)."""
    bounds = np.linspace(0, n_rows, info.world_size + 1).round().astype(int)
    return slice(int(bounds[info.rank]), int(bounds[info.rank + 1]))


def embed_sharded(encode: Callable[[Any], np.ndarray], inputs, info: DistInfo) -> np.ndarray | None:
    """`encode(inputs)` (float32 rows), on rank 0 (None on the other ranks): each rank encodes
    its block. A UserError on any rank stops every rank with it, so that no process waits for
    a block that never comes."""
    if not info.enabled:
        return encode(inputs)
    part = shard(len(inputs), info)
    Z, error = None, None
    if part.stop > part.start:
        try:
            Z = encode(inputs[part])
        except UserError as exc:
            error = str(exc)
    failed = torch.tensor([0 if error is None else 1])
    dist.all_reduce(failed, op=dist.ReduceOp.MAX)
    if failed.item():
        raise UserError(error or "another process of the torchrun job failed; see its message")
    return gather_rows(Z, info)


def gather_rows(Z: np.ndarray | None, info: DistInfo) -> np.ndarray | None:
    """Rank 0 receives every rank's rows (float32 (n_r, d), None for none), in rank order."""
    shape = torch.tensor([0, 0] if Z is None else list(Z.shape), dtype=torch.int64)
    shapes = [torch.zeros(2, dtype=torch.int64) for _ in range(info.world_size)]
    dist.all_gather(shapes, shape)
    rows = [int(s[0]) for s in shapes]
    dim = max(int(s[1]) for s in shapes)
    padded = torch.zeros((max(rows), dim), dtype=torch.float32)
    if Z is not None:
        padded[: len(Z)] = torch.from_numpy(np.ascontiguousarray(Z, dtype=np.float32))
    parts = [torch.empty_like(padded) for _ in range(info.world_size)] if info.is_main else None
    dist.gather(padded, parts, dst=0)
    if not info.is_main:
        return None
    return np.concatenate([p[:r].numpy() for p, r in zip(parts, rows, strict=True)])
