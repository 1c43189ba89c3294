"""Training the two towers with contrastkit's Trainer: one batch is a set of training
interactions (user, item); the loss is the in-batch sampled softmax of `loss.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from contrastkit.apps.recommend.loss import sampled_softmax
from contrastkit.apps.recommend.metrics import top_items
from contrastkit.apps.recommend.pooling import accidental_hits, pool_without_target
from contrastkit.apps.recommend.scoring import TowerScorer, feature_sums
from contrastkit.apps.recommend.towers import TwoTower
from contrastkit.data.samplers import RandomBatchSampler
from contrastkit.errors import DataError
from contrastkit.training.trainer import Trainer, TrainSettings, TrainState

MINED_POOL = 50  # hard negatives are drawn from each user's 50 best-scored unseen items


@dataclass
class TrainOptions:
    temperature: float = 0.05
    logq: bool = True
    mask_hits: bool = True
    hard_negatives: int = 0
    id_dropout: float = 0.0
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.01
    patience: int = 3
    seed: int = 0
    quiet: bool = True


class Objective(nn.Module):
    """What the Trainer trains: forward(batch) is the loss of one batch."""

    def __init__(self, model: TwoTower, options: TrainOptions) -> None:
        super().__init__()
        self.model, self.options = model, options

    def forward(self, batch: dict) -> Tensor:
        users = self.model.user_vectors(batch["pooled"])
        items = self.model.item_vectors(batch["items"], self.options.id_dropout)
        hard = None
        if "hard" in batch:
            b, k = batch["hard"].shape
            hard = self.model.item_vectors(batch["hard"].reshape(-1)).reshape(b, k, -1)
        return sampled_softmax(
            users,
            items,
            temperature=self.options.temperature,
            log_q=batch.get("log_q"),
            hits=batch.get("hits"),
            hard_negatives=hard,
        )


class Batches:
    """Turns the sampler's indices (into `positions`, the usable training interactions) into
    the Objective's batch; mines hard negatives once per epoch when asked to."""

    def __init__(
        self,
        model: TwoTower,
        history: sp.csr_matrix,
        positions: np.ndarray,
        options: TrainOptions,
        sampler: RandomBatchSampler,
    ) -> None:
        self.model, self.history, self.options, self.sampler = model, history, options, sampler
        self.positions = positions
        self.row_of = np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))
        self.sums = feature_sums(history, model)
        counts = np.bincount(history.indices, minlength=history.shape[1]).astype(np.float64)
        self.log_q = torch.from_numpy(np.log(np.maximum(counts, 1.0) / counts.sum())).float()
        self.rng = np.random.default_rng([options.seed, 7])
        self.mined_epoch: int | None = None
        self.mined: np.ndarray | None = None

    def __call__(self, indices: list[int]) -> dict:
        targets = self.positions[np.asarray(indices, dtype=np.int64)]
        users = self.row_of[targets] if self.model.shape.user_ids else None
        pooled, items, lengths = pool_without_target(
            self.history, self.row_of, targets, self.sums, self.model.features, users
        )
        target_items = self.history.indices[targets].astype(np.int64)
        batch: dict = {"pooled": pooled, "items": torch.from_numpy(target_items)}
        if self.options.logq:
            batch["log_q"] = self.log_q[batch["items"]]
        if self.options.mask_hits:
            batch["hits"] = accidental_hits(items, lengths, target_items)
        if self.options.hard_negatives > 0:
            batch["hard"] = self._hard(self.row_of[targets])
        return batch

    def _hard(self, rows: np.ndarray) -> Tensor:
        if self.mined_epoch != self.sampler.epoch:
            scores = TowerScorer(self.model, self.history)
            pool = []
            for s in range(0, self.history.shape[0], 1024):
                part = np.arange(s, min(s + 1024, self.history.shape[0]))
                block = scores(part)
                seen = self.history[part].tocoo()
                block[seen.row, seen.col] = -np.inf
                pool.append(top_items(block, MINED_POOL))
            self.mined, self.mined_epoch = np.concatenate(pool), self.sampler.epoch
        pick = self.rng.integers(0, self.mined.shape[1], (len(rows), self.options.hard_negatives))
        return torch.from_numpy(np.take_along_axis(self.mined[rows], pick, axis=1).astype(np.int64))


def usable_positions(history: sp.csr_matrix, model: TwoTower) -> np.ndarray:
    """Training interactions the model can learn from: without a user id embedding, a user
    needs another item in the history for the tower to have something to pool."""
    lengths = np.diff(history.indptr)
    if model.shape.user_ids:
        return np.arange(history.nnz, dtype=np.int64)
    usable = np.repeat(lengths >= 2, lengths)
    if not usable.any():
        raise DataError(
            "no user has two or more training interactions, so there is no history to learn "
            "from; give more interactions per user"
        )
    return np.flatnonzero(usable)


def train_towers(
    model: TwoTower,
    history: sp.csr_matrix,
    options: TrainOptions,
    validate: Callable[[], float] | None = None,
) -> TrainState:
    """Train `model` on the interactions of `history` (users x items CSR, indices sorted);
    with `validate`, keep the epoch it scores best and stop after `patience` without gain."""
    model.mark_trained(torch.from_numpy(np.unique(history.indices).astype(np.int64)))
    positions = usable_positions(history, model)
    sampler = RandomBatchSampler(len(positions), options.batch_size, seed=options.seed)
    settings = TrainSettings(
        epochs=options.epochs,
        lr=options.lr,
        weight_decay=options.weight_decay,
        patience=options.patience,
        quiet=options.quiet,
    )
    batches = Batches(model, history, positions, options, sampler)
    trainer = Trainer(Objective(model, options), sampler, batches, settings, validate=validate)
    return trainer.fit()
