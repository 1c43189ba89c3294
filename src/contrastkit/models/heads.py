"""Projection heads: used for the loss during training, dropped afterwards."""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor


class ProjectionHead(nn.Module):
    """MLP `in_dim -> hidden -> out_dim` (SimCLR/SupCon style: Linear, ReLU, Linear)."""

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or in_dim
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
