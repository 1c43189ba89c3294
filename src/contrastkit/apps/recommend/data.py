"""Interactions and items: read from a file or a pandas DataFrame, checked, and indexed.

Users and items are known by their ids as strings (`196`, `"tt0114709"`); inside, they are
rows 0..n-1 of `user_ids` and `item_ids`. The catalogue holds every item of the items file
(an item nobody interacted with yet is a cold item with its text) and every item of the
interactions file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from contrastkit.data.dataset import RowLocator
from contrastkit.data.tabular import Table, read_delimited, read_json_records, read_parquet
from contrastkit.errors import ConfigError, DataError

TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class Columns:
    """Column names of the interactions file; rating and timestamp are used when present."""

    user: str = "user"
    item: str = "item"
    rating: str | None = None  # None: the column 'rating', if there is one
    timestamp: str | None = None  # None: the column 'timestamp', if there is one


@dataclass
class Interactions:
    """Positive interactions: rows of `user_ids` and `item_ids`, with times when known."""

    users: np.ndarray  # int64
    items: np.ndarray  # int64
    timestamps: np.ndarray | None  # float64, or None (then the order of the file)
    user_ids: np.ndarray  # str objects
    item_ids: np.ndarray  # str objects (the whole catalogue)
    source: str = "memory"
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


@dataclass
class ItemTable:
    """What the items file says about each item: text, vector, title, genre."""

    ids: np.ndarray  # str objects, unique
    texts: list[str] | None = None
    vectors: np.ndarray | None = None
    titles: list[str] | None = None
    genres: list[str] | None = None  # the first genre of each item, for the map's colours
    source: str = "memory"


def read_table(path: str | os.PathLike, what: str) -> Table:
    """A CSV/TSV/JSONL/Parquet file as named columns; `what` names the file in errors."""
    source = os.fspath(path)
    resolved = Path(source).expanduser()
    if not resolved.is_file():
        raise DataError(f"the {what} file {source} does not exist; check the path")
    suffix = resolved.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return read_delimited(resolved, source, "," if suffix == ".csv" else "\t")
    if suffix == ".parquet":
        return read_parquet(resolved, source)
    if suffix in (".jsonl", ".json"):
        return read_json_records(resolved, source)
    raise DataError(
        f"the {what} file {source} has an unsupported extension '{resolved.suffix}'; use one of "
        f"{', '.join(TABLE_EXTENSIONS)}"
    )


def table_from_frame(frame, source: str) -> Table:
    """A pandas DataFrame as a `Table`, so files and frames go through the same checks."""
    columns = {str(c): frame[c].to_numpy() for c in frame.columns}
    if len(frame) == 0:
        raise DataError(f"{source} has no rows; pass at least one interaction")
    return Table(columns, len(frame), RowLocator.zero_based(), source, "memory", False)


def _column(table: Table, name: str, option: str) -> np.ndarray:
    if name not in table.columns:
        raise DataError(
            f"{table.source} has no column '{name}' (the {option}); columns present: "
            f"{', '.join(table.columns)}; name the right one with --{option.replace(' ', '-')}"
        )
    values = table.columns[name]
    return values if isinstance(values, np.ndarray) else np.asarray(list(values), dtype=object)


def id_strings(table: Table, name: str, option: str) -> np.ndarray:
    """The ids of a column as strings (1.0 read as a number is the id '1'); none may be missing."""
    import pandas as pd

    values = pd.Series(_column(table, name, option))
    absent = values.isna().to_numpy()
    if values.dtype.kind == "f" and not absent.any() and bool((values % 1 == 0).all()):
        values = values.astype(np.int64)
    text = values.astype(str).str.strip()
    missing = absent | (text == "").to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing)
        raise DataError(
            f"column '{name}' of {table.source} has {len(rows)} missing id(s), the first at "
            f"{table.rows.one(int(rows[0]))}; fill them in or remove those rows"
        )
    return text.to_numpy(dtype=object)


def numbers(table: Table, name: str, what: str) -> np.ndarray:
    """A column of numbers as float64; a value that is not a number is named with its row."""
    import pandas as pd

    raw = pd.Series(_column(table, name, f"{what} column"))
    parsed = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(parsed)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column '{name}' of {table.source} holds {raw.iloc[i]!r} at {table.rows.one(i)}, "
            f"not a {what}; every {what} must be a finite number ({int(bad.sum())} bad row(s))"
        )
    return parsed


def timestamps_of(table: Table, name: str) -> np.ndarray:
    """Numbers, or dates and times in a form pandas reads (ISO 8601), as float seconds."""
    import pandas as pd

    raw = pd.Series(_column(table, name, "timestamp column"))
    as_numbers = pd.to_numeric(raw, errors="coerce")
    if as_numbers.notna().all():
        return numbers(table, name, "timestamp")
    parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
    if parsed.isna().any():
        i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(
            f"column '{name}' of {table.source} holds {raw.iloc[i]!r} at {table.rows.one(i)}, "
            "which is neither a number nor a date; write times as numbers or ISO 8601 dates"
        )
    return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)


@dataclass
class RawInteractions:
    """Interactions as read: ids as strings, times as numbers (or None)."""

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None
    source: str
    notes: list[str] = field(default_factory=list)


def interactions_from_table(
    table: Table, columns: Columns = Columns(), min_rating: float | None = None
) -> RawInteractions:
    """The positive interactions of a table: with `min_rating`, those rated at least that."""
    users = id_strings(table, columns.user, "user column")
    items = id_strings(table, columns.item, "item column")
    rating = columns.rating or ("rating" if "rating" in table.columns else None)
    stamp = columns.timestamp or ("timestamp" if "timestamp" in table.columns else None)
    times = timestamps_of(table, stamp) if stamp else None
    notes: list[str] = []
    if min_rating is not None:
        if rating is None:
            raise ConfigError(
                f"--min-rating needs a rating column, and {table.source} has none named "
                "'rating'; name it with --rating-column"
            )
        keep = numbers(table, rating, "rating") >= min_rating
        if not keep.any():
            raise DataError(
                f"no interaction of {table.source} has a rating of at least {min_rating:g}; "
                "lower --min-rating"
            )
        notes.append(f"{int((~keep).sum())} interactions rated below {min_rating:g} left out")
        users, items = users[keep], items[keep]
        times = None if times is None else times[keep]
    elif rating is not None:
        numbers(table, rating, "rating")  # a bad rating is an error even when all count
    return RawInteractions(users, items, times, table.source, notes)


def index_interactions(raw: RawInteractions, catalogue: np.ndarray | None = None) -> Interactions:
    """Ids to rows: the catalogue's items first, in its order, then the other items of the
    interactions. A (user, item) pair given more than once counts once, at its earliest time."""
    import pandas as pd

    user_codes, user_ids = pd.factorize(raw.users)
    notes = list(raw.notes)
    if catalogue is None:
        item_codes, item_ids = pd.factorize(raw.items)
        item_ids = np.asarray(item_ids, dtype=object)
    else:
        known = pd.Index(catalogue)
        unknown = pd.unique(raw.items[known.get_indexer(raw.items) < 0])
        if len(unknown):
            notes.append(
                f"{len(unknown)} items of the interactions are not in the items file "
                f"(e.g. {unknown[0]!r}); they have no text or vector, only what training learns"
            )
        item_ids = np.concatenate([np.asarray(catalogue, dtype=object), unknown.astype(object)])
        item_codes = pd.Index(item_ids).get_indexer(raw.items)
    n = len(user_codes)
    order = np.arange(n) if raw.timestamps is None else np.lexsort((np.arange(n), raw.timestamps))
    key = user_codes.astype(np.int64) * len(item_ids) + item_codes
    _, first = np.unique(key[order], return_index=True)
    keep = np.sort(order[first])
    if len(keep) < n:
        notes.append(f"{n - len(keep)} repeated (user, item) interactions counted once")
    times = None if raw.timestamps is None else raw.timestamps[keep]
    return Interactions(
        user_codes[keep].astype(np.int64),
        item_codes[keep].astype(np.int64),
        times,
        np.asarray(user_ids, dtype=object),
        item_ids,
        raw.source,
        notes,
    )


def subset(data: Interactions, rows: np.ndarray) -> Interactions:
    """The interactions at `rows`, with the same users and items (ids and rows unchanged)."""
    times = None if data.timestamps is None else data.timestamps[rows]
    return Interactions(
        data.users[rows], data.items[rows], times, data.user_ids, data.item_ids, data.source
    )
