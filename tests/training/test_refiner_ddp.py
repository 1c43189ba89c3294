"""Refiner under torch.distributed: two CPU processes (gloo) started by torchrun.

The worker (ddp_refine_worker.py) fits, checkpoints, is killed, resumes, and runs a Trainer
whose loss is NaN on one rank; this test compares what the two ranks wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist

WORKER = Path(__file__).with_name("ddp_refine_worker.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[tuple[dict, dict]]:
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch build has no gloo backend for torch.distributed")
    out = tmp_path_factory.mktemp("ddp")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(WORKER), str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    results = []
    for rank in (0, 1):
        assert (out / f"rank{rank}.json").is_file(), f"rank {rank} did not finish"
        summary = json.loads((out / f"rank{rank}.json").read_text())
        arrays = dict(np.load(out / f"rank{rank}.npz"))
        results.append((summary, arrays))
    results.append(out)
    return results


def test_both_ranks_finish_in_a_group_of_two(ranks):
    assert [ranks[r][0]["rank"] for r in (0, 1)] == [0, 1]
    assert ranks[0][0]["world_size"] == 2


def test_both_ranks_end_with_identical_weights(ranks):
    (_, a), (_, b) = ranks[0], ranks[1]
    straight = [k for k in a if k.startswith("straight.")]
    assert straight
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    # the adapter trained (its last layer starts at zero)
    assert np.abs(a["straight.mlp.3.weight"]).max() > 0


def test_each_rank_gets_its_own_batches(ranks):
    first, second = ranks[0][0]["batches"], ranks[1][0]["batches"]
    assert len(first) == len(second) > 0
    for a, b in zip(first, second, strict=True):
        assert sorted(a) != sorted(b)
    per_epoch = len(first) // 4
    seen = {i for batch in first[:per_epoch] + second[:per_epoch] for i in batch}
    only_first = {i for batch in first[:per_epoch] for i in batch}
    assert len(seen) >= 0.95 * 400 > len(only_first)  # together the ranks cover the data


def test_validation_under_ddp_agrees_across_ranks(ranks):
    a, b = ranks[0][0]["history"], ranks[1][0]["history"]
    assert [row["val_score"] for row in a] == [row["val_score"] for row in b]
    assert all(0.5 < row["val_score"] <= 1.0 for row in a)


def test_a_killed_distributed_run_resumes_on_every_rank(ranks):
    (sa, a), (sb, b) = ranks[0], ranks[1]
    assert [row["epoch"] for row in sa["resumed_history"]] == [1, 2, 3, 4]
    assert sa["resumed_history"] == sa["history"]
    # losses are each rank's own; the resumed rank 1 continues exactly as its straight run did
    # (its epochs 1-2 rows come from the checkpoint, which rank 0 wrote)
    assert sb["resumed_history"][2:] == sb["history"][2:]
    for key in a:
        if key.startswith("straight."):
            resumed = "resumed." + key[len("straight.") :]
            np.testing.assert_array_equal(a[resumed], a[key], err_msg=key)
            np.testing.assert_array_equal(b[resumed], a[key], err_msg=key)


def test_checkpoints_are_written_once(ranks):
    root = ranks[2] / "ckpt-straight"
    assert sorted(p.name for p in root.iterdir()) == [
        "epoch-0003",
        "epoch-0004",
        "history.jsonl",
        "latest.json",
    ]


def test_a_non_finite_loss_on_one_rank_skips_the_step_on_every_rank(ranks):
    a, b = ranks[0][0]["nan_run"], ranks[1][0]["nan_run"]
    assert a["steps"] == b["steps"] == 8
    assert a["skipped_steps"] == b["skipped_steps"] == 1
    assert a["weight"] == b["weight"]


def test_torchrun_refine_writes_one_run_folder_from_rank_zero(tmp_path):
    """`torchrun ... contrastkit refine`: both ranks train, rank 0 alone writes and reports."""
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch build has no gloo backend for torch.distributed")
    rng = np.random.default_rng(0)
    centres, y = rng.normal(size=(4, 8)), rng.integers(0, 4, 200)
    x = (centres[y] + rng.normal(size=(200, 8))).astype(np.float32)
    np.savez(tmp_path / "v.npz", x=x, y=y)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "contrastkit.cli", "refine",
               "--train", str(tmp_path / "v.npz"), "--out", str(tmp_path / "run"),
               "--epochs", "2", "--quiet", "--no-report"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert done.stdout.count("run folder:") == 1  # one report, from rank 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["after"]["knn1_accuracy"] > 0
    assert not list((tmp_path / "run").rglob("*.tmp"))
