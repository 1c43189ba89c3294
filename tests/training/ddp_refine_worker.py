"""One rank of the distributed Refiner test, started by `torchrun --nproc_per_node 2` (gloo, CPU).

Usage: ddp_refine_worker.py OUT_DIR. Writes OUT_DIR/rank{R}.npz and OUT_DIR/rank{R}.json with
what test_refiner_ddp.py compares across ranks:

1. a straight 4-epoch supcon fit of an adapter on digit vectors, with validation data and
   checkpoints: the adapter weights, the batches this rank's sampler gave, the history;
2. the same fit killed after epoch 2 on every rank, then resumed: the adapter weights;
3. a bare Trainer under DDP whose loss is NaN on rank 1 only, once: the steps it skipped.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist


def main(out: Path) -> None:
    torch.set_num_threads(1)
    # A short timeout: a rank left waiting in a collective fails the test instead of hanging it.
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=40))
    rank = dist.get_rank()

    from sklearn.datasets import load_digits

    from contrastkit import Refiner
    from contrastkit.data.samplers import ClassBalancedBatchSampler
    from contrastkit.training.trainer import Trainer

    batches: list[list[int]] = []
    real_iter = ClassBalancedBatchSampler.__iter__

    def recording_iter(self):
        for batch in real_iter(self):
            batches.append([int(i) for i in batch])
            yield batch

    ClassBalancedBatchSampler.__iter__ = recording_iter

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    X_train, y_train, X_val, y_val = X[:400], y[:400], X[400:600], y[400:600]

    def refiner() -> Refiner:
        return Refiner(method="supcon", epochs=4, batch_size=64, seed=0, quiet=True)

    straight = refiner().fit(
        X_train, y_train, validation=(X_val, y_val), checkpoint_dir=out / "ckpt-straight"
    )
    straight_batches = list(batches)

    real_end_epoch = Trainer._end_epoch

    def end_epoch_then_die(self, epoch, losses, progress):
        real_end_epoch(self, epoch, losses, progress)
        if epoch == 2:
            raise KeyboardInterrupt

    Trainer._end_epoch = end_epoch_then_die
    try:
        refiner().fit(
            X_train, y_train, validation=(X_val, y_val), checkpoint_dir=out / "ckpt-killed"
        )
    except KeyboardInterrupt:
        pass
    Trainer._end_epoch = real_end_epoch
    resumed = refiner().fit(
        X_train,
        y_train,
        validation=(X_val, y_val),
        checkpoint_dir=out / "ckpt-killed",
        resume=True,
    )

    skipped = _nan_on_one_rank(rank)

    np.savez(
        out / f"rank{rank}.npz",
        **{"straight." + k: v.numpy() for k, v in _weights(straight).items()},
        **{"resumed." + k: v.numpy() for k, v in _weights(resumed).items()},
        transform=straight.transform(X_val),
    )
    summary = {
        "rank": rank,
        "world_size": straight.dist_.world_size,
        "batches": straight_batches,
        "history": straight.history_,
        "resumed_history": resumed.history_,
        "nan_run": skipped,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(summary))
    dist.barrier()
    dist.destroy_process_group()


def _weights(refiner) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in refiner.backbone_.encoder.state_dict().items()}


def _nan_on_one_rank(rank: int) -> dict:
    """A DDP-wrapped regression whose loss is NaN on rank 1 at its second step only."""
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel

    from contrastkit.data.samplers import RandomBatchSampler
    from contrastkit.methods.base import Batch
    from contrastkit.training.trainer import Trainer, TrainSettings

    class Regression(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 1)
            self.calls = 0

        def forward(self, batch: Batch) -> torch.Tensor:
            self.calls += 1
            loss = nn.functional.mse_loss(self.linear(batch.inputs).squeeze(1), batch.labels)
            return loss * float("nan") if (rank == 1 and self.calls == 2) else loss

    torch.manual_seed(0)
    X, w = torch.randn(64, 3), torch.tensor([1.0, -1.0, 2.0])
    module = Regression()
    trainer = Trainer(
        module,
        RandomBatchSampler(64, 8, seed=0, rank=rank, world_size=2),
        lambda idx: Batch(X[idx], X[idx] @ w),
        TrainSettings(epochs=2, lr=0.05, quiet=True),
        train_module=DistributedDataParallel(module),
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = trainer.fit()
    return {
        "skipped_steps": state.skipped_steps,
        "steps": state.step,
        "weight": module.linear.weight.detach().flatten().tolist(),
    }


if __name__ == "__main__":
    main(Path(sys.argv[1]))
