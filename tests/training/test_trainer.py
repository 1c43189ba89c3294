"""The training loop: convergence, schedule, clipping, non-finite steps, early stopping."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from contrastkit.errors import UserError
from contrastkit.methods.base import Batch
from contrastkit.training.checkpoint import load_latest
from contrastkit.training.trainer import TrainingDiverged, TrainSettings


def _spy_on_steps(trainer) -> list[dict]:
    """Record, at every optimiser step, each group's lr and the global gradient norm."""
    records: list[dict] = []

    def before_step(optimizer, args, kwargs) -> None:
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.norm(torch.stack([g.norm() for g in grads]))
        records.append({"lrs": [g["lr"] for g in optimizer.param_groups], "grad_norm": float(norm)})

    trainer.optimizer.register_step_pre_hook(before_step)
    return records


def test_loss_falls_and_the_solution_is_found(regression):
    trainer, module = regression()
    state = trainer.fit()
    losses = [row["loss"] for row in state.history]
    assert len(losses) == 30 and state.epoch == 30 and state.step == 30 * 4
    assert losses[-1] < 0.01 * losses[0]
    torch.testing.assert_close(
        module.linear.weight.detach().squeeze(0),
        torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0]),
        atol=0.05,
        rtol=0,
    )
    assert abs(module.linear.bias.item() - 0.5) < 0.05
    assert not module.training  # handed back in eval mode


def test_learning_rate_follows_warmup_then_cosine(regression):
    # 5 epochs x 4 batches = 20 steps, warm-up 25 % = 5 steps; two groups at lr 1.0 and 0.1.
    module = nn.Linear(5, 1)
    trainer, _ = regression(
        TrainSettings(epochs=5, lr=1.0, warmup=0.25, max_grad_norm=None, quiet=True),
        module=_as_method(module),
        param_groups=[
            {"params": [module.weight], "lr": 1.0},
            {"params": [module.bias], "lr": 0.1},
        ],
    )
    records = _spy_on_steps(trainer)
    trainer.fit()
    lrs = [r["lrs"][0] for r in records]
    # warm-up: (s + 1) / 5 at steps 0..4; cosine afterwards, 0.5 * (1 + cos(pi * (s - 5) / 15))
    expected = {0: 0.2, 1: 0.4, 4: 1.0, 5: 1.0, 10: 0.75, 15: 0.25}
    for step, value in expected.items():
        assert lrs[step] == pytest.approx(value, abs=1e-9), step
    assert lrs[19] == pytest.approx(0.5 * (1 + math.cos(math.pi * 14 / 15)))
    assert all(b > a for a, b in zip(lrs[:5], lrs[1:5], strict=False))  # rising warm-up
    assert all(b < a for a, b in zip(lrs[5:], lrs[6:], strict=False))  # decaying after it
    # the head group keeps its own base rate under the same schedule
    assert [r["lrs"][1] for r in records] == pytest.approx([0.1 * v for v in lrs])


class _as_method(nn.Module):
    """Wrap a linear layer into a method: forward(batch) -> mean squared error."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, batch: Batch) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.linear(batch.inputs).squeeze(1), batch.labels)


class _SteepLoss(nn.Module):
    """Loss 1000 * sum(w): every gradient entry is 1000, the norm is 1000 * sqrt(10)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(10))

    def forward(self, batch: Batch) -> torch.Tensor:
        return 1000.0 * self.w.sum() + 0.0 * batch.inputs.sum()


@pytest.mark.parametrize("max_norm", [1.0, 0.25])
def test_gradients_are_clipped_to_max_grad_norm(regression, max_norm):
    trainer, _ = regression(
        TrainSettings(epochs=1, lr=0.1, max_grad_norm=max_norm, quiet=True), module=_SteepLoss()
    )
    records = _spy_on_steps(trainer)
    trainer.fit()
    assert len(records) == 4
    assert all(r["grad_norm"] == pytest.approx(max_norm, rel=1e-5) for r in records)


def test_no_clipping_when_max_grad_norm_is_none(regression):
    trainer, _ = regression(
        TrainSettings(epochs=1, lr=0.1, max_grad_norm=None, quiet=True), module=_SteepLoss()
    )
    records = _spy_on_steps(trainer)
    trainer.fit()
    assert records[0]["grad_norm"] == pytest.approx(1000 * math.sqrt(10), rel=1e-5)


class _Sabotaged(nn.Module):
    """A regression whose loss (or gradient) is not finite on chosen calls."""

    def __init__(self, bad_calls, kind: str = "loss") -> None:
        super().__init__()
        self.linear = nn.Linear(5, 1)
        self.bad_calls, self.kind, self.calls = bad_calls, kind, 0

    def forward(self, batch: Batch) -> torch.Tensor:
        self.calls += 1
        loss = torch.nn.functional.mse_loss(self.linear(batch.inputs).squeeze(1), batch.labels)
        if self.bad_calls == "all" or self.calls in self.bad_calls:
            if self.kind == "loss":
                return loss * float("nan")
            # finite loss, infinite gradient: d/dz sqrt(z) at z = 0
            return loss + torch.sqrt(self.linear.weight.sum() * 0.0)
        return loss


def _adam_steps(trainer) -> int:
    state = trainer.optimizer.state[trainer.optimizer.param_groups[0]["params"][0]]
    return int(state["step"])


@pytest.mark.parametrize("kind", ["loss", "gradient"])
def test_a_non_finite_step_is_skipped_and_counted(regression, kind):
    module = _Sabotaged({2, 7}, kind)
    trainer, _ = regression(TrainSettings(epochs=3, lr=0.05, quiet=True), module=module)
    with pytest.warns(UserWarning, match="skipped"):
        state = trainer.fit()
    assert state.skipped_steps == 2
    assert state.step == 12  # the schedule still advanced over the skipped steps
    assert _adam_steps(trainer) == 10  # but the optimiser stepped only on the good ones
    assert [row["skipped_steps"] for row in state.history] == [1, 2, 2]
    assert all(torch.isfinite(p).all() for p in module.parameters())
    assert all(math.isfinite(row["loss"]) for row in state.history)


def test_too_many_bad_steps_in_a_row_raise_and_keep_the_last_checkpoint(regression, tmp_path):
    module = _Sabotaged(set(range(9, 100)))  # epoch 1 (steps 1-4) and 2 (5-8) are fine
    trainer, _ = regression(
        TrainSettings(epochs=5, lr=0.05, max_bad_steps=3, quiet=True),
        module=module,
        checkpoint_dir=tmp_path / "ckpt",
    )
    with pytest.raises(TrainingDiverged, match=r"3 steps in a row") as info:
        trainer.fit()
    assert isinstance(info.value, UserError)
    assert str(tmp_path / "ckpt") in str(info.value)
    assert module.calls == 11  # raised at the third bad step, not later
    tensors, state = load_latest(tmp_path / "ckpt")
    assert state["trainer"]["epoch"] == 2
    # the bad steps changed nothing, so the checkpoint holds the current weights
    for name, value in module.state_dict().items():
        torch.testing.assert_close(tensors["model." + name], value, rtol=0, atol=0)


def test_a_short_run_of_bad_steps_below_the_limit_recovers(regression):
    module = _Sabotaged({3, 4})
    trainer, _ = regression(
        TrainSettings(epochs=2, lr=0.05, max_bad_steps=3, quiet=True), module=module
    )
    with pytest.warns(UserWarning, match="skipped"):
        assert trainer.fit().skipped_steps == 2


def test_every_step_bad_raises_without_a_checkpoint_hint(regression):
    trainer, _ = regression(
        TrainSettings(epochs=2, lr=0.05, max_bad_steps=2, quiet=True),
        module=_Sabotaged("all"),
    )
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit()
    assert "checkpoint" not in str(info.value)


def test_early_stopping_restores_the_best_epoch(supcon_problem):
    scores = [0.5, 0.7, 0.6, 0.65, 0.95, 0.99]
    snapshots = []
    holder = {}

    def validate() -> float:
        module = holder["module"]
        snapshots.append({k: v.clone() for k, v in module.state_dict().items()})
        return scores[len(snapshots) - 1]

    trainer, module = supcon_problem(6, validate=validate, patience=2)
    holder["module"] = module
    state = trainer.fit()
    assert state.stopped_early and state.epoch == 4  # epochs 3 and 4 did not beat epoch 2
    assert state.best_epoch == 2 and state.best_score == 0.7
    assert [row["val_score"] for row in state.history] == scores[:4]
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, snapshots[1][name], rtol=0, atol=0)
    assert any(not torch.equal(snapshots[1][k], snapshots[3][k]) for k in snapshots[1])


def test_history_rows_are_json_friendly(regression):
    trainer, _ = regression(TrainSettings(epochs=2, lr=0.05, quiet=True))
    history = trainer.fit().history
    assert set(history[0]) == {"epoch", "step", "loss", "lr", "skipped_steps"}
    json.dumps(history)
