"""Files in and out of the applications: rows to index or deduplicate with their ids and
metadata, ids to remove, and result tables written atomically."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from contrastkit.data import read_dataset
from contrastkit.data.columns import table_to_dataset
from contrastkit.data.tabular import read_delimited, read_json_records, read_parquet
from contrastkit.errors import DataError
from contrastkit.io.atomic import atomic_file

TABLE_READERS = {
    ".csv": lambda path, source: read_delimited(path, source, ","),
    ".tsv": lambda path, source: read_delimited(path, source, "\t"),
    ".jsonl": read_json_records,
    ".json": read_json_records,
    ".parquet": read_parquet,
}
OUTPUT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


@dataclass
class InputRows:
    """Rows read from a file: the inputs to embed (texts or vectors), and ids, texts and
    metadata when the file has them."""

    inputs: list[str] | np.ndarray
    kind: str
    ids: list | None
    metadata: pd.DataFrame | None
    source: str

    @property
    def texts(self) -> list[str] | None:
        return list(self.inputs) if self.kind == "text" else None


def read_rows(
    path: str | Path,
    *,
    text_column: str | None = None,
    vector_column: str | None = None,
    id_column: str | None = None,
    metadata_columns: Sequence[str] | None = None,
) -> InputRows:
    """Rows of a CSV/TSV/JSONL/Parquet table (or vectors from .npy/.npz). Ids: `id_column`,
    else a column named id. Metadata: the given columns, or (None) every column that is not
    the input or the id."""
    path = Path(path)
    source = str(path)
    reader = TABLE_READERS.get(path.suffix.lower())
    if reader is None or not path.is_file():
        if id_column or metadata_columns:
            raise DataError(
                f"{source} is not a table file; ids and metadata need CSV/TSV/JSONL/Parquet"
            )
        data = read_dataset(path, text_column=text_column, vector_column=vector_column)
        return InputRows(data.inputs, _checked_kind(data.kind, source), None, None, source)
    table = reader(path, source)
    data = table_to_dataset(
        table, text_column=text_column, label_column=None, vector_column=vector_column,
        pair_columns=None, require_labels=False,
    )  # fmt: skip
    kind = _checked_kind(data.kind, source)
    used = {data.text_column, data.vector_column, *(data.feature_columns or [])}
    if id_column is None and "id" in table.columns and "id" not in used:
        id_column = "id"
    for name in [id_column, *(metadata_columns or [])]:
        if name is not None and name not in table.columns:
            raise DataError(
                f"{source} has no column {name!r}; columns present: {', '.join(table.columns)}"
            )
    ids = None if id_column is None else parse_ids(_values(table.columns[id_column]))
    names = metadata_columns
    if names is None:
        names = [c for c in table.columns if c not in used and c != id_column]
    metadata = pd.DataFrame({c: _values(table.columns[c]) for c in names}) if names else None
    return InputRows(data.inputs, kind, ids, metadata, source)


def _checked_kind(kind: str, source: str) -> str:
    if kind not in ("text", "vectors"):
        raise DataError(
            f"{source} holds {kind}; give a file with a text column (--text-column) or vectors "
            "(--vector-column)"
        )
    return kind


def _values(column) -> list:
    if isinstance(column, np.ndarray):
        return column.tolist()
    if hasattr(column, "to_pylist"):
        return column.to_pylist()
    return list(column)


def parse_ids(values: Sequence) -> list:
    """Ids as read from a file: whole numbers written as text become ints, others stay str."""
    values = list(values)
    if all(isinstance(v, str) and re.fullmatch(r"-?\d{1,18}", v.strip()) for v in values):
        return [int(v) for v in values]
    if all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in values):
        return values
    raise DataError("ids must be whole numbers or strings; check the id column")


def read_ids(path: str | Path) -> list:
    """Ids to remove: a text file with one id a line (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; give a text file with one id a line")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    ids = [line for line in lines if line]
    if not ids:
        raise DataError(f"{path} holds no ids; write one id a line")
    return parse_ids(ids)


def check_table_name(path: str | Path) -> str:
    """The suffix of a table to write (.csv, .tsv, .jsonl or .parquet), or a DataError."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise DataError(f"cannot write {path}: use a name ending in {', '.join(OUTPUT_SUFFIXES)}")
    return suffix


def write_table(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write `frame` to .csv, .tsv, .jsonl or .parquet, atomically."""
    path = Path(path)
    suffix = check_table_name(path)
    with atomic_file(path) as tmp:
        if suffix in (".csv", ".tsv"):
            frame.to_csv(tmp, index=False, sep="," if suffix == ".csv" else "\t")
        elif suffix == ".jsonl":
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            frame.to_parquet(tmp, index=False)
    return path
