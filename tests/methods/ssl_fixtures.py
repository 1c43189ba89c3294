"""Tiny data and a bare training loop for the self-supervised method tests."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from contrastkit.config.defaults import method_options, plan_training
from contrastkit.config.refine_config import make_config
from contrastkit.methods.base import Batch, BuildContext
from contrastkit.methods.registry import METHODS
from contrastkit.models.adapter import ResidualAdapter
from contrastkit.models.backbones import ImageBackbone
from contrastkit.views.images import ImageViews


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits: (1797, 64) float32 vectors in [0, 16] and their labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


def digit_images(n: int) -> np.ndarray:
    """The first n digits as uint8 images (n, 8, 8)."""
    X, _ = digits()
    return (X[:n].reshape(-1, 8, 8) * 16).clip(0, 255).astype(np.uint8)


def resolved_options(method: str, kind: str, mode: str, rows: int, options: dict | None) -> dict:
    """The method's options as a fit resolves them: the given ones over the plan's defaults."""
    config = make_config(method=method, **(options or {}))
    plan = plan_training(config, kind, mode, rows, None)
    return METHODS[method].check_options(method_options(config, plan))


def build(method: str, kind: str, options: dict | None = None, rows: int = 512):
    """(module, fetch(indices) -> Batch) for `method` on digits vectors (adapter) or images."""
    X, _ = digits()
    if kind == "vectors":
        encoder, dim, augment, head_dim, mode = ResidualAdapter(64), 64, None, None, "adapter"
        data = torch.from_numpy(X[:rows])
    else:
        images = digit_images(rows)
        backbone = ImageBackbone.for_training(images, "cnn", torch.device("cpu"))
        encoder, dim, head_dim, mode = backbone.encoder, backbone.dim, 32, "finetune"
        augment = ImageViews(8, 8, 1, "self_supervised")
        data = torch.from_numpy(images).unsqueeze(1).float() / 255.0
    spec = METHODS[method]
    ctx = BuildContext(
        encoder=encoder,
        dim=dim,
        num_classes=None,
        options=resolved_options(method, kind, mode, rows, options),
        head_dim=head_dim,
        gather=False,
        augment=augment,
        kind=kind,
        mode=mode,
    )
    module = spec.build(ctx)
    return module, lambda idx: Batch(data[idx])


def train_losses(
    method: str,
    kind: str,
    steps: int,
    *,
    batch_size: int = 64,
    options: dict | None = None,
    lr: float = 3e-3,
    seed: int = 0,
    rows: int = 512,
) -> list[float]:
    """Losses of `steps` AdamW steps on random batches, calling on_step_end like the trainer."""
    torch.manual_seed(seed)
    module, fetch = build(method, kind, options, rows)
    module.train()
    params = [p for p in module.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    for step in range(1, steps + 1):
        optimiser.zero_grad()
        loss = module(fetch(rng.choice(rows, batch_size, replace=False)))
        loss.backward()
        optimiser.step()
        if hasattr(module, "on_step_end"):
            module.on_step_end(step, steps)
        losses.append(float(loss.detach()))
    return losses


def falls(losses: list[float], k: int = 3) -> bool:
    """Mean of the last k losses below the mean of the first k."""
    return float(np.mean(losses[-k:])) < float(np.mean(losses[:k]))
