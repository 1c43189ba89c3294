"""Duplicate groups: the connected components of the graph whose edges are duplicate pairs.

Chosen over leader-based grouping (each row joins the first earlier row it duplicates) because
components do not depend on the order of the rows. The cost is chaining: when a ~ b and b ~ c,
a and c share a group even if cos(a, c) is below the threshold; the pairs list says which rows
were found similar.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def connected_groups(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Group number of each of n rows, given the edges (a[i], b[i]); groups are numbered 0, 1,
    ... in the order of their first row, and a row without an edge is a group of its own."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ones = np.ones(len(a), dtype=np.int8)
    graph = coo_matrix((ones, (np.asarray(a), np.asarray(b))), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    _, first_row = np.unique(labels, return_index=True)
    renumber = np.empty(len(first_row), dtype=np.int64)
    renumber[np.argsort(first_row)] = np.arange(len(first_row))
    return renumber[labels]


def first_of_group(groups: np.ndarray) -> np.ndarray:
    """True for the first row of each group (the row to keep when dropping duplicates)."""
    keep = np.zeros(len(groups), dtype=bool)
    _, first_row = np.unique(groups, return_index=True)
    keep[first_row] = True
    return keep
