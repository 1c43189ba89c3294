"""The trained towers as matrices: unit item vectors, unit user vectors from histories, and
the scores of users against the whole catalogue."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from contrastkit.apps.recommend.pooling import pool_rows
from contrastkit.apps.recommend.towers import TwoTower

CHUNK = 4096


def feature_sums(history: sp.csr_matrix, model: TwoTower) -> torch.Tensor:
    """Sum of the item features of each history row: (rows, feature_dim) float32."""
    features = model.features.cpu().numpy()
    if features.shape[1] == 0:
        return torch.zeros(history.shape[0], 0)
    return torch.from_numpy(np.asarray(history @ features, dtype=np.float32))


def _unit(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=1).cpu().numpy()


@torch.no_grad()
def item_matrix(model: TwoTower, items: np.ndarray | None = None) -> np.ndarray:
    """Unit vectors of the items (all of the catalogue when `items` is None)."""
    was_training = model.training
    model.eval()
    rows = np.arange(model.shape.n_items) if items is None else np.asarray(items)
    out = [
        _unit(model.item_vectors(torch.from_numpy(rows[s : s + CHUNK].astype(np.int64))))
        for s in range(0, len(rows), CHUNK)
    ]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.shape.dim), np.float32)


@torch.no_grad()
def user_matrix(
    model: TwoTower,
    history: sp.csr_matrix,
    rows: np.ndarray,
    sums: torch.Tensor,
    users: np.ndarray | None = None,
) -> np.ndarray:
    """Unit vectors of the users whose histories are these rows of `history`; `users` are
    their rows in the user id table (needed when the model has user id embeddings)."""
    was_training = model.training
    model.eval()
    out = []
    for s in range(0, len(rows), CHUNK):
        part = rows[s : s + CHUNK]
        ids = None if users is None else users[s : s + CHUNK]
        out.append(_unit(model.user_vectors(pool_rows(history, part, sums, ids))))
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.shape.dim), np.float32)


class TowerScorer:
    """Scores of users (rows of `history`, also their user rows) against every item."""

    name = "two-tower"

    def __init__(self, model: TwoTower, history: sp.csr_matrix) -> None:
        self.model, self.history = model, history
        self.sums = feature_sums(history, model)
        self.items = item_matrix(model)

    def __call__(self, users: np.ndarray) -> np.ndarray:
        ids = users if self.model.shape.user_ids else None
        return user_matrix(self.model, self.history, users, self.sums, ids) @ self.items.T
