"""Labels: checked one per row, without missing values, and turned into class ids.

`encode_labels` is strict (a training set's labels: one type, at least two classes, the test
labels comparable); `factorize` maps any labels to shared codes (the metrics take whatever they
are given). Both sit on the same checks.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from contrastkit.data._validate import is_missing
from contrastkit.data.dataset import RowLocator
from contrastkit.errors import DataError


@dataclass
class EncodedLabels:
    """Class ids for train (and test) labels.

    `classes[i]` is the raw value of class id i (plain Python ints, floats or strings, so the
    list is JSON-serialisable). The first `n_train_classes` entries are the training classes,
    sorted (numbers numerically, strings lexically); test classes never seen in training get
    the ids after them, also sorted. `train_counts[i]` is the number of training rows of class i.
    """

    train: np.ndarray
    test: np.ndarray | None
    classes: list
    n_train_classes: int
    train_counts: np.ndarray

    @property
    def train_classes(self) -> list:
        """The classes a model trained on these labels knows (what to save with it)."""
        return self.classes[: self.n_train_classes]

    def unseen_test_classes(self) -> list:
        """Classes present in the test labels but not in the training labels."""
        return self.classes[self.n_train_classes :]

    def singleton_classes(self) -> list:
        """Training classes with a single row: no positive pair; the caller may warn."""
        return [self.classes[i] for i in np.flatnonzero(self.train_counts == 1)]

    def decode(self, ids: np.ndarray) -> list:
        """Raw label values for class ids."""
        return [self.classes[int(i)] for i in np.asarray(ids).ravel()]


def label_array(y: object, n_rows: int, name: str = "y", rows_name: str = "X") -> np.ndarray:
    """`y` as a 1-D array with one label per row of `rows_name` (tensors and lists accepted);
    DataError otherwise."""
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    array = y if isinstance(y, np.ndarray) else np.asarray(list(y), dtype=object)
    if array.ndim != 1:
        raise DataError(f"{name} must be 1-D, one label per row; got shape {array.shape}.")
    if len(array) != n_rows:
        raise DataError(
            f"{name} has {len(array)} labels but {rows_name} has {n_rows} rows (labels of shape "
            f"{array.shape}); pass one label per row."
        )
    return array


def check_no_missing(array: np.ndarray, name: str) -> None:
    """DataError naming the rows whose label is missing (None, NaN or an empty string)."""
    if array.dtype.kind in "biuUS":
        missing = [
            i for i, v in enumerate(array) if array.dtype.kind in "US" and not str(v).strip()
        ]
    else:
        missing = [i for i, v in enumerate(array) if is_missing(v)]
    if missing:
        raise DataError(
            f"{name}: missing labels (NaN/None), {len(missing)} missing value(s) at "
            f"{RowLocator.zero_based().describe(missing)}; fill them in or remove those rows."
        )


def factorize(*label_arrays: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels of any type mapped to shared integer codes: (classes, codes of each array)."""
    sizes = [len(a) for a in label_arrays]
    joined = np.concatenate([np.asarray(a, dtype=object) for a in label_arrays])
    try:
        classes, codes = np.unique(joined, return_inverse=True)
    except TypeError:  # mixed, unorderable label types: compare them as strings
        classes, codes = np.unique(joined.astype(str), return_inverse=True)
    return classes, np.split(codes.astype(np.int64), np.cumsum(sizes)[:-1])


def _normalise(labels: object, name: str) -> np.ndarray:
    """A 1-D int64, float64 or str ('U') array; DataError for missing or mixed values."""
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(f"{name} must be 1-D, one label per row; got shape {array.shape}.")
    if len(array) == 0:
        raise DataError(f"{name} are empty; give one label per row.")
    rows = RowLocator.zero_based()
    if array.dtype.kind in "biu":
        return array.astype(np.int64)
    if array.dtype.kind in "US":
        array = array.astype(object)
    if array.dtype.kind not in "fO":
        raise DataError(f"{name} have dtype {array.dtype}; labels must be integers or strings.")
    check_no_missing(array, name)
    if array.dtype.kind == "f":
        return array.astype(np.float64)
    is_str = np.fromiter((isinstance(v, str) for v in array), bool, len(array))
    if is_str.all():
        return array.astype(str)
    is_num = np.fromiter(
        (isinstance(v, numbers.Real) and not isinstance(v, bool) for v in array), bool, len(array)
    )
    if is_num.all():
        as_float = array.astype(np.float64)
        if np.all(as_float == np.round(as_float)):
            return as_float.astype(np.int64)
        return as_float
    i_str = int(np.flatnonzero(is_str)[0]) if is_str.any() else None
    i_other = int(np.flatnonzero(~is_str)[0])
    example = f" ({array[i_str]!r} at {rows.one(i_str)})" if i_str is not None else ""
    raise DataError(
        f"{name} mix types: {type(array[i_other]).__name__} {array[i_other]!r} at "
        f"{rows.one(i_other)} and strings{example}; make every label the same type."
    )


def encode_labels(train_labels: object, test_labels: object | None = None) -> EncodedLabels:
    """Encode raw labels as int64 class ids (see `EncodedLabels` for the id order).

    Raises DataError when the training labels hold fewer than two classes, have missing
    values, mix numbers and strings, or when train and test labels differ in type.
    """
    train = _normalise(train_labels, "Training labels")
    train_classes, train_ids, counts = np.unique(train, return_inverse=True, return_counts=True)
    if len(train_classes) < 2:
        raise DataError(
            f"Training labels hold one class only ({train_classes[0].item()!r}); training "
            "with labels needs at least two classes: add other classes or use a "
            "self-supervised method."
        )
    classes = train_classes
    test_ids = None
    if test_labels is not None:
        test = _normalise(test_labels, "Test labels")
        if (test.dtype.kind == "U") != (train.dtype.kind == "U"):
            kinds = {True: "strings", False: "numbers"}
            raise DataError(
                f"Test labels are {kinds[test.dtype.kind == 'U']} but training labels are "
                f"{kinds[train.dtype.kind == 'U']}; use the same label values in both files."
            )
        unseen = np.setdiff1d(np.unique(test), train_classes)
        if len(unseen):
            classes = np.concatenate([train_classes, unseen])  # promotes int+float, U5+U9
        order = np.argsort(classes, kind="stable")
        positions = np.searchsorted(classes[order], test)
        test_ids = order[positions].astype(np.int64)
    return EncodedLabels(
        train=train_ids.astype(np.int64).ravel(),
        test=test_ids,
        classes=classes.tolist(),
        n_train_classes=len(train_classes),
        train_counts=counts.astype(np.int64),
    )
