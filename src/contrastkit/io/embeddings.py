"""Embedding files: Parquet (split, row, label, embedding) or plain .npy, written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from contrastkit.errors import DataError
from contrastkit.io.atomic import atomic_file, write_bytes_atomic


def write_embeddings(
    path: str | Path, Z: np.ndarray, labels=None, splits: list[tuple[str, int]] | None = None
) -> Path:
    """Write Z (n, d) to `.parquet` (with labels and split names) or `.npy`.

    `splits`: [(name, rows), ...] covering Z in order; default one split called "all".
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(Z, dtype=np.float32), allow_pickle=False)
        write_bytes_atomic(path, buffer.getvalue())
        return path
    if suffix != ".parquet":
        raise DataError(f"cannot write embeddings to {path}: use a .parquet or .npy file name")
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, dim = Z.shape
    splits = splits or [("all", n)]
    names = [name for name, rows in splits for _ in range(rows)]
    rows = [i for _, count in splits for i in range(count)]
    label_values = [None] * n if labels is None else [None if v is None else str(v) for v in labels]
    table = pa.table({
        "split": pa.array(names, pa.string()),
        "row": pa.array(rows, pa.int64()),
        "label": pa.array(label_values, pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(Z, dtype=np.float32).ravel(), pa.float32()), dim
        ),
    })  # fmt: skip
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_run_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train Z, train labels, test Z, test labels) from a run's embeddings.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; check the path")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path} is not a readable Parquet file: {exc}") from None
    missing = {"split", "label", "embedding"} - set(table.column_names)
    if missing:
        raise DataError(
            f"{path} lacks the column(s) {sorted(missing)}; give an embeddings.parquet written by refine"
        )
    split = np.asarray(table.column("split").to_pylist())
    labels = np.asarray(table.column("label").to_pylist(), dtype=object)
    Z = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
    test_name = "test" if (split == "test").any() else "validation"
    train, test = split == "train", split == test_name
    if not train.any() or not test.any():
        raise DataError(
            f"{path} needs rows of split 'train' and 'test' (or 'validation') to evaluate"
        )
    return Z[train], labels[train], Z[test], labels[test]
