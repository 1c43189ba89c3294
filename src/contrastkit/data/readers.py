"""`read_dataset`: one entry point for every supported file format and image folders."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np

from contrastkit.data.arrays import read_npy, read_npz
from contrastkit.data.columns import table_to_dataset
from contrastkit.data.dataset import Dataset
from contrastkit.data.images import folder_has_split, read_image_folder
from contrastkit.data.tabular import read_delimited, read_json_records, read_parquet
from contrastkit.errors import DataError

TABLE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
ARRAY_EXTENSIONS = (".npy", ".npz")
SUPPORTED_EXTENSIONS = TABLE_EXTENSIONS + ARRAY_EXTENSIONS


def _existing(path: str | os.PathLike) -> tuple[Path, str]:
    source = os.fspath(path)
    resolved = Path(source).expanduser()
    if not resolved.exists():
        raise DataError(f"{source} does not exist; check the path.")
    return resolved, source


def read_dataset(
    path: str | os.PathLike,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    vector_column: str | None = None,
    pair_columns: tuple[str, str] | None = None,
    split: Literal["train", "test"] | None = None,
    require_labels: bool | Literal["rows"] = False,
) -> Dataset:
    """Read a data set from a file or an image folder.

    Formats by extension: .csv, .tsv, .jsonl/.json, .parquet (tables, column rules in
    `contrastkit.data.columns`), .npy/.npz (arrays, shape rules in `contrastkit.data.arrays`),
    or a directory with one sub-folder of images per class. Column options apply to tables
    and are ignored for arrays and folders. `split` picks `x_train`/`x_test` in an .npz or
    `train/`/`test/` in a folder; a single-split file is its own "train" split.
    Pass column names only when the user gave them: an explicit name that is missing is an
    error, while None lets the defaults (`text`, `label`, ...) apply.

    `require_labels`: True, a file without labels is refused; "rows", only when it holds rows
    rather than pairs of texts (pairs without labels train with clip).

    Raises DataError (a ValueError) with one sentence naming the file, row or column.
    """
    resolved, source = _existing(path)
    if split not in (None, "train", "test"):
        raise DataError(f"split must be 'train', 'test' or None, got {split!r}.")
    if resolved.is_dir():
        dataset = read_image_folder(resolved, source, split)
    else:
        suffix = resolved.suffix.lower()
        if suffix == ".npy":
            dataset = read_npy(resolved, source, split)
        elif suffix == ".npz":
            dataset = read_npz(resolved, source, split)
        elif suffix in TABLE_EXTENSIONS:
            if split == "test":
                raise DataError(
                    f"{source} has no test split (a table file holds one split); "
                    "pass the test data as its own file."
                )
            if suffix in (".csv", ".tsv"):
                table = read_delimited(resolved, source, "," if suffix == ".csv" else "\t")
            elif suffix == ".parquet":
                table = read_parquet(resolved, source)
            else:
                table = read_json_records(resolved, source)
            dataset = table_to_dataset(
                table,
                text_column=text_column,
                label_column=label_column,
                vector_column=vector_column,
                pair_columns=tuple(pair_columns) if pair_columns is not None else None,
                require_labels=require_labels,
            )
            dataset.split = split
        else:
            raise DataError(
                f"{source} has an unsupported extension '{resolved.suffix}'; use one of "
                f"{', '.join(SUPPORTED_EXTENSIONS)} or a folder with one sub-folder of images "
                "per class."
            )
    if dataset.labels is None and (
        require_labels is True or (require_labels == "rows" and dataset.kind != "pairs")
    ):
        raise DataError(
            f"{source} holds no labels; this method needs them: add labels (a 'y' array, a "
            "label column, or class sub-folders) or choose a self-supervised method."
        )
    return dataset


def has_split(path: str | os.PathLike, split: str) -> bool:
    """True when `path` holds a named part for `split`: `x_<split>` in an .npz, or a
    `<split>/` folder of class sub-folders. Single-split files return False."""
    resolved, source = _existing(path)
    if resolved.is_dir():
        return folder_has_split(resolved, split)
    if resolved.suffix.lower() != ".npz":
        return False
    try:
        with np.load(resolved, allow_pickle=False) as archive:
            keys = list(archive.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{source} cannot be read as a NumPy file ({err}); save it again.") from err
    return f"x_{split}" in keys


def read_train_test(
    train: str | os.PathLike,
    test: str | os.PathLike | None,
    *,
    require_labels: bool | Literal["rows"] = False,
    **columns,
) -> tuple[Dataset, Dataset | None]:
    """The training data (which must hold labels when `require_labels`) and the test data: the
    `test` file, else the training file's test split, else None. `columns`: text_column,
    label_column, vector_column, pair_columns, as for `read_dataset`."""
    train_ds = read_dataset(
        train,
        split="train" if has_split(train, "train") else None,
        require_labels=require_labels,
        **columns,
    )
    if test is not None:
        test_ds = read_dataset(test, split="test" if has_split(test, "test") else None, **columns)
    elif has_split(train, "test"):
        test_ds = read_dataset(train, split="test", **columns)
    else:
        test_ds = None
    if test_ds is not None and test_ds.kind != train_ds.kind:
        raise DataError(
            f"the test data ({test_ds.source}) holds {test_ds.kind} but the training data holds "
            f"{train_ds.kind}"
        )
    return train_ds, test_ds
