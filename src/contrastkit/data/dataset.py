"""The `Dataset` every reader returns, and how error messages point at rows of a file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

DatasetKind = Literal["text", "vectors", "images", "pairs"]


@dataclass
class Dataset:
    """Rows read from one file or folder, with their raw labels.

    `inputs` is a list of str (text), a float32 array (n, d) (vectors), a uint8 or float32
    array (n, h, w) or (n, h, w, c) (images) or a list of (str, str) (pairs). `labels` holds
    the raw label values as read (int64, float64 or str objects), one per row, or None.
    """

    kind: DatasetKind
    inputs: list[str] | np.ndarray | list[tuple[str, str]]
    labels: np.ndarray | None
    source: str
    format: str = "memory"  # csv, tsv, jsonl, parquet, npy, npz, images; "memory" if built in code
    text_column: str | None = None
    label_column: str | None = None
    vector_column: str | None = None
    feature_columns: list[str] | None = None
    pair_columns: tuple[str, str] | None = None
    split: str | None = None
    files: list[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.inputs)

    def __repr__(self) -> str:
        shape = getattr(self.inputs, "shape", None)
        size = f"shape={shape}" if shape is not None else f"rows={len(self)}"
        n_labels = "no labels" if self.labels is None else f"labels={len(self.labels)}"
        return f"Dataset(kind={self.kind!r}, {size}, {n_labels}, source={self.source!r})"


@dataclass(frozen=True)
class RowLocator:
    """Names rows (0-based indices into the data) the way the user finds them in the file.

    `unit` is "line" (text files: the line number in an editor), "record" (JSON arrays,
    1-based) or "row" (arrays and Parquet, 0-based index, said so in `note`).
    """

    unit: str
    to_number: Callable[[Sequence[int]], list[int]]
    note: str = ""

    @staticmethod
    def zero_based(unit: str = "row") -> RowLocator:
        return RowLocator(unit, lambda idx: [int(i) for i in idx], " (0-based)")

    @staticmethod
    def one_based(unit: str = "record") -> RowLocator:
        return RowLocator(unit, lambda idx: [int(i) + 1 for i in idx])

    @staticmethod
    def from_lines(line_numbers: Sequence[int]) -> RowLocator:
        return RowLocator("line", lambda idx: [int(line_numbers[i]) for i in idx])

    def describe(self, indices: Sequence[int], limit: int = 5) -> str:
        """'line 4', 'lines 4, 8 and 10', or 'lines 4, 8, 10, 11, 12 and 7 more'."""
        indices = [int(i) for i in indices]
        shown = self.to_number(indices[:limit])
        if len(indices) == 1:
            return f"{self.unit} {shown[0]}{self.note}"
        words = ", ".join(str(s) for s in shown)
        if len(indices) > limit:
            words += f" and {len(indices) - limit} more"
        else:
            head, _, last = words.rpartition(", ")
            words = f"{head} and {last}"
        return f"{self.unit}s {words}{self.note}"

    def one(self, index: int) -> str:
        return self.describe([index])
