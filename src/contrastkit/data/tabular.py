"""Read CSV, TSV, JSON Lines and Parquet files into a `Table` of named columns.

A column is a NumPy array (numbers, or str objects as read from CSV/TSV), a list of Python
values (JSON) or a pyarrow ChunkedArray (list-typed Parquet columns, kept in Arrow so that
large embedding columns convert without a Python loop). Every failure of pandas or pyarrow
is re-raised as a `DataError` naming the file.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contrastkit.data.dataset import RowLocator
from contrastkit.errors import DataError

Column = Any  # np.ndarray | list[object] | pyarrow.ChunkedArray


@dataclass
class Table:
    """Named columns of equal length, read from one file."""

    columns: dict[str, Column]
    n_rows: int
    rows: RowLocator
    source: str
    format: str
    from_text: bool  # True when every value was read as a string (CSV/TSV)


def decode_utf8(path: Path, source: str) -> str:
    """The file's text; a DataError naming the line and byte when it is not UTF-8."""
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{source} is empty; write the data into it or pass another file.")
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0  # UTF-8 byte-order mark
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as err:
        pos = start + err.start
        line = data.count(b"\n", 0, pos) + 1
        column = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        raise DataError(
            f"{source} is not valid UTF-8: byte 0x{data[pos]:02X} at line {line}, column "
            f"{column} (byte offset {pos}) cannot be decoded; re-save the file as UTF-8."
        ) from err


def _csv_line_locator(text: str, sep: str) -> RowLocator:
    """Line numbers of data rows, found only when an error needs them (quoted newlines count)."""

    @functools.cache
    def starts() -> list[int]:
        reader = csv.reader(io.StringIO(text), delimiter=sep)
        found, end = [], 0
        for record in reader:
            first, end = end + 1, reader.line_num
            if record:  # pandas skips blank lines too
                found.append(first)
        return found[1:]  # the header is not a data row

    return RowLocator("line", lambda idx: [starts()[i] for i in idx])


def read_delimited(path: Path, source: str, sep: str) -> Table:
    """CSV (sep ',') or TSV (sep '\\t') with a header row; every value kept as a string."""
    import pandas as pd

    fmt = "CSV" if sep == "," else "TSV"
    text = decode_utf8(path, source)
    sep = _separator(text, sep)
    _check_header(text, sep, source)
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False
        )
    except pd.errors.ParserError as err:
        detail = " ".join(str(err).split()).replace("Error tokenizing data. C error: ", "")
        raise DataError(
            f"{source} cannot be parsed as {fmt} ({detail}); make every row have as many "
            "fields as the header and close every quote."
        ) from err
    except (pd.errors.EmptyDataError, ValueError) as err:
        raise DataError(f"{source} cannot be parsed as {fmt} ({err}); check the file.") from err
    if len(frame) == 0:
        raise DataError(
            f"{source} has a header ({', '.join(map(str, frame.columns))}) but no data rows; "
            "add rows or pass another file."
        )
    columns = {str(c): frame[c].to_numpy(dtype=object) for c in frame.columns}
    return Table(columns, len(frame), _csv_line_locator(text, sep), source, fmt.lower(), True)


_SEPARATORS = (",", "\t", ";", "|")


def _separator(text: str, expected: str) -> str:
    """The separator the header row uses: `expected` (by the file's extension) when it holds
    it, else the one of ; tab | , that it holds (a .csv written with semicolons, say)."""
    header = text.lstrip("\n").split("\n", 1)[0]
    if expected in header:
        return expected
    found = [s for s in _SEPARATORS if s in header]
    return found[0] if len(found) == 1 else expected


def _check_header(text: str, sep: str, source: str) -> None:
    """A header naming a column twice is refused: one of the two would be read under another
    name or lost."""
    header = next(csv.reader(io.StringIO(text.lstrip("\n")), delimiter=sep), [])
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(
                f"{source} names the column {name!r} twice in its header; rename one of them."
            )
        seen.add(name)


def read_json_records(path: Path, source: str) -> Table:
    """JSON Lines (one object per line), or a JSON file holding a list of objects."""
    text = decode_utf8(path, source)
    records: list[dict] = []
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{source} is not valid JSON ({err.msg} at line {err.lineno}, column "
                f"{err.colno}); fix the file or write one object per line (JSON Lines)."
            ) from err
        rows = RowLocator.one_based("record")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise DataError(
                    f"Record {i + 1} of {source} is a JSON {type(item).__name__}, not an "
                    'object; write each row as {"text": ..., "label": ...}.'
                )
            records.append(item)
    else:
        line_numbers: list[int] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    f"Line {number} of {source} is not valid JSON ({err.msg} at column "
                    f"{err.colno}); fix or remove that line (each line must be one JSON object)."
                ) from err
            if not isinstance(item, dict):
                raise DataError(
                    f"Line {number} of {source} is a JSON {type(item).__name__}, not an object; "
                    'write each line as {"text": ..., "label": ...}.'
                )
            records.append(item)
            line_numbers.append(number)
        rows = RowLocator.from_lines(line_numbers)
    if not records:
        raise DataError(f"{source} holds no records; add rows or pass another file.")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {name: [r.get(name) for r in records] for name in names}
    return Table(columns, len(records), rows, source, "jsonl", False)


def read_parquet(path: Path, source: str) -> Table:
    """Parquet via pyarrow; list-typed columns stay in Arrow, numbers become NumPy arrays."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise DataError(f"{source} is empty; write the data into it or pass another file.")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as err:
        detail = " ".join(str(err).split())  # one line: pyarrow messages span several
        detail = re.sub(r"^Could not open Parquet input source '.*?': ", "", detail)
        raise DataError(
            f"{source} cannot be read as Parquet ({detail}); the file is corrupt or "
            "truncated: export it again."
        ) from err
    if table.num_rows == 0:
        raise DataError(
            f"{source} has columns ({', '.join(table.column_names)}) but no rows; "
            "add rows or pass another file."
        )
    columns: dict[str, Column] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if (
            pa.types.is_list(kind)
            or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)
        ):
            columns[name] = column
        elif (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and not column.null_count:
            columns[name] = column.to_numpy()
        else:
            columns[name] = column.to_pylist()
    rows = RowLocator.zero_based()
    return Table(columns, table.num_rows, rows, source, "parquet", False)


def is_list_column(column: Column) -> bool:
    """A column whose values are lists of numbers (Arrow list type, or JSON lists)."""
    if isinstance(column, np.ndarray):
        return False
    if not isinstance(column, list):
        return True  # pyarrow ChunkedArray of a list type
    first = next((v for v in column if v is not None), None)
    return isinstance(first, list)


def numeric_fraction(column: Column) -> float:
    """Share of present values that are numbers (strings that parse as numbers count)."""
    import pandas as pd

    if isinstance(column, np.ndarray) and column.dtype.kind in "iuf":
        return 1.0
    if not isinstance(column, np.ndarray | list):
        return 0.0
    present = [v for v in column if v is not None and not (isinstance(v, str) and not v.strip())]
    if not present:
        return 0.0
    if all(isinstance(v, str) for v in present):
        parsed = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
        return float(parsed.notna().mean())
    numeric = [isinstance(v, int | float) and not isinstance(v, bool) for v in present]
    return float(np.mean(numeric))
