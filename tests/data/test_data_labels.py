"""encode_labels against scikit-learn's LabelEncoder, plus unseen, rare and bad labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.preprocessing import LabelEncoder

from contrastkit.data import EncodedLabels, encode_labels
from contrastkit.errors import DataError


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["card_arrival", "atm", "balance", "atm", "Zeta"], dtype=object),
        np.array([10, 2, 1, 2, 10, 30]),  # numeric order, not "10" < "2"
        np.array([3, 1, 2], dtype=np.uint8),
        np.array([0.5, 2.5, 0.5]),
    ],
)
def test_matches_sklearn_label_encoder(labels):
    encoded = encode_labels(labels)
    reference = LabelEncoder().fit(labels)
    assert isinstance(encoded, EncodedLabels)
    assert encoded.train.dtype == np.int64 and encoded.test is None
    np.testing.assert_array_equal(encoded.train, reference.transform(labels))
    assert encoded.classes == reference.classes_.tolist()
    assert encoded.train_classes == encoded.classes and encoded.unseen_test_classes() == []
    assert encoded.decode(encoded.train) == list(labels)


def test_classes_are_json_serialisable_plain_python():
    encoded = encode_labels(np.array([7, 3, 7], dtype=np.int64), np.array([3, 9]))
    text = json.dumps(encoded.classes)
    assert json.loads(text) == [3, 7, 9]
    assert all(type(c) is int for c in encoded.classes)


def test_unseen_test_labels_get_ids_after_train_classes():
    encoded = encode_labels(["b", "a", "b", "c"], ["zz", "a", "c", "aa", "zz"])
    assert encoded.classes == ["a", "b", "c", "aa", "zz"] and encoded.n_train_classes == 3
    assert encoded.unseen_test_classes() == ["aa", "zz"]
    assert encoded.test.tolist() == [4, 0, 2, 3, 4]
    assert encoded.decode(encoded.test) == ["zz", "a", "c", "aa", "zz"]


def test_long_unseen_strings_are_not_truncated():
    encoded = encode_labels(["ab", "cd"], ["a much longer label"])
    assert encoded.classes[-1] == "a much longer label"


def test_integer_train_and_fractional_test_labels():
    encoded = encode_labels([1, 2, 1], [2, 2.5])
    assert encoded.decode(encoded.test) == [2, 2.5]


def test_counts_and_singleton_classes_are_reported_not_raised():
    encoded = encode_labels(["a", "b", "a", "c", "a"])
    assert encoded.train_counts.tolist() == [3, 1, 1]
    assert encoded.singleton_classes() == ["b", "c"]


def test_one_class_only_is_an_error():
    with pytest.raises(DataError, match="one class only .*'a'.* at least two classes"):
        encode_labels(["a", "a", "a"])


@pytest.mark.parametrize(
    ("train", "test", "match"),
    [
        (
            [1, "two", 3],
            None,
            r"mix types: int 1 at row 0 \(0-based\) and strings \('two' at row 1",
        ),
        (["a", None, "b", ""], None, r"2 missing value\(s\) at rows 1 and 3"),
        ([1.0, float("nan"), 2.0], None, r"missing value\(s\) at row 1"),
        (["a", "b"], [1, 2], "Test labels are numbers but training labels are strings"),
        ([[1, 2], [3, 4]], None, r"1-D.*\(2, 2\)"),
        ([], None, "empty"),
    ],
)
def test_bad_labels(train, test, match):
    with pytest.raises(DataError, match=match):
        encode_labels(np.array(train, dtype=object) if train else np.array(train), test)
