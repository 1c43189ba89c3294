"""Decide which columns of a table hold the inputs and the labels, and extract them.

Rules (the public contract, plus the choices made where it is silent):

1. `pair_columns` given: two text columns -> kind "pairs".
2. `vector_column` given: a column of number lists -> kind "vectors".
3. `text_column` given, or a column named `text` exists -> kind "text".
4. A column of number lists (Parquet/JSON lists; in CSV only with `vector_column`):
   the one named embedding/embeddings/vector/vectors/features, or the only one -> vectors.
5. Columns `sentence1` and `sentence2` (STS-B style) -> pairs.
6. Every column except the label column holds numbers -> vectors, one column per dimension
   (at least two). Without a `label` column, the single non-numeric column (if exactly one,
   and with repeated values, as labels have) is the label.
7. Otherwise: a DataError listing the columns present.

Labels: `label_column` if given; else a column named `label`; else, when exactly one column
is left besides the inputs, that one. Columns pandas names `Unnamed: N` (a saved index
with an empty header) are ignored by the automatic choices.
"""

from __future__ import annotations

import json

import numpy as np

from contrastkit.data._validate import (
    check_finite_rows,
    is_missing,
    labels_from_values,
    texts_from_values,
)
from contrastkit.data.dataset import Dataset
from contrastkit.data.tabular import Column, Table, is_list_column, numeric_fraction
from contrastkit.errors import DataError

VECTOR_COLUMN_NAMES = ("embedding", "embeddings", "vector", "vectors", "features")
PAIR_COLUMN_NAMES = ("sentence1", "sentence2")


def table_to_dataset(
    table: Table,
    *,
    text_column: str | None,
    label_column: str | None,
    vector_column: str | None,
    pair_columns: tuple[str, str] | None,
    require_labels: bool | str,
) -> Dataset:
    """Apply the column rules in this module's docstring and build the `Dataset`."""
    names = list(table.columns)
    listed = ", ".join(names)
    for column, option in [
        (text_column, "text_column"),
        (label_column, "label_column"),
        (vector_column, "vector_column"),
        *[(c, "pair_columns") for c in (pair_columns or ())],
    ]:
        if column is not None and column not in table.columns:
            raise DataError(
                f"{table.source} has no column '{column}' (given as {option}); "
                f"columns present: {listed}."
            )
    usable = [n for n in names if not n.startswith("Unnamed: ")]
    source, rows = table.source, table.rows
    dataset = Dataset(kind="text", inputs=[], labels=None, source=source, format=table.format)

    if pair_columns is None and vector_column is None and text_column is None:
        if "text" in table.columns:
            text_column = "text"
        else:
            vector_column = _find_list_column(table, usable)
            if vector_column is None and all(c in table.columns for c in PAIR_COLUMN_NAMES):
                pair_columns = PAIR_COLUMN_NAMES

    if pair_columns is not None:
        first, second = pair_columns
        a = texts_from_values(table.columns[first], first, source, rows)
        b = texts_from_values(table.columns[second], second, source, rows)
        dataset.kind, dataset.inputs = "pairs", list(zip(a, b, strict=True))
        dataset.pair_columns = (first, second)
        input_columns = [first, second]
    elif vector_column is not None:
        dataset.kind, dataset.vector_column = "vectors", vector_column
        dataset.inputs = _vectors_from_lists(table, vector_column)
        input_columns = [vector_column]
    elif text_column is not None:
        dataset.inputs = texts_from_values(table.columns[text_column], text_column, source, rows)
        dataset.text_column = text_column
        input_columns = [text_column]
    else:
        label_column, features = _numeric_layout(table, usable, label_column)
        dataset.kind, dataset.feature_columns = "vectors", features
        dataset.inputs = _vectors_from_columns(table, features)
        input_columns = features

    if label_column is None:
        label_column = _default_label_column(table, usable, input_columns)
    if label_column is not None:
        if label_column in input_columns:
            raise DataError(
                f"Column '{label_column}' of {source} cannot be both an input and the labels; "
                "pass a different label_column."
            )
        values = table.columns[label_column]
        dataset.label_column = label_column
        dataset.labels = labels_from_values(
            list(values), label_column, source, rows, from_text=table.from_text
        )
    elif require_labels is True or (require_labels == "rows" and dataset.kind != "pairs"):
        raise DataError(
            f"{source} has no label column (no column named 'label', and not exactly one "
            f"column besides the inputs); columns present: {listed}; pass label_column."
        )
    return dataset


def _default_label_column(table: Table, usable: list[str], inputs: list[str]) -> str | None:
    if "label" in table.columns and "label" not in inputs:
        return "label"
    others = [c for c in usable if c not in inputs]
    return others[0] if len(others) == 1 else None


def _find_list_column(table: Table, usable: list[str]) -> str | None:
    lists = [c for c in usable if is_list_column(table.columns[c])]
    named = [c for c in lists if c.lower() in VECTOR_COLUMN_NAMES]
    if len(named) == 1 or len(lists) == 1:
        return (named or lists)[0]
    if lists:
        raise DataError(
            f"{table.source} has several columns of number lists ({', '.join(lists)}); "
            "pass vector_column to say which one holds the vectors."
        )
    return None


def _numeric_layout(
    table: Table, usable: list[str], label_column: str | None
) -> tuple[str | None, list[str]]:
    """(label column, feature columns) for a table of numbers, or the 'no text column' error."""
    if label_column is None and "label" in table.columns:
        label_column = "label"
    rest = [c for c in usable if c != label_column]
    numeric = {c: numeric_fraction(table.columns[c]) >= 0.5 for c in rest}
    non_numeric = [c for c in rest if not numeric[c]]
    if label_column is None and len(non_numeric) == 1 and len(rest) > 1:
        label_column = non_numeric.pop()
        labels = table.columns[label_column]
        if len(set(map(str, labels))) == len(labels):  # all distinct: texts or ids, not labels
            non_numeric.append(label_column)
    features = [c for c in rest if c != label_column]
    if non_numeric or len(features) < 2:
        raise DataError(
            f"{table.source} has no text column 'text' and is not a table of numbers; "
            f"columns present: {', '.join(table.columns)}; pass text_column (or "
            "vector_column / pair_columns) to name the input column."
        )
    return label_column, features


def _vectors_from_columns(table: Table, features: list[str]) -> np.ndarray:
    """One column per dimension; a non-numeric value is an error naming its row."""
    import pandas as pd

    out = np.empty((table.n_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        column = table.columns[name]
        if isinstance(column, np.ndarray) and column.dtype.kind in "iuf":
            out[:, j] = column
            continue
        values = pd.Series(list(column), dtype=object)
        parsed = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        nan_token = values.map(lambda v: isinstance(v, str) and v.strip().lower() == "nan")
        failed = np.isnan(parsed) & ~nan_token.to_numpy(dtype=bool)
        failed &= ~values.map(lambda v: isinstance(v, float)).to_numpy(dtype=bool)
        if failed.any():
            i = int(np.flatnonzero(failed)[0])
            value = values.iloc[i]
            what = "a missing value" if is_missing(value) else f"the non-numeric value {value!r}"
            raise DataError(
                f"Column '{name}' of {table.source} has {what} at {table.rows.one(i)} "
                f"({int(failed.sum())} row(s) in all); vector columns must hold numbers only."
            )
        out[:, j] = parsed
    check_finite_rows(out, f"The vector table {table.source}", table.rows)
    return out


def _vectors_from_lists(table: Table, name: str) -> np.ndarray:
    column: Column = table.columns[name]
    if isinstance(column, list | np.ndarray):
        vectors = _lists_to_matrix(list(column), name, table)
    else:
        vectors = _arrow_lists_to_matrix(column, name, table)
    check_finite_rows(vectors, f"Column '{name}' of {table.source}", table.rows)
    return vectors


def _lists_to_matrix(values: list, name: str, table: Table) -> np.ndarray:
    parsed: list = []
    for i, value in enumerate(values):
        if isinstance(value, str):  # CSV: "[0.1, 0.2, ...]"
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = None
        if not isinstance(value, list | tuple | np.ndarray):
            raise DataError(
                f"Column '{name}' of {table.source} has no list of numbers at "
                f"{table.rows.one(i)}; every row needs a vector like [0.1, 0.2, ...]."
            )
        parsed.append(value)
    lengths = np.fromiter((len(v) for v in parsed), dtype=np.int64, count=len(parsed))
    _check_lengths(lengths, name, table)
    try:
        return np.asarray(parsed, dtype=np.float32)
    except (TypeError, ValueError) as err:
        bad = next(i for i, v in enumerate(parsed) if not _all_numbers(v))
        raise DataError(
            f"Column '{name}' of {table.source} has a non-numeric element at "
            f"{table.rows.one(bad)}; vectors must hold numbers only."
        ) from err


def _all_numbers(values: object) -> bool:
    try:
        np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


def _arrow_lists_to_matrix(column: Column, name: str, table: Table) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks()
    if array.null_count:
        first = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(
            f"Column '{name}' of {table.source} has a missing vector at "
            f"{table.rows.one(first)} ({array.null_count} in all); fill or remove those rows."
        )
    value_type = array.type.value_type
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type)):
        raise DataError(
            f"Column '{name}' of {table.source} holds lists of {value_type}, not numbers; "
            "store vectors as lists of floats."
        )
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
    _check_lengths(lengths, name, table)
    flat = array.flatten()
    values = flat.to_numpy(zero_copy_only=False).astype(np.float32)  # nulls become NaN
    return values.reshape(len(array), int(lengths[0]) if len(lengths) else 0)


def _check_lengths(lengths: np.ndarray, name: str, table: Table) -> None:
    if len(lengths) and lengths[0] == 0:
        raise DataError(f"Column '{name}' of {table.source} holds empty vectors; check the file.")
    differ = np.flatnonzero(lengths != lengths[0])
    if len(differ):
        i = int(differ[0])
        raise DataError(
            f"Vectors in column '{name}' of {table.source} have mixed lengths: "
            f"{lengths[0]} at {table.rows.one(0)} but {lengths[i]} at {table.rows.one(i)}; "
            "every vector must have the same length."
        )
