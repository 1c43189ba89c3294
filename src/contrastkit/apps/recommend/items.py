"""The items file: an id column, text columns (titles, descriptions, genres) and/or a vector
column, read into an `ItemTable`."""

from __future__ import annotations

import os

import numpy as np

from contrastkit.apps.recommend.data import ItemTable, id_strings, read_table, table_from_frame
from contrastkit.data.columns import table_to_dataset
from contrastkit.data.tabular import Table
from contrastkit.errors import DataError

# Text columns used when none are named: what describes an item, in the file's order.
TEXT_COLUMN_NAMES = (
    "title", "name", "text", "description", "overview", "summary", "genres", "genre", "tags",
    "categories", "category", "keywords",
)  # fmt: skip
GENRE_COLUMN_NAMES = ("genres", "genre", "category", "categories")
TITLE_COLUMN_NAMES = ("title", "name")
LIST_SEPARATOR = "|"  # multi-valued fields (MovieLens genres: Animation|Comedy)


def read_items(
    source,
    *,
    item_column: str = "item",
    text_columns: list[str] | None = None,
    vector_column: str | None = None,
) -> ItemTable:
    """An items file (CSV/TSV/JSONL/Parquet path) or a pandas DataFrame as an `ItemTable`."""
    if isinstance(source, str | os.PathLike):
        table = read_table(source, "items")
    else:
        table = table_from_frame(source, "the items DataFrame")
    return items_from_table(table, item_column, text_columns, vector_column)


def items_from_table(
    table: Table, item_column: str, text_columns: list[str] | None, vector_column: str | None
) -> ItemTable:
    ids = id_strings(table, item_column, "item column")
    repeated = _first_repeat(ids)
    if repeated is not None:
        raise DataError(
            f"item {repeated!r} appears more than once in {table.source}; give each item one row"
        )
    names = [c for c in table.columns if c not in (item_column, vector_column)]
    if text_columns is None and vector_column is None:
        text_columns = [c for c in names if c.lower() in TEXT_COLUMN_NAMES]
        if not text_columns:
            raise DataError(
                f"{table.source} has no column named like a description "
                f"({', '.join(TEXT_COLUMN_NAMES[:6])}, ...); name its text columns with "
                f"--item-text-columns (columns present: {', '.join(table.columns)})"
            )
    for name in text_columns or []:
        if name not in table.columns:
            raise DataError(
                f"{table.source} has no column '{name}' (given in --item-text-columns); columns "
                f"present: {', '.join(table.columns)}"
            )
    items = ItemTable(ids, source=table.source)
    if text_columns:
        fields = [[_field(v) for v in table.columns[c]] for c in text_columns]
        items.texts = [". ".join(f for f in row if f) for row in zip(*fields, strict=True)]
    title = _pick(names, TITLE_COLUMN_NAMES) or (text_columns[0] if text_columns else None)
    if title is not None:
        items.titles = [_field(v) for v in table.columns[title]]
    if vector_column is not None:
        dataset = table_to_dataset(
            table,
            text_column=None,
            label_column=item_column,
            vector_column=vector_column,
            pair_columns=None,
            require_labels=False,
        )
        items.vectors = np.asarray(dataset.inputs, dtype=np.float32)
    genre = _pick(names, GENRE_COLUMN_NAMES)
    if genre is not None:
        items.genres = [_field(v).split(", ")[0] or "(none)" for v in table.columns[genre]]
    return items


def _field(value: object) -> str:
    """One cell as text: missing -> '', 'a|b' -> 'a, b'."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = str(value).strip()
    return ", ".join(p.strip() for p in text.split(LIST_SEPARATOR) if p.strip())


def _pick(names: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {n.lower(): n for n in names}
    return next((lower[w] for w in wanted if w in lower), None)


def _first_repeat(ids: np.ndarray) -> str | None:
    import pandas as pd

    repeated = pd.Series(ids).duplicated()
    return str(ids[int(np.flatnonzero(repeated.to_numpy())[0])]) if repeated.any() else None
