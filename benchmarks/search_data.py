"""Synthetic embeddings for the search and duplicate benchmarks.

`clustered_vectors`: unit rows around `clusters` random centres; inside a cluster the rows
vary along a few directions of its own (`intrinsic` of them) plus a little noise in every
dimension, so that neighbourhoods have the low intrinsic dimension real sentence embeddings
have instead of isotropic noise (where every neighbour is as far as every other).
`with_near_duplicates`: the same, plus near copies of some rows (cosine about 0.95-0.99).
"""

from __future__ import annotations

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered_vectors(
    n: int,
    dim: int = 384,
    clusters: int = 1000,
    intrinsic: int = 16,
    spread: float = 0.12,
    noise: float = 0.25,
    seed: int = 0,
) -> np.ndarray:
    """n unit rows (float32) of width dim; row i belongs to cluster i % clusters (rows of one
    cluster are spread through the array)."""
    rng = np.random.default_rng(seed)
    shape = np.random.default_rng(12345)  # the clusters are the same for every seed
    centres = _unit(shape.standard_normal((clusters, dim)))
    bases = shape.standard_normal((clusters, intrinsic, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    cluster = np.arange(n) % clusters
    for c in range(clusters):
        rows = np.flatnonzero(cluster == c)
        if not len(rows):
            continue
        z = rng.standard_normal((len(rows), intrinsic)).astype(np.float32) * spread
        x = centres[c] + z @ bases[c] / np.sqrt(intrinsic)
        x += rng.standard_normal((len(rows), dim)).astype(np.float32) * (noise / np.sqrt(dim))
        out[rows] = _unit(x)
    return out


def with_near_duplicates(
    n: int,
    fraction: float = 0.1,
    jitter: tuple[float, float] = (0.05, 0.6),
    seed: int = 0,
    **kwargs,
) -> tuple[np.ndarray, np.ndarray]:
    """(X, source): n unit rows of which `fraction` are near copies of earlier rows, each with
    noise of a norm drawn from `jitter` (cosine to its original about 1 / sqrt(1 + norm^2):
    0.999 to 0.86 by default, so some fall below a 0.9 threshold); source[i] is the row that
    i copies (i itself for an original). Copies are placed after the originals."""
    rng = np.random.default_rng(seed + 1)
    copies = int(n * fraction)
    out = np.empty((n, kwargs.get("dim", 384)), dtype=np.float32)
    out[: n - copies] = clustered_vectors(n - copies, seed=seed, **kwargs)
    picked = rng.integers(0, n - copies, copies)
    for start in range(0, copies, 100_000):
        rows = picked[start : start + 100_000]
        scale = rng.uniform(*jitter, size=(len(rows), 1)).astype(np.float32)
        noise = rng.standard_normal((len(rows), out.shape[1])).astype(np.float32)
        noise *= scale / np.sqrt(out.shape[1])
        out[n - copies + start : n - copies + start + len(rows)] = _unit(out[rows] + noise)
    return out, np.concatenate([np.arange(n - copies), picked])
