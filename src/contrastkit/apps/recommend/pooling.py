"""Histories as the user tower takes them (`Pooled`), and the accidental hits of a batch.

A history matrix is a users x items CSR matrix; its row for user u lists u's items. During
training, batch row b is one training interaction (position p_b of the CSR matrix): its user's
history is the row without that item, so the model never sees the answer in the question.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from contrastkit.apps.recommend.towers import Pooled


def gather_rows(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, lengths): the CSR positions of the given rows, concatenated, and each
    row's length."""
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    offsets = np.cumsum(lengths) - lengths
    positions = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - starts, lengths)
    return positions, lengths


def _bag(items: np.ndarray, lengths: np.ndarray, weights: np.ndarray) -> tuple:
    offsets = np.cumsum(lengths) - lengths
    return (
        torch.from_numpy(items.astype(np.int64)),
        torch.from_numpy(offsets.astype(np.int64)),
        torch.from_numpy(weights.astype(np.float32)),
    )


def pool_rows(
    history: sp.csr_matrix,
    rows: np.ndarray,
    feature_sums: torch.Tensor,
    users: np.ndarray | None = None,
) -> Pooled:
    """The whole history of each row of `history` (empty rows pool to zero)."""
    positions, lengths = gather_rows(history.indptr, rows)
    share = 1.0 / np.maximum(lengths, 1)
    items, offsets, weights = _bag(history.indices[positions], lengths, np.repeat(share, lengths))
    means = feature_sums[torch.from_numpy(rows)] * torch.from_numpy(share).float()[:, None]
    return Pooled(items, offsets, weights, means, _rows(users))


def pool_without_target(
    history: sp.csr_matrix,
    row_of_position: np.ndarray,
    targets: np.ndarray,
    feature_sums: torch.Tensor,
    features: torch.Tensor,
    users: np.ndarray | None = None,
) -> tuple[Pooled, np.ndarray, np.ndarray]:
    """(pooled, history items, lengths) for training interactions at CSR positions `targets`:
    each history leaves out its own target item (rows need at least two items)."""
    rows = row_of_position[targets]
    positions, lengths = gather_rows(history.indptr, rows)
    items = history.indices[positions]
    share = 1.0 / np.maximum(lengths - 1, 1)
    weights = np.repeat(share, lengths)
    weights[positions == np.repeat(targets, lengths)] = 0.0
    bag = _bag(items, lengths, weights)
    target_items = torch.from_numpy(history.indices[targets].astype(np.int64))
    sums = feature_sums[torch.from_numpy(rows)] - features[target_items]
    means = sums * torch.from_numpy(share).float()[:, None]
    return Pooled(*bag, means, _rows(users)), items, lengths


def accidental_hits(history_items: np.ndarray, lengths: np.ndarray, targets: np.ndarray):
    """(B, B) bool tensor: hits[b, c] when row c's item is in row b's history (c != b)."""
    unique, column_of = np.unique(targets, return_inverse=True)
    found = np.searchsorted(unique, history_items)
    found = np.minimum(found, len(unique) - 1)
    present = unique[found] == history_items
    owner = np.repeat(np.arange(len(lengths)), lengths)
    per_item = np.zeros((len(lengths), len(unique)), dtype=bool)
    per_item[owner[present], found[present]] = True
    hits = per_item[:, column_of]
    np.fill_diagonal(hits, False)
    return torch.from_numpy(hits)


def _rows(users: np.ndarray | None) -> torch.Tensor | None:
    return None if users is None else torch.from_numpy(np.asarray(users, dtype=np.int64))
