"""Small training problems for the trainer tests: real components, tiny sizes, CPU only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.data.samplers import ClassBalancedBatchSampler, RandomBatchSampler
from contrastkit.methods.base import Batch
from contrastkit.methods.supervised import SupervisedContrastive
from contrastkit.models.adapter import ResidualAdapter
from contrastkit.models.heads import ProjectionHead
from contrastkit.training.trainer import Trainer, TrainSettings


class LinearRegression(nn.Module):
    """forward(batch) -> mean squared error of a linear model: an easy, convex problem."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 1)

    def forward(self, batch: Batch) -> torch.Tensor:
        return F.mse_loss(self.linear(batch.inputs).squeeze(1), batch.labels)


@pytest.fixture
def regression():
    """make(settings, **trainer_kwargs) -> (trainer, module): y = X w + 0.5, 64 rows, batch 16."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(64, 5, generator=gen)
    w = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0])
    y = X @ w + 0.5

    def make(settings: TrainSettings | None = None, module: nn.Module | None = None, **kwargs):
        torch.manual_seed(0)
        module = module or LinearRegression(5)
        sampler = RandomBatchSampler(64, 16, seed=0)
        trainer = Trainer(
            module,
            sampler,
            lambda idx: Batch(X[idx], y[idx]),
            settings or TrainSettings(epochs=30, lr=0.2, warmup=0.0, quiet=True),
            **kwargs,
        )
        return trainer, module

    return make


@pytest.fixture
def supcon_problem():
    """make(epochs, checkpoint_dir=None) -> (trainer, module): a residual adapter with dropout
    and a projection head trained with supcon on 4 Gaussian classes, class-balanced batches.
    Dropout and the sampler make the run depend on every RNG the trainer must checkpoint."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 20)
    centres = rng.normal(size=(4, 12))
    X = torch.from_numpy((centres[labels] + 0.8 * rng.normal(size=(80, 12))).astype(np.float32))
    y = torch.from_numpy(labels)

    def make(epochs: int, checkpoint_dir=None, validate=None, patience: int = 3):
        torch.manual_seed(0)
        encoder = ResidualAdapter(12, 24, dropout=0.2, input_dropout=0.2)
        module = SupervisedContrastive(encoder, ProjectionHead(12, 8), "supcon", {})
        sampler = ClassBalancedBatchSampler(labels, 16, 4, seed=3)
        trainer = Trainer(
            module,
            sampler,
            lambda idx: Batch(X[idx], y[idx]),
            TrainSettings(epochs=epochs, lr=0.01, warmup=0.2, quiet=True, patience=patience),
            checkpoint_dir=checkpoint_dir,
            validate=validate,
        )
        return trainer, module

    return make
