"""Checks shared by every reader: texts, labels and numbers, with messages that name rows."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence

import numpy as np

from contrastkit.data.dataset import RowLocator
from contrastkit.errors import DataError

_INTEGER = re.compile(r"[+-]?\d+")


def is_missing(value: object) -> bool:
    """None, a float NaN, or a string that is empty or only whitespace."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return False


def texts_from_values(
    values: Sequence[object], column: str, source: str, rows: RowLocator
) -> list[str]:
    """Texts as given (not stripped); numbers become strings; empty texts are an error."""
    texts: list[str] = []
    empty: list[int] = []
    for i, value in enumerate(values):
        if is_missing(value):
            empty.append(i)
            texts.append("")
        elif isinstance(value, str):
            texts.append(value)
        elif isinstance(value, bool | numbers.Number):
            texts.append(str(value))
        else:
            raise DataError(
                f"Column '{column}' of {source} holds a {type(value).__name__} at "
                f"{rows.one(i)} where a text was expected; store each text as a string."
            )
    if empty:
        raise DataError(
            f"Column '{column}' of {source} has {len(empty)} empty or whitespace-only "
            f"text(s) at {rows.describe(empty)}; remove those rows."
        )
    return texts


def _label_kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, numbers.Integral):
        return "integer"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _parse_number(text: str) -> int | float | None:
    if _INTEGER.fullmatch(text):
        return int(text)
    if "_" in text:  # Python accepts "1_000"; a CSV label like that is a string
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def labels_from_values(
    values: Sequence[object], column: str, source: str, rows: RowLocator, *, from_text: bool
) -> np.ndarray:
    """Raw labels as a 1-D array: int64 if all whole numbers, float64 if all numbers, else str.

    `from_text` says the values were read as strings (CSV/TSV): there "7" counts as the
    integer 7, and a column mixing "7" and "cat" is a column of strings. Typed values
    (JSON, Parquet) mixing numbers and strings are an error.
    """
    missing = [i for i, v in enumerate(values) if is_missing(v)]
    if missing:
        raise DataError(
            f"Label column '{column}' of {source} has {len(missing)} missing label(s) at "
            f"{rows.describe(missing)}; fill them in or remove those rows."
        )
    if from_text:
        stripped = [str(v).strip() for v in values]
        parsed = [_parse_number(v) for v in stripped]
        if all(p is not None for p in parsed):
            if all(float(p).is_integer() for p in parsed):  # "7" and "7.0" both mean 7
                return np.asarray([int(p) for p in parsed], dtype=np.int64)
            return np.asarray(parsed, dtype=np.float64)
        return np.asarray(stripped, dtype=object)

    first_of_kind: dict[str, int] = {}
    for i, value in enumerate(values):
        first_of_kind.setdefault(_label_kind(value), i)
    kinds = set(first_of_kind)
    allowed = {"boolean", "integer", "number", "string"}
    if not kinds <= allowed:
        bad = sorted(kinds - allowed)[0]
        raise DataError(
            f"Label column '{column}' of {source} holds a {bad} at "
            f"{rows.one(first_of_kind[bad])}; labels must be strings or numbers."
        )
    if len(kinds) > 1 and not kinds <= {"integer", "number"}:
        (k1, i1), (k2, i2) = sorted(first_of_kind.items(), key=lambda kv: kv[1])[:2]
        raise DataError(
            f"Label column '{column}' of {source} mixes label types: {k1} {values[i1]!r} at "
            f"{rows.one(i1)} and {k2} {values[i2]!r} at {rows.one(i2)}; "
            "make every label the same type."
        )
    if kinds == {"string"}:
        return np.asarray(list(values), dtype=object)
    numbers_ = np.asarray([float(v) for v in values], dtype=np.float64)
    if not np.isfinite(numbers_).all():
        bad_rows = np.flatnonzero(~np.isfinite(numbers_))
        raise DataError(
            f"Label column '{column}' of {source} has infinite labels at "
            f"{rows.describe(bad_rows)}; fix or remove those rows."
        )
    if kinds <= {"integer", "boolean"} or np.all(numbers_ == np.round(numbers_)):
        return np.asarray([int(v) for v in values], dtype=np.int64)
    return numbers_


def labels_from_array(y: np.ndarray, name: str, source: str, n_rows: int) -> np.ndarray:
    """Labels stored as a NumPy array (NPZ): 1-D, one per row, no NaN or empty strings."""
    rows = RowLocator.zero_based()
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"Array '{name}' in {source} has shape {y.shape}; labels must be 1-D, one per row."
        )
    if len(y) != n_rows:
        raise DataError(
            f"Array '{name}' in {source} holds {len(y)} labels for {n_rows} rows; "
            "save exactly one label per row."
        )
    if y.dtype.kind in "US":
        values = y.astype(str).tolist()
        return labels_from_values(values, name, source, rows, from_text=False)
    if y.dtype.kind == "b" or y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y))
        if len(bad):
            raise DataError(
                f"Array '{name}' in {source} has missing (NaN) or infinite labels at "
                f"{rows.describe(bad)}; fix or remove those rows."
            )
        if np.all(y == np.round(y)):
            return y.astype(np.int64)
        return y.astype(np.float64)
    raise DataError(
        f"Array '{name}' in {source} has dtype {y.dtype}; labels must be integers or strings."
    )


def check_finite_rows(x: np.ndarray, where: str, rows: RowLocator) -> None:
    """Raise naming the first rows of `x` that hold NaN or infinity; `where` names the data."""
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if finite.all():
        return
    bad = np.flatnonzero(~finite)
    raise DataError(
        f"{where} has NaN or infinite values in {len(bad)} row(s), at "
        f"{rows.describe(bad)}; fix or remove those rows."
    )
