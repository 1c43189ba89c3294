"""The rows of a search index: the key faiss stores for each, its id, its text and metadata.

Keys are int64 numbers given in the order rows are added and never reused, so the table stays
sorted by key and a key's row is found by binary search. Ids are the user's (all integers or
all strings, unique); without them a row's id is an integer counting on from the largest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from contrastkit.errors import DataError, UserError

KEY, ID, TEXT = "key", "id", "text"


@dataclass(frozen=True)
class Hit:
    """One search result: the row's id, its cosine similarity to the query, its text (None
    when the index holds vectors) and its metadata."""

    id: object
    score: float
    text: str | None = None
    metadata: dict = field(default_factory=dict)


def _listed(values: Sequence, limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _id_values(ids: Sequence) -> list:
    """Plain Python ints or strs; a DataError for anything else or for a mix."""
    out = [v.item() if isinstance(v, np.generic) else v for v in ids]
    kinds = {type(v) for v in out}
    if not kinds <= {int, str} or len(kinds) > 1:
        raise DataError(
            f"ids must be all integers or all strings, got {', '.join(sorted(k.__name__ for k in kinds))}"
        )
    return out


class Rows:
    """The table of an index's rows (a pandas DataFrame sorted by key)."""

    def __init__(self, frame: pd.DataFrame | None = None, next_key: int = 0) -> None:
        self.frame = frame if frame is not None else pd.DataFrame({KEY: np.zeros(0, np.int64)})
        self.next_key = next_key
        self._ids: pd.Index | None = None

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def keys(self) -> np.ndarray:
        return self.frame[KEY].to_numpy(np.int64)

    @property
    def metadata_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c not in (KEY, ID, TEXT)]

    def _id_index(self) -> pd.Index:
        if self._ids is None:
            self._ids = pd.Index(self.frame[ID] if ID in self.frame else [])
        return self._ids

    def append(
        self,
        n: int,
        ids: Sequence | None = None,
        texts: Sequence[str] | None = None,
        metadata: pd.DataFrame | Mapping[str, Sequence] | None = None,
    ) -> np.ndarray:
        """Add `n` rows; returns their keys."""
        new = pd.DataFrame({KEY: np.arange(self.next_key, self.next_key + n, dtype=np.int64)})
        new[ID] = self._new_ids(n, ids)
        if texts is not None:
            new[TEXT] = list(texts)
        if metadata is not None:
            meta = pd.DataFrame(metadata).reset_index(drop=True)
            if len(meta) != n:
                raise DataError(f"metadata has {len(meta)} rows for {n} rows to add")
            clash = [c for c in meta.columns if c in (KEY, ID, TEXT)]
            if clash:
                raise DataError(
                    f"metadata column {clash[0]!r} clashes with the index's own {clash[0]!r}; "
                    "rename it"
                )
            new = pd.concat([new, meta], axis=1)
        self.frame = _stack(self.frame, new)
        self.next_key += n
        self._ids = None
        return new[KEY].to_numpy(np.int64)

    def _new_ids(self, n: int, ids: Sequence | None) -> list:
        existing = self._id_index()
        if ids is None:
            if len(existing) and not pd.api.types.is_integer_dtype(existing):
                raise DataError("this index has string ids; give ids for the rows you add")
            start = int(existing.max()) + 1 if len(existing) else 0
            return list(range(start, start + n))
        ids = _id_values(list(ids))
        if len(ids) != n:
            raise DataError(f"{len(ids)} ids were given for {n} rows")
        have = type(_plain(existing[0])) if len(existing) else type(ids[0])
        if type(ids[0]) is not have:
            raise DataError(
                f"this index has {have.__name__} ids but was given {type(ids[0]).__name__} ids"
            )
        given = pd.Index(ids)
        repeated = given[given.duplicated()].unique().tolist()
        taken = given[given.isin(existing)].tolist()
        if repeated or taken:
            problem = (
                f"repeated ids {_listed(repeated)}"
                if repeated
                else f"ids {_listed(taken)} are already in the index"
            )
            raise DataError(f"ids must be unique: {problem}; give each row its own id")
        return ids

    def remove(self, ids: Sequence) -> np.ndarray:
        """Drop the rows with these ids; returns their keys. Unknown ids: DataError, nothing
        dropped."""
        ids = _id_values(list(ids)) if len(ids) else []
        index = self._id_index()
        missing = [v for v in ids if v not in index]
        if missing:
            raise DataError(f"ids {_listed(missing)} are not in the index; nothing was removed")
        drop = self.frame[ID].isin(ids).to_numpy()
        keys = self.keys[drop]
        self.frame = self.frame[~drop].reset_index(drop=True)
        self._ids = None
        return keys

    def where(self, conditions: Mapping[str, object]) -> np.ndarray:
        """Keys of the rows whose columns equal the given values (a list: any of them)."""
        mask = np.ones(len(self.frame), dtype=bool)
        for column, wanted in conditions.items():
            if column not in self.frame or column == KEY:
                known = [c for c in self.frame.columns if c != KEY]
                raise UserError(
                    f"cannot filter on {column!r}: the index has the columns {', '.join(known)}"
                )
            values = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
            series = self.frame[column]
            mask &= series.isin([_like(v, series) for v in values]).to_numpy()
        return self.keys[mask]

    def hits(self, keys: np.ndarray, scores: np.ndarray) -> list[list[Hit]]:
        """One list of hits per query row of `keys` (key -1 marks no result)."""
        found = keys >= 0
        positions = np.searchsorted(self.keys, keys[found])
        ids = _column(self.frame[ID], positions)
        texts = _column(self.frame[TEXT], positions) if TEXT in self.frame else None
        meta = {c: _column(self.frame[c], positions) for c in self.metadata_columns}
        flat_scores = scores[found].tolist()
        out, start = [], 0
        for count in found.sum(axis=1).tolist():
            out.append([
                Hit(ids[i], flat_scores[i], None if texts is None else texts[i],
                    {c: v[i] for c, v in meta.items()})
                for i in range(start, start + count)
            ])  # fmt: skip
            start += count
        return out


def _column(series: pd.Series, positions: np.ndarray) -> list:
    """The values at `positions` as plain Python values (NaN, pandas' gap, as None)."""
    values = series.to_numpy()[positions]
    if values.dtype.kind == "f":
        return [None if v != v else v for v in values.tolist()]
    return [_plain(v) for v in values.tolist()] if values.dtype == object else values.tolist()


def _like(value, series: pd.Series):
    """A value typed on the command line ("2020") as the column's numbers are (2020)."""
    if not isinstance(value, str):
        return value
    if pd.api.types.is_bool_dtype(series):
        return {"true": True, "false": False}.get(value.strip().lower(), value)
    present = series.dropna()
    numbers = len(present) and present.map(type).isin([int, float]).all()
    if pd.api.types.is_numeric_dtype(series) or numbers:
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() else number
    return value


def hits_frame(results: list[list[Hit]], queries: Sequence | None = None) -> pd.DataFrame:
    """Search results as a table: query_row, query (when given as texts), rank (1 = most
    similar), id, score, text (when the index holds texts), then the metadata columns."""
    records = []
    for q, hits in enumerate(results):
        for rank, hit in enumerate(hits, start=1):
            record = {"query_row": q}
            if queries is not None:
                record["query"] = queries[q]
            record.update(rank=rank, id=hit.id, score=hit.score)
            if hit.text is not None:
                record["text"] = hit.text
            records.append({**record, **hit.metadata})
    return pd.DataFrame.from_records(records)


def _stack(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """`old` then `new`; a column only one of them has is None in the other's rows (an object
    column, so that integers stay integers instead of turning into floats around NaN)."""
    if not len(old):
        return new
    for frame, other in ((old, new), (new, old)):
        for column in other.columns.difference(frame.columns):
            frame[column] = pd.Series([None] * len(frame), dtype=object, index=frame.index)
            other[column] = other[column].astype(object)
    return pd.concat([old, new[old.columns]], ignore_index=True)


def _plain(value):
    """numpy scalars as Python values; NaN (pandas' gap in a column some rows lack) as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
