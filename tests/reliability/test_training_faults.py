"""Faults during training, end to end: non-finite losses, gradients and model outputs are skipped
and counted; a run that keeps failing stops with exit code 2, keeps its last good checkpoint and
says what to change; a damaged or foreign checkpoint is refused on --resume; a model that did not
really train is never handed back as if it had."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from reliability_helpers import assert_refused, run_refine, snapshot
from safetensors.torch import load_file
from torch import nn

from contrastkit import Refiner, losses
from contrastkit.data.samplers import RandomBatchSampler
from contrastkit.methods.base import Batch
from contrastkit.methods.supervised import SUPERVISED_LOSSES
from contrastkit.training.checkpoint import load_latest
from contrastkit.training.trainer import Trainer, TrainingDiverged, TrainSettings

ROWS, DIM = 60, 8


@pytest.fixture
def data(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, DIM)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=np.arange(ROWS) % 3)
    return tmp_path / "train.npz"


def _config(tmp_path: Path, **values) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in values.items()))
    return path


def _sabotage_supcon(monkeypatch, bad_from_call: int, until_call: int = 10**9) -> list[int]:
    """From the `bad_from_call`-th call of the supcon loss on, return NaN (a diverging run)."""
    real, calls = SUPERVISED_LOSSES["supcon"], [0]

    def sabotaged(x, labels, **options):
        calls[0] += 1
        loss = real(x, labels, **options)
        return loss * float("nan") if bad_from_call <= calls[0] < until_call else loss

    monkeypatch.setitem(SUPERVISED_LOSSES, "supcon", sabotaged)
    return calls


def _files_are_complete(folder: Path) -> None:
    """Every JSON parses and every safetensors file loads (nothing half-written)."""
    for path in folder.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            load_file(str(path))


def test_a_diverging_run_stops_with_exit_2_and_keeps_its_last_good_checkpoint(
    tmp_path, data, monkeypatch
):
    # 60 rows, 54 for training after the 10 % validation hold-out, batches of 16: 4 steps an
    # epoch; epochs 1-2 are fine, every step from epoch 3 on gives NaN.
    calls = _sabotage_supcon(monkeypatch, bad_from_call=9)
    out = tmp_path / "run"
    config = _config(tmp_path, max_bad_steps=3, patience=50)
    args = ["--train", data, "--out", out, "--epochs", "6", "--batch-size", "16"]
    result = run_refine(*args, "--config", config)
    line = assert_refused(
        result,
        "training diverged: 3 steps in a row had a non-finite loss or gradient",
        r"the last good checkpoint \(epoch 2\) is kept in .*run/checkpoints",
        r"lower --lr \(this run used 0.001\)",
        "--temperature",
    )
    assert calls[0] == 11, line  # stopped at the third bad step
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml"]
    _files_are_complete(out)
    tensors, state = load_latest(out / "checkpoints")
    assert state["trainer"]["epoch"] == 2 and state["trainer"]["skipped_steps"] == 0
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())

    # The fault was transient: the kept checkpoint resumes and the run completes.
    monkeypatch.setitem(SUPERVISED_LOSSES, "supcon", losses.supcon)
    resumed = run_refine(*args, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]


def test_skipped_steps_are_counted_and_reported(tmp_path, data, monkeypatch):
    _sabotage_supcon(monkeypatch, bad_from_call=3, until_call=5)  # steps 3 and 4 give NaN
    out = tmp_path / "run"
    result = run_refine("--train", data, "--out", out, "--epochs", "3", "--batch-size", "16")
    assert result.exit_code == 0, result.stderr
    assert "warning: 2 of 12 training steps were skipped" in result.stderr
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [row["skipped_steps"] for row in history] == [2, 2, 2]
    Z = np.asarray(pq.read_table(out / "embeddings.parquet").column("embedding").to_pylist())
    assert np.isfinite(Z).all()


@pytest.mark.parametrize(
    "flags, fragments",
    [
        # one Adam step at lr 1e30 makes the adapter's output overflow: the validation after
        # epoch 1 sees non-finite embeddings
        (
            ["--lr", "1e30", "--val-fraction", "0.1"],
            ("after epoch 1 the model's embeddings are not finite",),
        ),
        # without validation, every later step overflows (a NonFiniteInputError from the loss,
        # counted as a skipped step) until max_bad_steps (20) in a row
        (
            ["--lr", "1e30", "--test", "SELF", "--epochs", "8", "--batch-size", "16"],
            ("20 steps in a row had a non-finite",),
        ),
        # too few steps to reach max_bad_steps: the finished model's embeddings are checked
        (["--lr", "1e30", "--test", "SELF"], ("gives NaN or inf embeddings for 60 rows",)),
        # the similarities / 1e-30 overflow the gradient norm on every step: nothing is learned
        (["--temperature", "1e-30"], ("all 4 training steps had a non-finite", "nothing was")),
    ],
    ids=["huge lr", "huge lr without validation", "huge lr, few steps", "tiny temperature"],
)
def test_numerically_hopeless_options_end_in_a_clear_error_never_nan(
    tmp_path, data, flags, fragments
):
    out = tmp_path / "run"
    flags = [str(data) if f == "SELF" else f for f in flags]
    args = ["--train", data, "--out", out, "--epochs", "4", "--batch-size", "54", *flags]
    result = run_refine(*args, "--config", _config(tmp_path, patience=50))
    assert_refused(result, "training diverged", *fragments, "--lr", "--temperature")
    assert not (out / "embeddings.parquet").exists() and not (out / "model").exists()
    if out.exists():
        _files_are_complete(out)


class _Overflowing(nn.Module):
    """A linear model whose output overflows to inf on chosen calls; the real supcon loss
    then raises NonFiniteInputError, which the trainer counts as a non-finite step."""

    def __init__(self, bad_calls: set[int]) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.bad_calls, self.calls = bad_calls, 0

    def forward(self, batch: Batch) -> torch.Tensor:
        self.calls += 1
        z = self.linear(batch.inputs)
        if self.calls in self.bad_calls:
            z = z * torch.tensor(float("inf"))
        return losses.supcon(z, batch.labels)


def test_a_model_output_that_overflows_is_a_skipped_step_not_a_crash():
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.arange(32) % 4
    module = _Overflowing({2, 5})
    trainer = Trainer(
        module,
        RandomBatchSampler(32, 8, seed=0),
        lambda idx: Batch(x[idx], y[idx]),
        TrainSettings(epochs=2, lr=0.01, quiet=True),
    )
    with pytest.warns(UserWarning, match="2 of 8 training steps were skipped"):
        state = trainer.fit()
    assert state.skipped_steps == 2 and state.step == 8
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_weights_that_end_non_finite_are_refused():
    """A step that is finite itself can still leave NaN weights (here: written directly)."""

    class Poisoned(_Overflowing):
        def forward(self, batch):
            loss = super().forward(batch)
            if self.calls == 3:
                with torch.no_grad():
                    self.linear.bias[0] = float("nan")
            return loss

    x, y = torch.randn(16, 4), torch.arange(16) % 4
    trainer = Trainer(
        Poisoned(set()),
        RandomBatchSampler(16, 8, seed=0),
        lambda idx: Batch(x[idx], y[idx]),
        TrainSettings(epochs=2, lr=0.01, quiet=True, max_bad_steps=100),
    )
    with pytest.raises(TrainingDiverged, match=r"trained weights hold NaN or inf \(linear.bias\)"):
        trainer.fit()


def test_the_api_never_returns_nan_embeddings():
    """14 of 15 steps overflow (fewer than max_bad_steps in a row): fit warns, and transform
    refuses to hand out the NaN embeddings of the broken model."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 6)).astype(np.float32), np.arange(40) % 2
    with pytest.warns(UserWarning, match="14 of 15 training steps were skipped"):
        refiner = Refiner(epochs=3, lr=1e30, quiet=True, batch_size=8).fit(X, y)
    with pytest.raises(TrainingDiverged, match="NaN or inf embeddings for 40 rows"):
        refiner.transform(X)


# ---------------------------------------------------------------------- damaged checkpoints


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {
    "truncated tensors": (lambda c: _truncate(c / "epoch-0002" / "tensors.safetensors"),
                          ("epoch-0002/tensors.safetensors", "altered or truncated")),
    "altered tensors": (lambda c: _flip_last_byte(c / "epoch-0002" / "tensors.safetensors"),
                        ("epoch-0002/tensors.safetensors", "checksum mismatch")),
    "altered state": (lambda c: (c / "epoch-0002" / "state.json").write_text(
                          (c / "epoch-0002" / "state.json").read_text().replace('"epoch": 2', '"epoch": 5')),
                      ("epoch-0002/state.json", "altered or truncated")),
    "missing tensors": (lambda c: (c / "epoch-0002" / "tensors.safetensors").unlink(),
                        ("epoch-0002/tensors.safetensors", "is missing")),
    "damaged latest.json": (lambda c: (c / "latest.json").write_text('{"name": "epo'),
                            ("latest.json is damaged", "delete the run folder's checkpoints")),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(DAMAGES), ids=list(DAMAGES))
def test_a_damaged_checkpoint_is_refused_on_resume_and_left_as_it_is(tmp_path, data, damage):
    out = tmp_path / "run"
    args = ["--train", data, "--out", out, "--batch-size", "16"]
    assert run_refine(*args, "--epochs", "2").exit_code == 0
    for name in ("model", "metrics.json", "embeddings.parquet"):  # as if killed after epoch 2
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    hurt, fragments = DAMAGES[damage]
    hurt(out / "checkpoints")
    before = snapshot(out)
    result = run_refine(*args, "--epochs", "2", "--resume")
    assert_refused(result, *fragments)
    assert snapshot(out) == before


def test_a_checkpoint_of_another_run_is_refused(tmp_path, data):
    """Same rows and options, other data (16 dimensions): refused before the checkpoint is
    read, naming both files (the run folder knows its data's fingerprint)."""
    out = tmp_path / "run"
    assert run_refine("--train", data, "--out", out, "--epochs", "2").exit_code == 0
    rng = np.random.default_rng(1)
    other = tmp_path / "other.npz"
    np.savez(other, x=rng.normal(size=(ROWS, 16)).astype(np.float32), y=np.arange(ROWS) % 3)
    result = run_refine("--train", other, "--out", out, "--epochs", "2", "--resume")
    assert_refused(result, "other.npz", "not the data this run was started with", "train.npz")
