"""Plain, loop-based transcriptions of the metric definitions, used as test references."""

from __future__ import annotations

import numpy as np


def unit(Z: np.ndarray) -> np.ndarray:
    Z = np.asarray(Z, dtype=np.float64)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def knn_predict_reference(train_Z, train_y, test_Z, k):
    """Cosine kNN, majority vote; ties go to the tied class seen first in nearest order."""
    train, test = unit(train_Z), unit(test_Z)
    predictions = []
    for q in test:
        order = np.argsort(-(train @ q), kind="stable")[:k]
        labels = [train_y[i] for i in order]
        counts = {label: labels.count(label) for label in labels}
        best = max(counts.values())
        predictions.append(next(label for label in labels if counts[label] == best))
    return np.array(predictions)


def retrieval_reference(Z, y):
    """P@1, R-precision and MAP@R (Musgrave et al. 2020), one query at a time."""
    Z = unit(Z)
    y = list(y)
    p1, rp, ap = [], [], []
    for q in range(len(Z)):
        R = sum(1 for label in y if label == y[q]) - 1
        if R == 0:
            continue
        others = [i for i in range(len(Z)) if i != q]
        sims = Z[others] @ Z[q]
        ranked = [others[i] for i in np.argsort(-sims, kind="stable")]
        rel = [1 if y[i] == y[q] else 0 for i in ranked[:R]]
        p1.append(rel[0])
        rp.append(sum(rel) / R)
        precision_sum = 0.0
        for i in range(1, R + 1):
            if rel[i - 1]:
                precision_sum += sum(rel[:i]) / i
        ap.append(precision_sum / R)
    if not p1:
        return {"precision_at_1": np.nan, "r_precision": np.nan, "map_at_r": np.nan}
    return {
        "precision_at_1": float(np.mean(p1)),
        "r_precision": float(np.mean(rp)),
        "map_at_r": float(np.mean(ap)),
    }


def alignment_reference(Z, y):
    Z = unit(Z)
    distances = [
        float(np.sum((Z[i] - Z[j]) ** 2))
        for i in range(len(Z))
        for j in range(len(Z))
        if i != j and y[i] == y[j]
    ]
    return float(np.mean(distances)) if distances else np.nan


def uniformity_reference(Z):
    """Wang & Isola: log mean exp(-2 ||z_i - z_j||^2) over pairs i < j."""
    Z = unit(Z)
    iu = np.triu_indices(len(Z), k=1)
    sq = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(axis=2)[iu]
    return float(np.log(np.mean(np.exp(-2.0 * sq))))


def clustered(n_classes, per_class, dim, spread, seed, sizes=None):
    """Gaussian blobs around random unit centres; ``sizes`` overrides rows per class."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(n_classes, dim)))
    sizes = sizes or [per_class] * n_classes
    y = np.repeat(np.arange(n_classes), sizes)
    Z = centres[y] + spread * rng.normal(size=(len(y), dim))
    order = rng.permutation(len(y))
    return Z[order].astype(np.float32), y[order]
