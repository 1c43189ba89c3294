"""Shared helpers of the search and duplicate tests: small clustered unit vectors, and the
brute-force references everything is checked against."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int = 32, clusters: int = 20, spread: float = 0.35, seed: int = 0):
    """n unit rows around `clusters` centres (the same centres for every seed)."""
    centres = np.random.default_rng(1000).normal(size=(clusters, dim))
    rng = np.random.default_rng(seed)
    return unit(centres[np.arange(n) % clusters] + spread * rng.normal(size=(n, dim)))


def brute_top_k(X: np.ndarray, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the k largest cosines, computed with numpy in float64."""
    sims = Q.astype(np.float64) @ X.astype(np.float64).T
    rows = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, rows, axis=1), rows


def brute_pairs(X: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """Every pair i < j with cos(x_i, x_j) >= threshold (float64)."""
    sims = X.astype(np.float64) @ X.astype(np.float64).T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def toy_embedder(table: dict[str, np.ndarray], name: str = "toy"):
    """An Embedder of texts looked up in `table` (no model to load)."""
    from contrastkit.apps.embedder import Embedder

    dim = len(next(iter(table.values())))
    return Embedder(
        "text", dim, f"fingerprint-{name}", None, f"the {name} model",
        lambda texts: unit(np.stack([table[t] for t in texts])),
    )  # fmt: skip


def refined_vectors_model(folder: Path, X: np.ndarray, seed: int = 0) -> Path:
    """A refined adapter on vectors saved in `folder` (trains in about a second)."""
    from contrastkit import Refiner

    y = np.arange(len(X)) % 4
    Refiner(epochs=2, quiet=True, seed=seed).fit(X, y).save(folder)
    return folder


def run_cli(*args):
    """`contrastkit ARGS` in this process; an exception escaping the command fails the test."""
    from typer.testing import CliRunner

    from contrastkit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def refused(result, fragment: str) -> str:
    """Exit code 2 and exactly one `error:` line on stderr, containing `fragment`."""
    import re

    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(fragment, lines[0]), lines[0]
    return lines[0]
