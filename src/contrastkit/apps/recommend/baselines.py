"""The baselines every run measures on the same split: most popular, item-kNN on
co-occurrence, BPR matrix factorisation (the `implicit` package) and content-only (the frozen
text model). Each is fit on the training matrix and scores users from their history."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from contrastkit.errors import ConfigError

KNN_NEIGHBOURS = 100  # per item; RecBole's ItemKNN default, and MovieLens items have ~60 raters
BPR_SETTINGS = {"factors": 100, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100}
# BPR: the `implicit` package's own defaults, left as they are (no tuning on our test data).
_DENSE_BLOCK = 20_000_000  # floats of one dense block of the similarity matrix (80 MB)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class MostPopular:
    """Every user gets the items with the most training interactions."""

    name = "most popular"

    def __init__(self, train: sp.csr_matrix) -> None:
        self.counts = np.asarray(train.sum(axis=0), dtype=np.float64).ravel()

    def scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))


class ItemKNN:
    """Item-based kNN (Sarwar et al. 2001; Deshpande & Karypis 2004): the cosine similarity of
    two items' user columns, each item keeping its `neighbours` most similar items; a user's
    score for item j is the sum of j's similarities to the items in the user's history."""

    name = "item-kNN"

    def __init__(self, train: sp.csr_matrix, neighbours: int = KNN_NEIGHBOURS) -> None:
        self.similarity = top_neighbours(train, neighbours)

    def scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray((history[users] @ self.similarity).todense())


def top_neighbours(train: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """S[i, j]: cosine similarity of items i and j over users, kept for j's `neighbours` most
    similar items i (never j itself), computed a block of columns at a time."""
    x = train.astype(np.float32).tocsc()
    co = (x.T @ x).tocsc()
    norms = np.sqrt(np.maximum(co.diagonal(), 1e-12)).astype(np.float32)
    n = co.shape[0]
    k = min(neighbours, n - 1)
    rows, cols, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    block = max(1, _DENSE_BLOCK // max(n, 1))
    for start in range(0, n if k > 0 else 0, block):
        stop = min(start + block, n)
        sims = co[:, start:stop].toarray() / norms[:, None] / norms[None, start:stop]
        sims[np.arange(start, stop), np.arange(stop - start)] = 0.0  # not its own neighbour
        top = np.argpartition(-sims, k - 1, axis=0)[:k]
        values = np.take_along_axis(sims, top, axis=0)
        keep = values > 0
        rows.append(top[keep])
        cols.append(np.broadcast_to(np.arange(start, stop), top.shape)[keep])
        vals.append(values[keep].astype(np.float32))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


def bpr_available() -> bool:
    """Whether the `implicit` package (the BPR baseline) is installed."""
    import importlib.util

    return importlib.util.find_spec("implicit") is not None


class BPR:
    """Bayesian personalised ranking (Rendle et al. 2009) by the `implicit` package, with its
    default settings; one thread, so that a seed gives the same factors every time."""

    name = "BPR-MF"

    def __init__(self, train: sp.csr_matrix, seed: int = 0) -> None:
        try:
            from implicit.cpu.bpr import BayesianPersonalizedRanking
        except ImportError:
            raise ConfigError(
                "the BPR baseline needs the implicit package: pip install 'contrastkit[recommend]'"
            ) from None
        model = BayesianPersonalizedRanking(**BPR_SETTINGS, random_state=seed, num_threads=1)
        model.fit(train.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.asarray(model.user_factors)
        self.item_factors = np.asarray(model.item_factors)

    def scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T


class ContentOnly:
    """The frozen text model alone: a user is the mean of their items' text embeddings, and
    items are ranked by cosine similarity to it."""

    name = "content-only"

    def __init__(self, features: np.ndarray) -> None:
        self.features = unit_rows(features)

    def scores(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        profiles = unit_rows(np.asarray(history[users] @ self.features))
        return profiles @ self.features.T
