"""The leave-last-out split of the standard full-ranking protocol, and user x item matrices.

Per user, in time order (ties: the order of the file), the last interaction is the test item,
the one before it the validation item, and the rest train. Without timestamps, the two held
out are drawn at random per user (seeded). Users with fewer than `MIN_EVALUATED` interactions
keep them all for training and are not evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from contrastkit.apps.recommend.data import Interactions

MIN_EVALUATED = 3  # a train item, a validation item and a test item


@dataclass
class Split:
    """Rows of the interactions: training rows, and one validation and one test row per
    evaluated user (`validation[i]` and `test[i]` belong to the same user)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    protocol: str

    @property
    def evaluated_users(self) -> int:
        return len(self.test)


def leave_last_out(data: Interactions, seed: int = 0) -> Split:
    """Split per user: last -> test, the one before -> validation (random without times)."""
    n = len(data)
    if data.timestamps is not None:
        order = np.lexsort((np.arange(n), data.timestamps, data.users))
        protocol = "per user, last interaction by time -> test, the one before -> validation"
    else:
        rng = np.random.default_rng(seed)
        order = np.lexsort((rng.random(n), data.users))
        protocol = (
            f"no timestamps: per user, two random interactions (seed {seed}) -> test and validation"
        )
    users = data.users[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], n]
    evaluated = (ends - starts) >= MIN_EVALUATED
    test = order[ends[evaluated] - 1]
    validation = order[ends[evaluated] - 2]
    held = np.zeros(n, dtype=bool)
    held[test] = held[validation] = True
    return Split(np.flatnonzero(~held), validation, test, protocol)


def user_item_matrix(data: Interactions, rows: np.ndarray | None = None) -> sp.csr_matrix:
    """Binary users x items CSR matrix of the interactions at `rows` (all when None), with
    the column indices of each row sorted."""
    users = data.users if rows is None else data.users[rows]
    items = data.items if rows is None else data.items[rows]
    ones = np.ones(len(users), dtype=np.float32)
    matrix = sp.csr_matrix((ones, (users, items)), shape=(data.n_users, data.n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


def add_rows(matrix: sp.csr_matrix, data: Interactions, rows: np.ndarray) -> sp.csr_matrix:
    """`matrix` plus the interactions at `rows` (binary, indices sorted)."""
    combined = (matrix + user_item_matrix(data, rows)).tocsr()
    combined.data[:] = 1.0
    combined.sort_indices()
    return combined


def item_counts(data: Interactions, rows: np.ndarray) -> np.ndarray:
    """How many of the interactions at `rows` each item has (int64, one per catalogue item)."""
    return np.bincount(data.items[rows], minlength=data.n_items).astype(np.int64)
