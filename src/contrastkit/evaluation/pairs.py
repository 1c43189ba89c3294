"""Metrics of text pairs: the Spearman correlation between the cosine similarity of each
pair's two embeddings and its score (the STS benchmark's measure)."""

from __future__ import annotations

import numpy as np


def pair_scores(Z_a: np.ndarray, Z_b: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """{"spearman": rank correlation of cos(a_i, b_i) with scores_i}; NaN when undefined."""
    from scipy.stats import spearmanr

    if Z_a.shape != Z_b.shape or len(Z_a) != len(scores):
        raise ValueError(
            f"pair embeddings {Z_a.shape} and {Z_b.shape} and {len(scores)} scores do not match"
        )
    a = Z_a / np.linalg.norm(Z_a, axis=1, keepdims=True)
    b = Z_b / np.linalg.norm(Z_b, axis=1, keepdims=True)
    cosine = (a * b).sum(axis=1)
    if len(scores) < 2 or np.ptp(scores) == 0 or np.ptp(cosine) == 0:
        return {"spearman": float("nan")}
    return {"spearman": float(spearmanr(cosine, np.asarray(scores, np.float64)).statistic)}
