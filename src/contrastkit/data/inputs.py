"""What a user hands to `Refiner.fit`/`transform`: recognise the kind of input and check it.

Kinds: "text" (a list of str), "vectors" (float array (n, d)), "images" (array (n, h, w) or
(n, h, w, c); uint8, or float with 3+ dimensions), "pairs" (a list of (a, b) text pairs).
Every problem a user can cause raises DataError with one sentence naming the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from contrastkit.errors import DataError

Kind = Literal["text", "vectors", "images", "pairs"]
MIN_IMAGE_SIDE = 4  # the image CNN pools 8x8 down to 1x1 at the end


def _rows(indices: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in list(indices)[:limit])
    return shown + (f" ... ({len(indices)} rows)" if len(indices) > limit else "")


def detect_kind(X) -> Kind:
    if isinstance(X, np.ndarray):
        if X.ndim == 2:
            return "vectors"
        if X.ndim in (3, 4):
            return "images"
        raise DataError(
            f"an array input must be 2-D vectors or 3-D/4-D images, got shape {X.shape}"
        )
    if hasattr(X, "detach") and hasattr(X, "numpy"):  # a torch tensor
        return detect_kind(X.detach().cpu().numpy())
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise DataError("the input is empty: give at least two rows")
        first = X[0]
        if isinstance(first, str):
            return "text"
        if (
            isinstance(first, (tuple, list))
            and len(first) == 2
            and all(isinstance(v, str) for v in first)
        ):
            return "pairs"
        if isinstance(first, np.ndarray) and first.ndim >= 2:
            return "images"  # a list of image arrays (n, h, w[, c]) each
        if isinstance(first, (list, tuple, np.ndarray)):
            return "vectors"
    raise DataError(
        f"unsupported input of type {type(X).__name__}: give a list of texts, a list of (text, "
        "text) pairs, a float array of vectors (n, d) or an array of images (n, h, w[, c])"
    )


def check_input(X, kind: Kind | None = None):
    """Canonical form of X for its kind: list[str], float32 (n, d), uint8/float32 images, pairs."""
    kind = kind or detect_kind(X)
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    if kind == "text":
        return check_texts(X), kind
    if kind == "pairs":
        return check_pairs(X), kind
    if kind == "vectors":
        return check_vectors(X), kind
    return check_images(X), kind


def check_texts(X) -> list[str]:
    if isinstance(X, np.ndarray):
        X = X.tolist()
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        raise DataError("the input is empty: give at least two texts")
    not_str = [i for i, t in enumerate(X) if not isinstance(t, str)]
    if not_str:
        raise DataError(f"text input must be strings, but rows {_rows(not_str)} are not")
    empty = [i for i, t in enumerate(X) if not t.strip()]
    if empty:
        raise DataError(
            f"texts in rows {_rows(empty)} are empty or whitespace only; remove those rows"
        )
    return list(X)


def check_pairs(X) -> list[tuple[str, str]]:
    bad = [
        i
        for i, p in enumerate(X)
        if not (
            isinstance(p, (tuple, list))
            and len(p) == 2
            and all(isinstance(v, str) and v.strip() for v in p)
        )
    ]
    if bad:
        raise DataError(
            f"pairs must be (text, text) with non-empty texts, but rows {_rows(bad)} are not"
        )
    return [(a, b) for a, b in X]


def check_vectors(X) -> np.ndarray:
    if isinstance(X, (list, tuple)):
        lengths = {len(v) for v in X}
        if len(lengths) > 1:
            first = len(X[0])
            odd = next(i for i, v in enumerate(X) if len(v) != first)
            raise DataError(
                f"vectors have mixed lengths: row 0 has {first} values, row {odd} has {len(X[odd])}"
            )
        X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"vectors must be a non-empty 2-D array (rows x dims), got shape {X.shape}")
    if X.dtype.kind not in "iuf":  # bool, complex, strings and objects are not vectors
        raise DataError(f"vectors must be real numbers, got dtype {X.dtype}")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise DataError(
            f"vectors contain NaN or inf in rows {_rows(bad.tolist())}; drop or repair those rows"
        )
    largest = np.abs(X).max(axis=1).astype(np.float64)
    zero = np.flatnonzero(~(largest > 0))
    if zero.size:
        raise DataError(
            f"vectors in rows {_rows(zero.tolist())} are all zeros and have no direction; drop those rows"
        )
    with np.errstate(over="ignore"):  # rows beyond float32's range are replaced just below
        out = X.astype(np.float32, copy=False)
    # Every use of vectors normalises rows first, and float32 cannot square a component beyond
    # ~1e19 (the norm overflows and the row becomes 0) nor normalise a row shorter than 1e-12.
    # Such rows are scaled to unit length in float64 here; the others stay bit for bit.
    extreme = (largest > 1e15) | (largest < 1e-10)
    if extreme.any():
        rows = X[extreme].astype(np.float64) / largest[extreme, None]
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        out = out.copy() if out is X else out
        out[extreme] = rows.astype(np.float32)
    return out


def check_images(X) -> np.ndarray:
    if isinstance(X, (list, tuple)):
        shapes = [np.shape(image) for image in X]
        odd = next((i for i, shape in enumerate(shapes) if shape != shapes[0]), None)
        if odd is not None:
            raise DataError(
                f"images have mixed shapes: row 0 is {shapes[0]} but row {odd} is {shapes[odd]}; "
                "resize them to one size"
            )
    X = np.asarray(X)
    if X.ndim not in (3, 4) or X.shape[0] == 0:
        raise DataError(f"images must be an array (n, h, w) or (n, h, w, c), got shape {X.shape}")
    if X.ndim == 4 and X.shape[-1] not in (1, 3, 4):
        raise DataError(
            f"images must have 1, 3 or 4 channels last (n, h, w, c), got shape {X.shape}"
        )
    if min(X.shape[1:3]) < MIN_IMAGE_SIDE:
        raise DataError(
            f"images of {X.shape[1]}x{X.shape[2]} pixels (shape {X.shape}) are smaller than the "
            f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} the image encoder needs; if the rows are vectors "
            "saved with an extra axis, reshape them to (n, d)"
        )
    if X.dtype != np.uint8:
        X = X.astype(np.float32, copy=False)
        bad = np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))
        if bad.size:
            raise DataError(f"images contain NaN or inf in rows {_rows(bad.tolist())}")
    return X
