"""The training loop: AdamW, warm-up + cosine, clipping, non-finite steps skipped, checkpoints
every epoch, exact resume, early stopping on a validation score, progress bar."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from contrastkit.errors import UserError
from contrastkit.losses import NonFiniteInputError
from contrastkit.training.checkpoint import (
    CheckpointError,
    append_history,
    clear_history,
    load_latest,
    read_history,
    save_checkpoint,
)
from contrastkit.training.progress import TrainingProgress
from contrastkit.training.schedule import warmup_cosine
from contrastkit.training.state import (
    load_model_tensors,
    model_tensors,
    optimizer_from_flat,
    optimizer_to_flat,
    rng_from_flat,
    rng_to_flat,
)


class TrainingDiverged(UserError):
    """Too many non-finite losses or gradients in a row."""


class BatchSampler(Protocol):
    def __iter__(self) -> Iterable[list[int]]: ...
    def __len__(self) -> int: ...
    def set_epoch(self, epoch: int) -> None: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@dataclass
class TrainSettings:
    epochs: int
    lr: float
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_grad_norm: float | None = 1.0
    max_bad_steps: int = 20
    patience: int = 3
    quiet: bool = False


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    step: int = 0
    skipped_steps: int = 0
    bad_in_a_row: int = 0
    best_score: float | None = None
    best_epoch: int | None = None
    epochs_without_gain: int = 0
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)


def _can_fuse(params: list) -> bool:
    """AdamW's fused kernel takes float tensors on CPU or CUDA. On a CPU it is the difference
    that matters: one adapter step's update takes 0.8 ms fused against 7.5 ms tensor by tensor."""
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    return bool(tensors) and all(
        t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors
    )


class Trainer:
    """Trains `method` (an nn.Module whose forward(batch) returns the loss).

    `fetch(indices)` turns the sampler's row indices into the batch the method takes.
    `validate()` (optional) returns a score, higher is better, after each epoch; the weights
    of the best epoch are restored at the end and training stops after `patience` epochs
    without gain. With `checkpoint_dir`, a checkpoint is written after every epoch and
    `resume=True` continues from the latest one exactly as if the run had never stopped.
    Under torch.distributed every rank gets `checkpoint_dir` (every rank resumes from it) and
    only one writes (`save_checkpoints=True` on rank 0 only).
    """

    def __init__(
        self,
        method: nn.Module,
        sampler: BatchSampler,
        fetch: Callable[[list[int]], Any],
        settings: TrainSettings,
        *,
        validate: Callable[[], float] | None = None,
        checkpoint_dir: str | Path | None = None,
        train_module: nn.Module | None = None,
        param_groups: list[dict] | None = None,
        save_checkpoints: bool = True,
    ) -> None:
        self.method = method
        self.save_checkpoints = save_checkpoints
        self.train_module = train_module or method  # e.g. a DDP wrapper around `method`
        self.sampler = sampler
        self.fetch = fetch
        self.settings = settings
        self.validate = validate
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        params = param_groups or [p for p in method.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            params, lr=settings.lr, weight_decay=settings.weight_decay, fused=_can_fuse(params)
        )
        self.total_steps = settings.epochs * len(sampler)
        self.scheduler = warmup_cosine(self.optimizer, self.total_steps, settings.warmup)
        self.state = TrainState()
        self._best_weights: dict[str, torch.Tensor] | None = None
        self._checkpoint_epoch: int | None = None  # epoch of the last checkpoint written or read

    # -- the loop ---------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainState:
        if resume:
            self._resume()
        if self._checkpoint_epoch is None and self.checkpoint_dir and self.save_checkpoints:
            clear_history(self.checkpoint_dir)  # a fresh start: no rows of an earlier run
        s = self.settings
        with TrainingProgress(self.total_steps, quiet=s.quiet) as progress:
            progress.advance_to(self.state.step)
            while self.state.epoch < s.epochs and not self.state.stopped_early:
                epoch = self.state.epoch + 1
                losses = self._train_epoch(epoch, progress)
                self._end_epoch(epoch, losses, progress)
        if self._best_weights is not None:
            self.method.load_state_dict(self._best_weights)
        self.method.eval()
        self._check_trained()
        return self.state

    def _check_trained(self) -> None:
        """Never hand back a model that did not train or whose weights are not finite."""
        st = self.state
        if st.step and st.skipped_steps >= st.step:
            raise self._diverged(
                f"all {st.step} training steps had a non-finite loss or gradient, so nothing was "
                "learned",
                name_checkpoint=False,
            )
        bad = [
            name
            for name, value in self.method.state_dict().items()
            if value.is_floating_point() and not bool(torch.isfinite(value).all())
        ]
        if bad:
            raise self._diverged(
                f"the trained weights hold NaN or inf ({', '.join(bad[:3])})", name_checkpoint=False
            )
        if st.skipped_steps:
            warnings.warn(
                f"{st.skipped_steps} of {st.step} training steps were skipped because the loss or "
                "gradient was not finite; if that is more than a few, lower --lr or raise "
                "--temperature",
                stacklevel=3,
            )

    def _diverged(self, what: str, name_checkpoint: bool = True) -> TrainingDiverged:
        """The error that stops a diverged run: what happened, what is kept, what to change."""
        kept = ""
        if self.checkpoint_dir is not None and name_checkpoint:
            kept = (
                f"; the last good checkpoint (epoch {self._checkpoint_epoch}) is kept in "
                f"{self.checkpoint_dir}"
                if self._checkpoint_epoch is not None
                else "; no checkpoint was written"
            )
        return TrainingDiverged(
            f"training diverged: {what}{kept}; start again (--overwrite) with a lower --lr (this "
            f"run used {self.settings.lr:g}) or a higher --temperature, and check the input for "
            "extreme values"
        )

    def _train_epoch(self, epoch: int, progress: TrainingProgress) -> list[float]:
        self.method.train()
        self.sampler.set_epoch(epoch)
        losses = []
        for indices in self.sampler:
            batch = self.fetch(indices)
            loss = self._step(batch)
            self.state.step += 1
            if loss is not None:
                losses.append(loss)
                progress.update(self.state.step, loss, len(indices), epoch)
            else:
                progress.advance_to(self.state.step)
        return losses

    def _step(self, batch) -> float | None:
        """One optimiser step; None when the loss or gradient was not finite (step skipped)."""
        self.optimizer.zero_grad(set_to_none=True)
        try:
            loss = self.train_module(batch)
        except NonFiniteInputError:  # the model's output overflowed before the loss
            loss = None
        ok = self._every_rank_agrees(loss is not None and bool(torch.isfinite(loss.detach())))
        if ok:
            loss.backward()
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, self.settings.max_grad_norm or math.inf)
            ok = bool(torch.isfinite(norm))
        if ok:
            self.optimizer.step()
            if hasattr(self.method, "on_step_end"):
                self.method.on_step_end(self.state.step + 1, self.total_steps)
            self.state.bad_in_a_row = 0
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.state.skipped_steps += 1
            self.state.bad_in_a_row += 1
            if self.state.bad_in_a_row >= self.settings.max_bad_steps:
                raise self._diverged(
                    f"{self.state.bad_in_a_row} steps in a row had a non-finite loss or gradient "
                    f"(up to step {self.state.step + 1})"
                )
        with warnings.catch_warnings():
            # A skipped first step makes torch warn that the schedule ran before the optimiser.
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
            self.scheduler.step()
        return float(loss.detach()) if ok else None

    def _every_rank_agrees(self, ok: bool) -> bool:
        """Under DDP, a step is taken only when the loss is finite on every rank: a rank that
        skipped backward while the others ran it would pair their gradient all-reduces with its
        next step's (wrong gradients, then a rank left waiting for ever)."""
        if self.train_module is self.method or not torch.distributed.is_initialized():
            return ok
        device = next(self.method.parameters()).device
        flag = torch.tensor([1.0 if ok else 0.0], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item() > 0)

    def _end_epoch(self, epoch: int, losses: list[float], progress: TrainingProgress) -> None:
        st = self.state
        row: dict[str, Any] = {
            "epoch": epoch,
            "step": st.step,
            "loss": sum(losses) / len(losses) if losses else float("nan"),
            "lr": self.optimizer.param_groups[0]["lr"],
            "skipped_steps": st.skipped_steps,
        }
        if self.validate is not None:
            score = float(self.validate())
            self.method.train()
            if not math.isfinite(score):
                raise self._diverged(f"after epoch {epoch} the model's embeddings are not finite")
            row["val_score"] = score
            if st.best_score is None or score > st.best_score:
                st.best_score, st.best_epoch, st.epochs_without_gain = score, epoch, 0
                self._best_weights = copy.deepcopy(self.method.state_dict())
            else:
                st.epochs_without_gain += 1
                if st.epochs_without_gain >= self.settings.patience:
                    st.stopped_early = True
        st.epoch = epoch
        st.history.append(row)
        every = max(1, self.settings.epochs // 10)
        if epoch % every == 0 or epoch == self.settings.epochs or st.stopped_early:
            val = f", validation {row['val_score']:.4f}" if "val_score" in row else ""
            stop = (
                f" (no gain for {self.settings.patience} epochs: stopping)"
                if st.stopped_early
                else ""
            )
            progress.log(f"epoch {epoch}: loss {row['loss']:.4f}{val}{stop}")
        if self.checkpoint_dir is not None and self.save_checkpoints:
            self._save(epoch)

    # -- checkpoints --------------------------------------------------------------------------
    def _save(self, epoch: int) -> None:
        tensors = model_tensors(self.method)
        opt_tensors, opt_meta = optimizer_to_flat(self.optimizer)
        rng_tensors, rng_meta = rng_to_flat()
        tensors.update(opt_tensors)
        tensors.update(rng_tensors)
        if self._best_weights is not None and self.state.best_epoch != epoch:
            tensors.update({"best." + k: v for k, v in self._best_weights.items()})
        append_history(self.checkpoint_dir, self.state.history[-1])
        trainer_state = {k: v for k, v in asdict(self.state).items() if k != "history"}
        state = {
            "trainer": trainer_state,
            "optimizer": opt_meta,
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng_meta,
        }
        save_checkpoint(self.checkpoint_dir, f"epoch-{epoch:04d}", tensors, state)
        self._checkpoint_epoch = epoch

    def _resume(self) -> None:
        if self.checkpoint_dir is None:
            return
        loaded = load_latest(self.checkpoint_dir)
        if loaded is None:
            return
        tensors, state = loaded
        try:
            load_model_tensors(self.method, tensors)
            optimizer_from_flat(self.optimizer, tensors, state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.sampler.load_state_dict(state["sampler"])
            rng_from_flat(tensors, state["rng"])
            trainer_state = state["trainer"]
            history = trainer_state.pop("history", None)  # checkpoints of earlier versions
            if history is None:
                history = read_history(
                    self.checkpoint_dir, trainer_state["epoch"], rewrite=self.save_checkpoints
                )
            self.state = TrainState(**trainer_state, history=history)
        except UserError:
            raise
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            # A checksummed checkpoint that does not fit: other data, options or version.
            detail = " ".join(str(exc).split())[:200]
            raise CheckpointError(
                f"the checkpoint in {self.checkpoint_dir} does not fit this run ({detail}); resume "
                "with the same data and options, or start again with --overwrite"
            ) from None
        self._checkpoint_epoch = self.state.epoch
        if self.state.best_epoch is not None:
            if self.state.best_epoch == self.state.epoch:
                self._best_weights = copy.deepcopy(self.method.state_dict())
            else:
                self._best_weights = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
