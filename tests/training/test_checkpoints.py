"""Checkpoints: atomic writes, pruning, exact resume, refusal of damaged files."""

from __future__ import annotations

import json

import pytest
import torch

from contrastkit.errors import UserError
from contrastkit.training import checkpoint as checkpoint_module
from contrastkit.training.checkpoint import CheckpointError, load_latest, save_checkpoint


def _interrupt_at_fetch(trainer, call: int) -> None:
    """Make the trainer's `call`-th batch fetch raise KeyboardInterrupt (a killed run)."""
    real_fetch, calls = trainer.fetch, [0]

    def fetch(indices):
        calls[0] += 1
        if calls[0] == call:
            raise KeyboardInterrupt
        return real_fetch(indices)

    trainer.fetch = fetch


def _weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_checkpoints_are_written_every_epoch_and_pruned_to_two(supcon_problem, tmp_path):
    root = tmp_path / "ckpt"
    trainer, _ = supcon_problem(3, checkpoint_dir=root)
    trainer.fit()
    assert sorted(p.name for p in root.iterdir()) == [
        "epoch-0002",
        "epoch-0003",
        "history.jsonl",
        "latest.json",
    ]
    assert json.loads((root / "latest.json").read_text())["name"] == "epoch-0003"
    assert sorted(p.name for p in (root / "epoch-0003").iterdir()) == [
        "state.json",
        "tensors.safetensors",
    ]
    _, state = load_latest(root)
    assert state["trainer"]["epoch"] == 3 and state["trainer"]["step"] == 15


def test_a_crash_while_saving_leaves_the_previous_checkpoint(supcon_problem, tmp_path, monkeypatch):
    root = tmp_path / "ckpt"
    real_save = checkpoint_module.save_file

    def failing_save(tensors, path, *args, **kwargs):
        if "epoch-0003" in path:
            with open(path, "wb") as f:
                f.write(b"partial")  # half a file, then the disk fills up
            raise OSError(28, "No space left on device")
        return real_save(tensors, path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "save_file", failing_save)
    trainer, _ = supcon_problem(4, checkpoint_dir=root)
    with pytest.raises(OSError, match="No space"):
        trainer.fit()
    assert sorted(p.name for p in root.iterdir()) == [
        "epoch-0001",
        "epoch-0002",
        "history.jsonl",
        "latest.json",
    ]
    tensors, state = load_latest(root)
    assert state["trainer"]["epoch"] == 2


def test_stale_temporary_folders_are_cleaned_up(tmp_path):
    root = tmp_path / "ckpt"
    (root / ".epoch-0007.abc.tmp").mkdir(parents=True)
    save_checkpoint(root, "epoch-0001", {"w": torch.ones(2)}, {"x": 1})
    assert sorted(p.name for p in root.iterdir()) == ["epoch-0001", "latest.json"]


def test_resumed_run_is_bitwise_identical_to_an_uninterrupted_one(supcon_problem, tmp_path):
    straight, module = supcon_problem(4)
    straight_state = straight.fit()
    expected = _weights(module)

    root = tmp_path / "ckpt"
    first, _ = supcon_problem(4, checkpoint_dir=root)
    _interrupt_at_fetch(first, 13)  # killed in the middle of epoch 3 (5 batches per epoch)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    assert json.loads((root / "latest.json").read_text())["name"] == "epoch-0002"

    torch.manual_seed(12345)  # the resumed process starts from another RNG state
    resumed, module = supcon_problem(4, checkpoint_dir=root)
    state = resumed.fit(resume=True)
    _assert_bitwise_equal(_weights(module), expected)
    assert state.history == straight_state.history
    assert state.step == 20


def test_resume_keeps_the_best_epoch_of_before_the_interruption(supcon_problem, tmp_path):
    """The best weights (epoch 1) live only in the checkpoint when the run is resumed."""
    scores = {0: 0.9, 1: 0.5, 2: 0.6, 3: 0.7}
    holder = {}

    def validate() -> float:
        return scores[holder["trainer"].state.epoch]

    def make(root=None):
        trainer, module = supcon_problem(4, checkpoint_dir=root, validate=validate, patience=5)
        holder["trainer"] = trainer
        return trainer, module

    straight, module = make()
    straight.fit()
    expected = _weights(module)

    first, _ = make(tmp_path / "ckpt")
    _interrupt_at_fetch(first, 16)  # first batch of epoch 4
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    resumed, module = make(tmp_path / "ckpt")
    state = resumed.fit(resume=True)
    assert state.best_epoch == 1
    _assert_bitwise_equal(_weights(module), expected)


def test_resume_without_a_checkpoint_starts_fresh(supcon_problem, tmp_path):
    trainer, _ = supcon_problem(1, checkpoint_dir=tmp_path / "empty")
    assert trainer.fit(resume=True).epoch == 1


def _flip_a_byte(path, offset: int = -10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: _flip_a_byte(d / "epoch-0002" / "tensors.safetensors"), id="flip"),
        pytest.param(
            lambda d: (d / "epoch-0002" / "tensors.safetensors").write_bytes(
                (d / "epoch-0002" / "tensors.safetensors").read_bytes()[:100]
            ),
            id="truncated-tensors",
        ),
        pytest.param(
            lambda d: (d / "epoch-0002" / "state.json").write_text(
                (d / "epoch-0002" / "state.json").read_text()[:50]
            ),
            id="truncated-state",
        ),
        pytest.param(
            lambda d: (d / "epoch-0002" / "state.json").write_text(
                (d / "epoch-0002" / "state.json").read_text().replace('"step": 10', '"step": 9')
            ),
            id="edited-state",
        ),
        pytest.param(lambda d: (d / "epoch-0002" / "tensors.safetensors").unlink(), id="missing"),
        pytest.param(lambda d: (d / "latest.json").write_text("{garbage"), id="latest"),
    ],
)
def test_a_damaged_checkpoint_is_refused(supcon_problem, tmp_path, damage):
    root = tmp_path / "ckpt"
    trainer, _ = supcon_problem(2, checkpoint_dir=root)
    trainer.fit()
    damage(root)
    with pytest.raises(CheckpointError) as info:
        load_latest(root)
    assert isinstance(info.value, UserError)
    resumed, _ = supcon_problem(4, checkpoint_dir=root)
    with pytest.raises(CheckpointError):
        resumed.fit(resume=True)


def test_checkpoint_files_are_safetensors_and_json_only(supcon_problem, tmp_path):
    root = tmp_path / "ckpt"
    supcon_problem(2, checkpoint_dir=root)[0].fit()
    names = {p.name for p in root.rglob("*") if p.is_file()}
    assert names == {"history.jsonl", "latest.json", "state.json", "tensors.safetensors"}
    json.loads((root / "epoch-0002" / "state.json").read_text())  # plain JSON, no pickle


def test_checkpoint_state_does_not_grow_with_the_history(supcon_problem, tmp_path):
    """The history lives in history.jsonl (one line an epoch), not in every state.json."""
    root = tmp_path / "ckpt"
    supcon_problem(12, checkpoint_dir=root)[0].fit()
    sizes = [(root / f"epoch-{e:04d}" / "state.json").stat().st_size for e in (11, 12)]
    assert abs(sizes[1] - sizes[0]) < 64  # counters only, not 12 epochs of rows
    lines = (root / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 13))


def test_history_rows_after_the_latest_checkpoint_are_dropped_on_resume(supcon_problem, tmp_path):
    """A run killed after writing epoch 5's history row but before its checkpoint (and one
    killed in the middle of the row) resumes with the history of epochs 1-4 and ends with
    the same history as an uninterrupted run."""
    root = tmp_path / "ckpt"
    straight = supcon_problem(6)[0].fit().history
    first, _ = supcon_problem(6, checkpoint_dir=root)
    _interrupt_at_fetch(first, 21)  # killed early in epoch 5 (5 batches per epoch)
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    with open(root / "history.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 5, "loss": 123.0}) + "\n" + '{"epoch": 6, "lo')
    resumed = supcon_problem(6, checkpoint_dir=root)[0].fit(resume=True).history
    assert resumed == straight
