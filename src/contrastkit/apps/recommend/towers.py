"""The two towers.

Item tower:  v_j = A_item(f_j) + e_j
User tower:  u   = A_user(mean_{i in H} f_i) + mean_{i in H} h_i  (+ p_user, optional)

f_j is the item's frozen feature (its text embedded by the frozen text model, or its given
vector); A_item and A_user are `ResidualAdapter`s (the identity at the start, so training
starts from the content-only model); e_j (candidate side) and h_i (history side) are learned
id embeddings, two tables as in FISM (Kabbur et al. 2013), so item-to-item affinity need not
be symmetric; p_user is an optional user id embedding. Pooling the features first and then
adapting them keeps a training step's cost independent of how long histories are: the
feature sums are fixed, only the id embeddings are pooled with gradients (`embedding_bag`).

An item without training interactions has no id embedding (its rows are masked to zero), so
its vector is its content's: a cold item is recommended by what it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.models.adapter import ResidualAdapter

ID_INIT_NORM = 0.1  # id embeddings start at ~1/10 of a unit feature vector


@dataclass(frozen=True)
class TowerShape:
    n_users: int
    n_items: int
    feature_dim: int  # 0: no item features (id embeddings only)
    dim: int  # width of both towers' output (the feature width when there are features)
    history: bool = True  # pool the user's history (else a user id embedding alone)
    user_ids: bool = False  # add a user id embedding
    hidden: int | None = None  # the adapters' hidden width (None: ResidualAdapter's 4 x dim)
    input_dropout: float = 0.3


def _id_table(rows: int, dim: int) -> nn.Embedding:
    table = nn.Embedding(rows, dim)
    nn.init.normal_(table.weight, std=ID_INIT_NORM / dim**0.5)
    return table


class TwoTower(nn.Module):
    """User and item towers over fixed item features (a buffer, not a parameter)."""

    def __init__(self, shape: TowerShape, features: Tensor | None) -> None:
        super().__init__()
        self.shape = shape
        has_features = shape.feature_dim > 0
        if has_features != (features is not None):
            raise ValueError("features must be given exactly when feature_dim > 0")
        if has_features and shape.dim != shape.feature_dim:
            raise ValueError(
                "with item features, dim is the features' width (the adapters keep it)"
            )
        self.register_buffer(
            "features",
            features.float() if features is not None else torch.zeros(shape.n_items, 0),
            persistent=False,
        )
        self.register_buffer("has_id", torch.zeros(shape.n_items, 1))

        def adapter() -> ResidualAdapter:
            return ResidualAdapter(
                shape.feature_dim, shape.hidden, input_dropout=shape.input_dropout
            )

        self.item_adapter = adapter() if has_features else None
        self.user_adapter = adapter() if has_features and shape.history else None
        self.item_ids = _id_table(shape.n_items, shape.dim)
        self.history_ids = _id_table(shape.n_items, shape.dim) if shape.history else None
        self.user_table = _id_table(shape.n_users, shape.dim) if shape.user_ids else None

    def item_vectors(self, items: Tensor, id_dropout: float = 0.0) -> Tensor:
        """v_j of the items (rows of the catalogue). In training, `id_dropout` drops an item's
        id embedding with that chance (DropoutNet, Volkovs et al. 2017), so the features alone
        must place items too, as they must for items with no interactions."""
        keep = self.has_id[items]
        if self.training and id_dropout > 0 and self.item_adapter is not None:
            keep = keep * (torch.rand_like(keep) >= id_dropout)
        vectors = self.item_ids(items) * keep
        if self.item_adapter is not None:
            vectors = vectors + self.item_adapter(self.features[items])
        return vectors

    def user_vectors(self, pooled: Pooled) -> Tensor:
        """u of each row of `pooled` (its history's mean feature and id embedding bag)."""
        parts = []
        if self.history_ids is not None:
            parts.append(
                F.embedding_bag(
                    pooled.items,
                    self.history_ids.weight,
                    pooled.offsets,
                    mode="sum",
                    per_sample_weights=pooled.weights * self.has_id[pooled.items, 0],
                )
            )
            if self.user_adapter is not None:
                parts.append(self.user_adapter(pooled.mean_features))
        if self.user_table is not None and pooled.users is not None:
            parts.append(self.user_table(pooled.users))
        if not parts:
            raise ValueError("this model knows users only by their id: pass their rows")
        return torch.stack(parts).sum(0)

    @torch.no_grad()
    def grow(self, features: Tensor | None, count: int) -> None:
        """Add `count` items (cold: features only, no id embedding) at the end of the catalogue."""
        if (features is None) != (self.shape.feature_dim == 0):
            raise ValueError("new items need features exactly when the model has them")
        if features is not None:
            self.features = torch.cat([self.features, features.float()])
        self.has_id = torch.cat([self.has_id, torch.zeros(count, 1)])
        for name in ("item_ids", "history_ids"):
            table = getattr(self, name)
            if table is not None:
                grown = torch.cat([table.weight, torch.zeros(count, self.shape.dim)])
                setattr(self, name, nn.Embedding.from_pretrained(grown, freeze=False))
        self.shape = replace(self.shape, n_items=self.shape.n_items + count)

    def mark_trained(self, items: Tensor) -> None:
        """Give these items (those with training interactions) their id embeddings."""
        self.has_id.zero_()
        self.has_id[items] = 1.0


@dataclass
class Pooled:
    """The histories of a batch of users, ready for the user tower.

    items/offsets/weights: an embedding bag (`items[offsets[b]:offsets[b+1]]` is row b's
    history, each with its weight 1/|H|); mean_features: (B, feature_dim) mean feature of each
    history; users: the user rows (for the user id embedding), or None for unknown users.
    """

    items: Tensor
    offsets: Tensor
    weights: Tensor
    mean_features: Tensor
    users: Tensor | None = None
