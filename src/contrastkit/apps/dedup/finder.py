"""`find_duplicates`: the duplicate pairs and groups of texts or vectors, with any model
contrastkit can load."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from contrastkit.apps.dedup.groups import connected_groups, first_of_group
from contrastkit.apps.dedup.pairs import DEFAULT_MAX_PAIRS, duplicate_pairs
from contrastkit.apps.dedup.threshold import DEFAULT_THRESHOLD, calibrate, check_threshold
from contrastkit.apps.embedder import Embedder, load_embedder
from contrastkit.errors import DataError
from contrastkit.index.tuning import DEFAULT_RECALL


@dataclass
class Duplicates:
    """What `find_duplicates` found.

    `pairs`: one row per pair of duplicates, columns a and b (row numbers, a < b), score (their
    cosine), and id_a, id_b when ids were given; sorted by a, then b. `groups`: the group
    number of each row (connected components of the pairs; a row with no duplicate is a group
    of one). `threshold` and where it came from (`threshold_source`).
    """

    pairs: pd.DataFrame
    groups: np.ndarray
    threshold: float
    threshold_source: str
    ids: list | None = None

    @property
    def keep(self) -> np.ndarray:
        """True for the first row of each group: the rows left after dropping duplicates."""
        return first_of_group(self.groups)

    @property
    def group_sizes(self) -> np.ndarray:
        """The size of each row's group."""
        return np.bincount(self.groups)[self.groups] if len(self.groups) else self.groups

    def table(self) -> pd.DataFrame:
        """One row per input row: row, id (when given), group, group_size, keep."""
        frame = pd.DataFrame({"row": np.arange(len(self.groups))})
        if self.ids is not None:
            frame["id"] = self.ids
        frame["group"] = self.groups
        frame["group_size"] = self.group_sizes
        frame["keep"] = self.keep
        return frame

    def summary(self) -> dict:
        sizes = np.bincount(self.groups) if len(self.groups) else np.zeros(0, np.int64)
        return {
            "rows": int(len(self.groups)),
            "pairs": int(len(self.pairs)),
            "groups_with_duplicates": int((sizes > 1).sum()),
            "rows_in_those_groups": int(sizes[sizes > 1].sum()),
            "rows_kept": int(len(sizes)),
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
        }


def find_duplicates(
    items,
    *,
    model: str | Path | None = None,
    embedder: Embedder | None = None,
    threshold: float | None = None,
    calibration: tuple[Sequence[tuple[str, str]], Sequence[int]] | None = None,
    ids: Sequence | None = None,
    kind: str = "auto",
    recall: float = DEFAULT_RECALL,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    progress: bool = False,
) -> Duplicates:
    """Pairs of rows whose cosine reaches the threshold, and groups of duplicates.

    `items`: texts, or an (n, d) array of vectors. `model`: a refined model folder, a
    sentence-transformers folder or None (text: the shipped all-MiniLM-L6-v2; vectors: used as
    they are); `embedder` replaces it. The threshold is `threshold`, else the F1-best one on
    `calibration` = (pairs of texts, 0/1 labels), else DEFAULT_THRESHOLD (0.9, chosen for the
    shipped model; a warning says so for any other). `kind`: the index searched ("auto":
    exact up to 200 000 rows, then IVF with 8-bit codes and candidates scored exactly).
    """
    if embedder is None:
        is_array = isinstance(items, np.ndarray)
        embedder = load_embedder(model, vectors=model is None and is_array)
    value, source = choose_threshold(embedder, threshold, calibration)
    Z = embedder.encode(items, progress=progress)
    return duplicates_of_embeddings(
        Z, value, source, ids=ids, kind=kind, recall=recall, max_pairs=max_pairs, progress=progress
    )


def choose_threshold(
    embedder: Embedder, threshold: float | None, calibration: tuple | None
) -> tuple[float, str]:
    """(threshold, where it came from in words)."""
    if threshold is not None and calibration is not None:
        raise DataError("give a threshold or labelled pairs to calibrate one on, not both")
    if threshold is not None:
        return check_threshold(threshold), "given"
    if calibration is not None:
        pairs, labels = calibration
        found = calibrate(embedder, pairs, labels)
        return found.threshold, (
            f"calibrated on {len(pairs)} labelled pairs (F1 {found.f1:.3f}, precision "
            f"{found.precision:.3f}, recall {found.recall:.3f} on them)"
        )
    if embedder.reference is not None or embedder.kind != "text":
        warnings.warn(
            f"the default threshold {DEFAULT_THRESHOLD} was chosen for the shipped "
            f"all-MiniLM-L6-v2; for {embedder.description} calibrate one on labelled pairs "
            "(--calibrate pairs.csv) or give --threshold",
            stacklevel=3,
        )
    return DEFAULT_THRESHOLD, "default"


def duplicates_of_embeddings(
    Z: np.ndarray,
    threshold: float,
    threshold_source: str = "given",
    *,
    ids: Sequence | None = None,
    kind: str = "auto",
    recall: float = DEFAULT_RECALL,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    progress: bool = False,
) -> Duplicates:
    """`find_duplicates` for rows already embedded (unit rows, float32)."""
    if ids is not None and len(ids) != len(Z):
        raise DataError(f"{len(ids)} ids were given for {len(Z)} rows")
    if ids is not None and len(set(ids)) != len(ids):
        raise DataError("the ids repeat; give each row its own id")
    a, b, score = duplicate_pairs(Z, check_threshold(threshold), kind, recall, max_pairs, progress)
    pairs = pd.DataFrame({"a": a, "b": b, "score": score})
    if ids is not None:
        id_array = np.asarray(list(ids), dtype=object)
        pairs["id_a"], pairs["id_b"] = id_array[a], id_array[b]
    groups = connected_groups(len(Z), a, b)
    return Duplicates(
        pairs, groups, float(threshold), threshold_source, None if ids is None else list(ids)
    )
