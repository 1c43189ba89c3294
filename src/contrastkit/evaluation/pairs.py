"""Metrics of pairs of embeddings, scored by the cosine similarity of each pair's two rows.

- Scored pairs (STS-style, a similarity 0-5): `pair_scores`, the Spearman correlation of the
  cosines with the scores (the STS benchmark's measure).
- Labelled pairs (1 = duplicate / paraphrase, 0 = not): `calibrate_threshold` picks the cosine
  threshold that maximises F1 on some pairs; `pair_classification` gives average precision,
  the best F1 over thresholds, and precision, recall, F1 and accuracy at a given threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def pair_cosines(Z_a: np.ndarray, Z_b: np.ndarray) -> np.ndarray:
    """cos(a_i, b_i) for each pair (rows need not be unit length)."""
    if Z_a.shape != Z_b.shape:
        raise ValueError(f"pair embeddings {Z_a.shape} and {Z_b.shape} do not match")
    a = Z_a / np.linalg.norm(Z_a, axis=1, keepdims=True)
    b = Z_b / np.linalg.norm(Z_b, axis=1, keepdims=True)
    return (a * b).sum(axis=1).astype(np.float64)


@dataclass(frozen=True)
class Threshold:
    """A similarity threshold (pairs with cosine >= threshold are called duplicates) and how it
    did on the pairs it was chosen on."""

    threshold: float
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _binary(labels) -> np.ndarray:
    labels = np.asarray(labels)
    values = set(np.unique(labels).tolist())
    if not values <= {0, 1}:  # True and False compare equal to 1 and 0
        raise ValueError(f"pair labels must be 0 or 1, got {sorted(values, key=str)[:5]}")
    return labels.astype(bool)


def calibrate_threshold(scores: np.ndarray, labels) -> Threshold:
    """The threshold that maximises F1 when pairs scoring >= it are called positive (ties in
    F1 go to the higher threshold). Needs at least one positive pair."""
    scores, positive = np.asarray(scores, np.float64), _binary(labels)
    if len(scores) != len(positive):
        raise ValueError(f"{len(scores)} scores but {len(positive)} labels")
    if not positive.any():
        raise ValueError("the labelled pairs hold no positive (label 1) pair to calibrate on")
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positive[order]
    true_pos = np.cumsum(p)
    called = np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # a threshold calls every pair of equal score
    f1 = 2 * true_pos / (called + positive.sum())
    f1 = np.where(last, f1, -1.0)
    best = int(np.argmax(f1))
    return Threshold(
        threshold=float(s[best]),
        precision=float(true_pos[best] / called[best]),
        recall=float(true_pos[best] / positive.sum()),
        f1=float(f1[best]),
    )


def pair_classification(scores: np.ndarray, labels, threshold: float | None = None) -> dict:
    """average_precision, best_f1 (the best threshold on these very pairs: optimistic) and,
    with a threshold chosen elsewhere, precision, recall, f1 and accuracy at it."""
    from sklearn.metrics import average_precision_score

    scores, positive = np.asarray(scores, np.float64), _binary(labels)
    best = calibrate_threshold(scores, positive)
    out = {
        "average_precision": float(average_precision_score(positive, scores)),
        "best_f1": best.f1,
        "best_f1_threshold": best.threshold,
    }
    if threshold is not None:
        called = scores >= threshold
        tp = float((called & positive).sum())
        out.update(
            threshold=float(threshold),
            precision=tp / called.sum() if called.any() else 0.0,
            recall=tp / positive.sum(),
            accuracy=float((called == positive).mean()),
        )
        p, r = out["precision"], out["recall"]
        out["f1"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return out


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
