"""Read NumPy files: `.npy` (inputs only) and `.npz` (`x`/`y`, or `x_train`/`y_train`/...).

Shape rules for the inputs array:
- 1-D array of strings -> texts.
- 2-D numeric (any int/float dtype) -> vectors (n, d), converted to float32.
- 3-D -> grayscale images (n, h, w); 4-D channels-last (n, h, w, c) with c in {1, 3}
  (c = 1 is squeezed to (n, h, w)); channels-first (n, c, h, w) with c in {1, 3} is
  transposed to channels-last. uint8 stays uint8; integers in 0..255 become uint8;
  floats become float32.
Files are loaded with `allow_pickle=False`: object arrays are refused, never unpickled.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from contrastkit.data._validate import check_finite_rows, labels_from_array, texts_from_values
from contrastkit.data.dataset import Dataset, RowLocator
from contrastkit.errors import DataError


def _load(path: Path, source: str):
    if path.stat().st_size == 0:
        raise DataError(f"{source} is empty; write the array into it or pass another file.")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            raise DataError(
                f"{source} is not a plain NumPy array file (it may hold pickled Python "
                "objects, which contrastkit does not load for safety); save it with "
                "numpy.save or numpy.savez."
            ) from err
        raise DataError(f"{source} cannot be read as a NumPy file ({err}); save it again.") from err
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"{source} cannot be read as a NumPy file ({err}); it is corrupt or truncated: "
            "save it again."
        ) from err


def _read_member(archive, key: str, source: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as err:
        if "pickle" in str(err):
            raise DataError(
                f"Array '{key}' in {source} holds Python objects, which contrastkit does not "
                "unpickle for safety; save plain numeric or string arrays."
            ) from err
        raise DataError(f"Array '{key}' in {source} cannot be read ({err}).") from err
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"Array '{key}' in {source} cannot be read ({err}); the file is corrupt or "
            "truncated: save it again."
        ) from err


def array_inputs(
    x: np.ndarray, name: str | None, source: str
) -> tuple[str, np.ndarray | list[str]]:
    """(kind, inputs) for an inputs array (`name`: its key in an .npz), by the shape rules."""
    rows = RowLocator.zero_based()
    where = f"Array '{name}' in {source}" if name else source
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{where} holds no rows; save at least one row.")
    if x.dtype.kind in "US" and x.ndim == 1:
        return "text", texts_from_values(x.astype(str).tolist(), name or "x", source, rows)
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where} has dtype {x.dtype}; save numbers (vectors or images).")
    if x.ndim == 1:
        raise DataError(
            f"{where} is 1-D ({len(x)} numbers); vectors need shape (n, d): reshape it to "
            "(n, 1) if each row is one number."
        )
    if x.ndim == 2:
        if x.shape[1] == 0:
            raise DataError(f"{where} has shape {x.shape}: vectors with no dimensions.")
        vectors = np.ascontiguousarray(x, dtype=np.float32)
        check_finite_rows(vectors, where, rows)
        return "vectors", vectors
    if x.ndim == 4:
        if x.shape[-1] not in (1, 3) and x.shape[1] in (1, 3):
            x = np.moveaxis(x, 1, -1)  # channels-first -> channels-last
        if x.shape[-1] not in (1, 3):
            raise DataError(
                f"{where} has shape {x.shape}; images must be (n, h, w), (n, h, w, 1) or "
                "(n, h, w, 3): drop or merge the extra channels."
            )
        if x.shape[-1] == 1:
            x = x[..., 0]
    if x.ndim > 4:
        raise DataError(
            f"{where} has shape {x.shape}; expected vectors (n, d) or images (n, h, w[, c])."
        )
    return "images", _image_values(x, where, rows)


def _image_values(x: np.ndarray, where: str, rows: RowLocator) -> np.ndarray:
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if x.dtype.kind == "f":
        images = np.ascontiguousarray(x, dtype=np.float32)
        check_finite_rows(images, where, rows)
        return images
    low, high = x.min(), x.max()
    if low < 0 or high > 255:
        raise DataError(
            f"{where} holds integer pixels from {low} to {high}; save images as uint8 "
            "(0..255) or as floats."
        )
    return np.ascontiguousarray(x, dtype=np.uint8)


def read_npy(path: Path, source: str, split: str | None) -> Dataset:
    """An `.npy` array of inputs (no labels)."""
    if split == "test":
        raise DataError(f"{source} has no test split (an .npy holds one array); pass a test file.")
    x = _load(path, source)
    if not isinstance(x, np.ndarray):
        x.close()
        raise DataError(f"{source} is an .npz archive, not an .npy array; rename it to .npz.")
    kind, inputs = array_inputs(x, None, source)
    return Dataset(kind=kind, inputs=inputs, labels=None, source=source, format="npy")


def npz_keys(split: str | None, keys: list[str]) -> tuple[str, str] | None:
    """(inputs key, labels key) for `split`, or None when the file lacks that split."""
    if split in (None, "train"):
        if "x_train" in keys:
            return "x_train", "y_train"
        if "x" in keys:
            return "x", "y"
        return None
    return (f"x_{split}", f"y_{split}") if f"x_{split}" in keys else None


def read_npz(path: Path, source: str, split: str | None) -> Dataset:
    """An `.npz` with `x` (+ optional `y`) or `x_train`/`y_train`/`x_test`/`y_test`."""
    archive = _load(path, source)
    if isinstance(archive, np.ndarray):
        raise DataError(f"{source} is a single .npy array, not an .npz archive; rename it to .npy.")
    with archive:
        keys = list(archive.files)
        chosen = npz_keys(split, keys)
        if chosen is None:
            wanted = f"'x_{split}'" if split == "test" else "'x' or 'x_train'"
            raise DataError(
                f"{source} has no array {wanted} (it holds: {', '.join(keys) or 'nothing'}); "
                "save inputs as 'x' (labels 'y') or as 'x_train'/'y_train'/'x_test'/'y_test'."
            )
        x_key, y_key = chosen
        x = _read_member(archive, x_key, source)
        kind, inputs = array_inputs(x, x_key, source)
        labels = None
        if y_key in keys:
            y = _read_member(archive, y_key, source)
            labels = labels_from_array(y, y_key, source, len(inputs))
    return Dataset(
        kind=kind,
        inputs=inputs,
        labels=labels,
        source=source,
        format="npz",
        label_column=y_key if labels is not None else None,
        split=split,
    )
