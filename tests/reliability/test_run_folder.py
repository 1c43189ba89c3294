"""Nothing lost, nothing mixed up: the run folder knows its run (resume refuses anything else),
one process at a time holds it, --overwrite keeps the old run until the new one is complete,
and `embed` never writes over an input or an existing file unasked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from reliability_helpers import assert_refused, run_refine, snapshot

from contrastkit.cli import app
from contrastkit.io.run_folder import RunFolderBusy, RunLock

ROWS = 60


@pytest.fixture
def data(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "train.npz"
    np.savez(path, x=rng.normal(size=(ROWS, 8)).astype(np.float32), y=np.arange(ROWS) % 3)
    return path


@pytest.fixture
def finished(tmp_path, data) -> Path:
    out = tmp_path / "run"
    result = run_refine("--train", data, "--out", out, "--epochs", "2", "--temperature", "0.2")
    assert result.exit_code == 0, result.stderr
    return out


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (["--method", "triplet"], ("--method triplet differs from the resumed run's supcon",)),
        (["--temperature", "0.3"], ("--temperature 0.3 differs from the resumed run's 0.2",)),
        (["--lr", "0.5"], ("--lr 0.5 differs from the resumed run's 0.001",)),
    ],
    ids=["method", "temperature", "lr"],
)
def test_resume_with_other_options_is_refused_naming_both_values(finished, data, flags, fragments):
    before = snapshot(finished)
    result = run_refine("--train", data, "--out", finished, "--resume", *flags)
    assert_refused(result, *fragments)
    assert snapshot(finished) == before


def test_resume_with_the_same_values_typed_again_is_accepted(finished, data):
    result = run_refine("--train", data, "--out", finished, "--resume", "--temperature", "0.2",
                        "--lr", "0.001", "--method", "supcon")  # fmt: skip
    assert result.exit_code == 0, result.stderr


def test_resume_with_other_data_of_the_same_shape_is_refused(finished, tmp_path):
    rng = np.random.default_rng(9)
    other = tmp_path / "other.npz"
    np.savez(other, x=rng.normal(size=(ROWS, 8)).astype(np.float32), y=np.arange(ROWS) % 3)
    result = run_refine("--train", other, "--out", finished, "--resume")
    assert_refused(result, "other.npz", "not the data this run was started with", "sha256")


def test_resume_of_a_folder_that_does_not_exist_is_an_error(tmp_path, data):
    result = run_refine("--train", data, "--out", tmp_path / "absent", "--resume")
    assert_refused(result, "holds no run to continue", "leave out --resume")
    assert not (tmp_path / "absent").exists()


def test_config_yaml_records_every_resolved_option_and_the_data(finished, data):
    config = yaml.safe_load((finished / "config.yaml").read_text())
    assert config["options"] == {"epochs": 2, "temperature": 0.2}  # what the user typed
    resolved = config["resolved"]
    assert (resolved["temperature"], resolved["hardness"], resolved["lr"]) == (0.2, 0.0, 0.001)
    assert resolved["batch_size"] == config["plan"]["batch_size"] == 54  # 90 % of 60 rows
    assert config["data"]["train"]["bytes"] == data.stat().st_size
    assert len(config["data"]["train"]["sha256"]) == 64


def test_a_second_process_on_the_same_folder_is_refused(tmp_path, data):
    out = tmp_path / "run"
    with_lock = RunLock(out)
    try:
        result = run_refine("--train", data, "--out", out, "--epochs", "1")
        assert_refused(result, "in use by another contrastkit process", f"pid {os.getpid()}")
        with pytest.raises(RunFolderBusy):
            RunLock(out)
    finally:
        with_lock.release()
    assert run_refine("--train", data, "--out", out, "--epochs", "1").exit_code == 0


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, data):
    out = tmp_path / "run"
    script = f"from contrastkit.io.run_folder import RunLock; RunLock(__import__('pathlib').Path({str(out)!r})); import time; time.sleep(60)"  # fmt: skip
    holder = subprocess.Popen([sys.executable, "-c", script])
    lock_file = tmp_path / ".run.lock"
    for _ in range(200):
        if lock_file.is_file() and lock_file.read_text().startswith("pid"):
            break
        time.sleep(0.05)
    assert_refused(run_refine("--train", data, "--out", out, "--epochs", "1"), "in use")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock_file.is_file()  # left behind, stale
    result = run_refine("--train", data, "--out", out, "--epochs", "1")
    assert result.exit_code == 0, result.stderr


def test_a_failed_overwrite_leaves_the_old_run_intact(finished, data, monkeypatch):
    before = snapshot(finished)
    from contrastkit.errors import UserError
    from contrastkit.training import trainer

    def broken(self, *args, **kwargs):
        raise UserError("training diverged (simulated)")

    monkeypatch.setattr(trainer.Trainer, "fit", broken)
    result = run_refine("--train", data, "--out", finished, "--overwrite", "--epochs", "3")
    assert_refused(result, "simulated")
    assert snapshot(finished) == before
    assert not (finished.parent / ".run.new").exists()


def test_a_killed_overwrite_leaves_the_old_run_intact_and_the_next_one_replaces_it(finished, data):
    before = snapshot(finished)
    command = [sys.executable, "-m", "contrastkit.cli", "refine", "--train", str(data), "--out",
               str(finished), "--overwrite", "--epochs", "400", "--quiet", "--no-report"]  # fmt: skip
    process = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    staging = finished.parent / ".run.new" / "checkpoints" / "latest.json"
    for _ in range(600):
        if staging.exists() or process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert staging.exists(), "the overwrite never reached its first checkpoint"
    assert snapshot(finished) == before
    result = run_refine("--train", data, "--out", finished, "--overwrite", "--epochs", "1")
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load((finished / "config.yaml").read_text())["options"]["epochs"] == 1
    assert not (finished.parent / ".run.new").exists()


# -- embed ----------------------------------------------------------------------------------
def _embed(*args):
    from typer.testing import CliRunner

    return CliRunner().invoke(app, ["embed", *map(str, args)])


def test_embed_refuses_to_write_over_its_input_or_into_the_model(finished, data):
    before = data.read_bytes()
    result = _embed("--model", finished / "model", "--input", data, "--out", data)
    assert result.exit_code == 2 and "is one of the inputs" in result.stderr
    assert data.read_bytes() == before
    inside = finished / "model" / "z.npy"
    result = _embed("--model", finished / "model", "--input", data, "--out", inside)
    assert result.exit_code == 2 and not inside.exists()


def test_embed_replaces_an_existing_file_only_with_overwrite(finished, data, tmp_path):
    target = tmp_path / "z.npy"
    target.write_bytes(b"precious")
    result = _embed("--model", finished / "model", "--input", data, "--out", target)
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert target.read_bytes() == b"precious"
    result = _embed("--model", finished / "model", "--input", data, "--out", target, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert np.load(target).shape == (ROWS, 8)
    assert not list(tmp_path.glob(".z.npy.*"))  # no temporary file left
