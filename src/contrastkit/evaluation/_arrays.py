"""Input checks shared by the metrics: shapes, finite values, labels, L2 normalisation."""

from __future__ import annotations

import numpy as np


def _first_rows(rows: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"{shown}{more}"


def check_embeddings(Z: np.ndarray, name: str) -> np.ndarray:
    """Return ``Z`` as a finite 2-D float array, or raise ValueError naming the bad rows."""
    try:
        arr = np.asarray(Z)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a 2-D numeric array; got {type(Z).__name__}.") from exc
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, dims); got shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass at least one row and column.")
    arr = arr.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise ValueError(
            f"{name} has NaN or infinite values in rows {_first_rows(bad)}; "
            "drop or re-encode those rows."
        )
    return arr


def check_labels(y: np.ndarray, n_rows: int, name: str, z_name: str) -> np.ndarray:
    """Return ``y`` as a 1-D array of length ``n_rows``; NaN/None labels raise ValueError."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per row); got shape {arr.shape}.")
    if len(arr) != n_rows:
        raise ValueError(
            f"{name} has {len(arr)} labels but {z_name} has {n_rows} rows; "
            "pass one label per embedding row."
        )
    if np.issubdtype(arr.dtype, np.floating):
        missing = np.flatnonzero(np.isnan(arr))
    elif arr.dtype == object:
        missing = np.flatnonzero([v is None or (isinstance(v, float) and v != v) for v in arr])
    else:
        missing = np.array([], dtype=int)
    if len(missing):
        raise ValueError(
            f"{name} has missing labels (NaN/None) in rows {_first_rows(missing)}; "
            "drop those rows or give them a label."
        )
    return arr


def l2_normalise(Z: np.ndarray, name: str) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32, a new array); an all-zero row raises ValueError."""
    norms = np.linalg.norm(Z.astype(np.float64), axis=1)
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise ValueError(
            f"{name} has all-zero rows {_first_rows(zero)}; cosine similarity is undefined "
            "for them: drop those rows or check the encoder."
        )
    return (Z / norms[:, None]).astype(np.float32)


def encode_labels(*label_arrays: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Map labels of any type to shared integer codes; returns (classes, codes per array)."""
    sizes = [len(a) for a in label_arrays]
    joined = np.concatenate([np.asarray(a, dtype=object) for a in label_arrays])
    try:
        classes, codes = np.unique(joined, return_inverse=True)
    except TypeError:  # mixed, unorderable label types: compare them as strings
        classes, codes = np.unique(joined.astype(str), return_inverse=True)
    return classes, np.split(codes.astype(np.int64), np.cumsum(sizes)[:-1])
