"""The `gather=True` contract under torch.distributed, on 2 CPU processes (gloo).

For every loss that takes `gather`: a tiny linear model runs on each rank's shard of one
batch (the ranks hold different numbers of rows), the loss is computed with `gather=True`,
the gradients are averaged over ranks as DDP does, and they must equal the single-process
gradients of the same loss on the concatenated batch. Loss values may differ per rank;
only the gradients are the contract.

One pair of worker processes runs every case (this file, run as a script, is the worker);
the parametrised tests read their results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import torch

WORLD_SIZE = 2
ROWS_PER_RANK = (5, 7)
IN_DIM, OUT_DIM = 6, 4
# Row 4 is a singleton class (skipped by supcon, hscl, triplet); every other class spans both ranks.
LABELS = [0, 1, 2, 0, 4, 2, 3, 0, 1, 2, 3, 1]


@dataclass(frozen=True)
class Case:
    name: str
    # (z1, z2, labels, queue, gather) -> loss; z1/z2 are the model's outputs on the two inputs.
    loss: Callable[..., torch.Tensor]


def _cases() -> list[Case]:
    import contrastkit.losses as L

    return [
        Case("supcon", lambda z1, z2, y, q, g: L.supcon(z1, y, temperature=0.2, gather=g)),
        Case(
            "supcon_hardness",
            lambda z1, z2, y, q, g: L.supcon(z1, y, temperature=0.2, hardness=0.8, gather=g),
        ),
        Case("hscl", lambda z1, z2, y, q, g: L.hscl(z1, y, beta=1.5, gather=g)),
        Case("logistic_pair", lambda z1, z2, y, q, g: L.logistic_pair(z1, y, bias=-1.0, gather=g)),
        Case(
            "contrastive_pair",
            lambda z1, z2, y, q, g: L.contrastive_pair(z1, y, pos_margin=0.1, gather=g),
        ),
        Case(
            "triplet_batch_hard",
            lambda z1, z2, y, q, g: L.triplet(z1, y, margin=0.5, mining="batch_hard", gather=g),
        ),
        Case(
            "triplet_semi_hard",
            lambda z1, z2, y, q, g: L.triplet(z1, y, margin=0.5, mining="semi_hard", gather=g),
        ),
        Case(
            "triplet_all",
            lambda z1, z2, y, q, g: L.triplet(z1, y, margin=0.5, mining="all", gather=g),
        ),
        Case("npair", lambda z1, z2, y, q, g: L.npair(z1, z2, l2_reg=0.1, gather=g)),
        Case("cosent", lambda z1, z2, y, q, g: L.cosent(z1, z2, y.double(), gather=g)),
        Case("nt_xent", lambda z1, z2, y, q, g: L.nt_xent(z1, z2, gather=g)),
        Case("info_nce", lambda z1, z2, y, q, g: L.info_nce(z1, z2, gather=g)),
        Case(
            "info_nce_queue",
            lambda z1, z2, y, q, g: L.info_nce(z1, z2, negatives=q, gather=g),
        ),
        Case(
            "info_nce_queue_only",
            lambda z1, z2, y, q, g: L.info_nce(
                z1, z2, negatives=q, in_batch_negatives=False, gather=g
            ),
        ),
        Case("dcl", lambda z1, z2, y, q, g: L.dcl(z1, z2, gather=g)),
        Case("hcl", lambda z1, z2, y, q, g: L.hcl(z1, z2, gather=g)),
        Case("clip", lambda z1, z2, y, q, g: L.clip(z1, z2, gather=g)),
        Case("barlow_twins", lambda z1, z2, y, q, g: L.barlow_twins(z1, z2, gather=g)),
        Case("vicreg", lambda z1, z2, y, q, g: L.vicreg(z1, z2, gather=g)),
        Case("swav", lambda z1, z2, y, q, g: L.swav(z1, z2, gather=g)),
    ]


CASE_NAMES = [
    "supcon",
    "supcon_hardness",
    "hscl",
    "logistic_pair",
    "contrastive_pair",
    "triplet_batch_hard",
    "triplet_semi_hard",
    "triplet_all",
    "npair",
    "cosent",
    "nt_xent",
    "info_nce",
    "info_nce_queue",
    "info_nce_queue_only",
    "dcl",
    "hcl",
    "clip",
    "barlow_twins",
    "vicreg",
    "swav",
]


# ---------------------------------------------------------------- worker (one per rank)


def _data():
    g = torch.Generator().manual_seed(1234)
    n = sum(ROWS_PER_RANK)
    x1 = torch.randn(n, IN_DIM, generator=g, dtype=torch.float64)
    x2 = x1 + 0.3 * torch.randn(n, IN_DIM, generator=g, dtype=torch.float64)
    weight = torch.randn(IN_DIM, OUT_DIM, generator=g, dtype=torch.float64)
    bias = 0.1 * torch.randn(OUT_DIM, generator=g, dtype=torch.float64)
    queue = torch.randn(9, OUT_DIM, generator=g, dtype=torch.float64)
    return x1, x2, torch.tensor(LABELS), weight, bias, queue


def _gradients(case: Case, x1, x2, labels, weight, bias, queue, gather: bool):
    params = [weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)]
    z1, z2 = x1 @ params[0] + params[1], x2 @ params[0] + params[1]
    loss = case.loss(z1, z2, labels, queue, gather)
    return torch.autograd.grad(loss, params)


def _run_case(case: Case, rank: int) -> dict:
    import torch.distributed as dist

    x1, x2, labels, weight, bias, queue = _data()
    try:
        expected = _gradients(case, x1, x2, labels, weight, bias, queue, gather=False)
        start = sum(ROWS_PER_RANK[:rank])
        shard = slice(start, start + ROWS_PER_RANK[rank])
        grads = _gradients(case, x1[shard], x2[shard], labels[shard], weight, bias, queue, True)
    except NotImplementedError as error:
        return {"status": "not_implemented", "detail": str(error) or "NotImplementedError"}
    except Exception:
        return {"status": "error", "detail": traceback.format_exc(limit=4)}
    for grad in grads:  # DDP: average the parameter gradients over ranks
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        grad /= WORLD_SIZE
    worst = max(
        float(((g - e).abs() / (1e-6 * e.abs() + 1e-9)).max())
        for g, e in zip(grads, expected, strict=True)
    )
    if worst > 1.0:
        detail = "; ".join(
            f"DDP-averaged {g.flatten()[:4].tolist()} vs single-process {e.flatten()[:4].tolist()}"
            for g, e in zip(grads, expected, strict=True)
        )
        return {"status": "mismatch", "detail": detail}
    return {"status": "ok", "detail": ""}


def _worker(rank: int, init_file: str, out_file: str) -> None:
    import warnings

    import torch.distributed as dist

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=timedelta(seconds=60),
    )
    results = {}
    for case in _cases():
        results[case.name] = _run_case(case, rank)
        Path(out_file).write_text(json.dumps(results))  # partial results survive a hang
    dist.destroy_process_group()


# ---------------------------------------------------------------- tests


def test_case_table_names_are_unique_and_listed():
    assert [c.name for c in _cases()] == CASE_NAMES


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("gloo")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    outs = [folder / f"rank{rank}.json" for rank in range(WORLD_SIZE)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(rank), str(folder / "init"), str(outs[rank])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(WORLD_SIZE)
    ]
    logs = []
    for proc in procs:
        try:
            logs.append(proc.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            proc.kill()
            logs.append(proc.communicate()[0] + "\n(timed out)")
    per_rank = [json.loads(out.read_text()) if out.exists() else {} for out in outs]
    merged = {}
    for name in CASE_NAMES:
        found = [results.get(name) for results in per_rank]
        if any(r is None for r in found):
            merged[name] = {
                "status": "error",
                "detail": "no result; worker logs:\n" + "\n".join(logs),
            }
        else:
            merged[name] = next((r for r in found if r["status"] != "ok"), found[0])
    return merged


@pytest.mark.parametrize("name", CASE_NAMES)
def test_gathered_gradients_equal_single_process_gradients(name, distributed_results):
    result = distributed_results[name]
    if result["status"] == "not_implemented":
        pytest.skip(f"{name} is not implemented yet: {result['detail']}")
    assert result["status"] == "ok", result["detail"]


if __name__ == "__main__":
    _worker(int(sys.argv[1]), sys.argv[2], sys.argv[3])
