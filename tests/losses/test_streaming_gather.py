"""`gather=True` with the streaming kernels, on 2 CPU processes (gloo).

Same contract and machinery as test_distributed.py (DDP-averaged gathered gradients equal the
single-process gradients), with a `chunk_size` on every call so that the memory-linear kernels
run, with tiles that do not divide the batch. This file, run as a script, is the worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_distributed as shared  # noqa: E402  (the worker imports it by path too)


def _cases() -> list[shared.Case]:
    import contrastkit.losses as L

    Case = shared.Case
    return [
        Case(
            "supcon",
            lambda z1, z2, y, q, g: L.supcon(z1, y, temperature=0.2, gather=g, chunk_size=3),
        ),
        Case(
            "supcon_hardness",
            lambda z1, z2, y, q, g: L.supcon(
                z1, y, temperature=0.2, hardness=0.8, gather=g, chunk_size=5
            ),
        ),
        Case("hscl", lambda z1, z2, y, q, g: L.hscl(z1, y, beta=1.5, gather=g, chunk_size=3)),
        Case("nt_xent", lambda z1, z2, y, q, g: L.nt_xent(z1, z2, gather=g, chunk_size=5)),
        Case("info_nce", lambda z1, z2, y, q, g: L.info_nce(z1, z2, gather=g, chunk_size=4)),
        Case(
            "info_nce_queue",
            lambda z1, z2, y, q, g: L.info_nce(z1, z2, negatives=q, gather=g, chunk_size=5),
        ),
        Case(
            "info_nce_queue_only",
            lambda z1, z2, y, q, g: L.info_nce(
                z1, z2, negatives=q, in_batch_negatives=False, gather=g, chunk_size=2
            ),
        ),
        Case("dcl", lambda z1, z2, y, q, g: L.dcl(z1, z2, gather=g, chunk_size=5)),
        Case("hcl", lambda z1, z2, y, q, g: L.hcl(z1, z2, gather=g, chunk_size=7)),
        Case("clip", lambda z1, z2, y, q, g: L.clip(z1, z2, gather=g, chunk_size=5)),
    ]


CASE_NAMES = [
    "supcon",
    "supcon_hardness",
    "hscl",
    "nt_xent",
    "info_nce",
    "info_nce_queue",
    "info_nce_queue_only",
    "dcl",
    "hcl",
    "clip",
]


def _worker(rank: int, init_file: str, out_file: str) -> None:
    import warnings

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=shared.WORLD_SIZE,
        timeout=timedelta(seconds=60),
    )
    results = {}
    for case in _cases():
        results[case.name] = shared._run_case(case, rank)
        Path(out_file).write_text(json.dumps(results))
    dist.destroy_process_group()


def test_case_names_are_listed():
    assert [c.name for c in _cases()] == CASE_NAMES


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("gloo_streaming")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    outs = [folder / f"rank{rank}.json" for rank in range(shared.WORLD_SIZE)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(rank), str(folder / "init"), str(outs[rank])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(shared.WORLD_SIZE)
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
        found = [r.get(name) for r in per_rank]
        if any(r is None for r in found):
            merged[name] = {"status": "error", "detail": "no result; logs:\n" + "\n".join(logs)}
        else:
            merged[name] = next((r for r in found if r["status"] != "ok"), found[0])
    return merged


@pytest.mark.parametrize("name", CASE_NAMES)
def test_streaming_gathered_gradients_equal_single_process_gradients(name, results):
    assert results[name]["status"] == "ok", results[name]["detail"]


if __name__ == "__main__":
    _worker(int(sys.argv[1]), sys.argv[2], sys.argv[3])
