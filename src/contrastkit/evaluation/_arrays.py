"""Input checks shared by the metrics: shapes, finite values, labels, L2 normalisation.
Bad input raises DataError (a ValueError): the command line turns it into one line and exit 2."""

from __future__ import annotations

import numpy as np

from contrastkit.data.labels import check_no_missing, label_array
from contrastkit.errors import DataError


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
        raise DataError(f"{name} must be 2-D (rows, dims); got shape {arr.shape}.")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {arr.shape}); pass at least one row and column.")
    arr = arr.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise DataError(
            f"{name} has NaN or infinite values in rows {_first_rows(bad)}; "
            "drop or re-encode those rows."
        )
    return arr


def check_labels(y: np.ndarray, n_rows: int, name: str, z_name: str) -> np.ndarray:
    """``y`` as a 1-D array of length ``n_rows`` without missing labels (DataError, a
    ValueError, otherwise)."""
    array = label_array(np.asarray(y), n_rows, name, z_name)
    check_no_missing(array, name)
    return array


def l2_normalise(Z: np.ndarray, name: str) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32, a new array); an all-zero row raises ValueError."""
    norms = np.linalg.norm(Z.astype(np.float64), axis=1)
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise DataError(
            f"{name} has all-zero rows {_first_rows(zero)}; cosine similarity is undefined "
            "for them: drop those rows or check the encoder."
        )
    return (Z / norms[:, None]).astype(np.float32)
