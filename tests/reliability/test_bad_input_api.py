"""Bad input through the Python API (`Refiner`): a ValueError or TypeError with one sentence
naming the rows, argument or option and what to do; never a torch/numpy error from deep inside,
a NaN, or a silently wrong result."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from contrastkit import Refiner
from contrastkit.errors import UserError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 8)).astype(np.float32)
Y = np.arange(60) % 3


def quick(**options) -> Refiner:
    return Refiner(epochs=2, quiet=True, **options)


def with_nan() -> np.ndarray:
    x = X.copy()
    x[4, 2], x[9, 0] = np.nan, np.inf
    return x


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[], object]
    fragments: tuple[str, ...]


CASES = [
    Case("empty input", lambda: quick().fit([], []), ("input is empty",)),
    Case("one row", lambda: quick().fit(X[:1], Y[:1]), ("at least two rows",)),
    Case(
        "whitespace-only texts",
        lambda: quick().fit(["a real sentence", " \t", ""], [0, 1, 0]),
        ("rows 1, 2", "empty or whitespace only", "remove those rows"),
    ),
    Case(
        "a text that is not a string",
        lambda: quick().fit(["a sentence", 3.5, "another"], [0, 1, 0]),
        ("rows 1", "must be strings"),
    ),
    Case(
        "NaN and inf in vectors",
        lambda: quick().fit(with_nan(), Y),
        ("NaN or inf", "rows 4, 9", "drop or repair"),
    ),
    Case(
        "vectors of mixed length",
        lambda: quick().fit([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0, 3.0]], [0, 1, 0]),
        ("mixed lengths", "row 0 has 2", "row 2 has 3"),
    ),
    Case(
        "an all-zero vector",
        lambda: quick().fit(np.vstack([X[:5], np.zeros((1, 8), np.float32)]), Y[:6]),
        ("rows 5", "all zeros"),
    ),
    Case(
        "complex vectors",
        lambda: quick().fit(X.astype(np.complex64), Y),
        ("real numbers", "complex64"),
    ),
    Case(
        "images of mixed shapes",
        lambda: quick().fit(
            [np.zeros((8, 8), np.uint8)] * 2 + [np.zeros((9, 8), np.uint8)], [0, 1, 0]
        ),
        ("mixed shapes", r"row 0 is \(8, 8\)", r"row 2 is \(9, 8\)", "resize"),
    ),
    Case(
        "NaN in float images",
        lambda: quick().fit(
            np.where(np.eye(8, dtype=bool), np.nan, 0.5)[None].repeat(4, 0), [0, 1] * 2
        ),
        ("images contain NaN or inf", "rows 0, 1, 2, 3"),
    ),
    Case(
        "one class only",
        lambda: quick().fit(X, np.zeros(60, int)),
        ("one class only", "at least two classes"),
    ),
    Case(
        "labels of mixed types",
        lambda: quick().fit(X[:4], [1, "one", 2, "two"]),
        ("mix types", "row 0", "row 1", "same type"),
    ),
    Case(
        "a missing label",
        lambda: quick().fit(X[:4], [0, None, 1, np.nan]),
        ("2 missing value", "rows 1 and 3", "fill them in"),
    ),
    Case("no labels", lambda: quick().fit(X), ("supervised", "needs labels", "pass y")),
    Case(
        "labels of the wrong length",
        lambda: quick().fit(X, Y[:10]),
        ("one label per row", "60 rows", r"\(10,\)"),
    ),
    Case("epochs=0", lambda: Refiner(epochs=0), ("'epochs'", "greater than or equal to 1")),
    Case("batch_size=1", lambda: Refiner(batch_size=1), ("'batch_size'", ">= 2|greater")),
    Case("an infinite lr", lambda: Refiner(lr=float("inf")), ("'lr'", "finite")),
    Case("a NaN hardness", lambda: Refiner(hardness=float("nan")), ("'hardness'", "finite")),
    Case("unknown method", lambda: Refiner(method="simclrr"), ("unknown method 'simclrr'",)),
    Case("unknown option", lambda: Refiner(temprature=0.1), ("unknown option 'temprature'",)),
    Case(
        "an option of another method",
        lambda: Refiner(method="supcon", margin=0.2),
        ("'margin' is not an option of method supcon",),
    ),
    Case(
        "a mode that does not apply",
        lambda: quick(mode="finetune").fit(X, Y),
        ("mode finetune does not apply to vectors",),
    ),
    Case(
        "transform before fit",
        lambda: Refiner().transform(X),
        ("not fitted yet", "call fit"),
    ),
    Case("an unsupported input type", lambda: quick().fit({"a": 1}, [0]), ("unsupported input",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_raises_a_value_error_naming_the_problem(case):
    with pytest.raises((ValueError, TypeError)) as info:
        case.call()
    assert isinstance(info.value, UserError), f"not a UserError: {info.value!r}"
    message = str(info.value)
    assert "\n" not in message
    for fragment in case.fragments:
        assert re.search(fragment, message), f"{fragment!r} not in {message!r}"


@pytest.fixture(scope="module")
def fitted() -> Refiner:
    return quick().fit(X, Y)


def test_transform_refuses_vectors_of_another_dimension(fitted):
    with pytest.raises(
        ValueError, match=r"16 dimensions but this model was fitted on 8-dimensional"
    ):
        fitted.transform(RNG.normal(size=(4, 16)))


def test_transform_refuses_another_kind_and_nan(fitted):
    with pytest.raises(ValueError, match="fitted on vectors but was given text"):
        fitted.transform(["a", "b"])
    with pytest.raises(ValueError, match="rows 4, 9"):
        fitted.transform(with_nan())


@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1e25, 1e30], ids=lambda s: f"{s:g}")
def test_extreme_row_norms_give_the_embeddings_of_the_unscaled_rows(fitted, scale):
    """Every use of vectors normalises rows, so scaling a row changes nothing; float32 alone
    would square 1e25 to inf (the row becomes 0) and leave a 1e-30 row unnormalised."""
    scaled = X.astype(np.float64) * scale
    Z, Z0 = fitted.transform(scaled), fitted.transform(X)
    np.testing.assert_allclose(Z, Z0, atol=2e-6)
    np.testing.assert_allclose(fitted.base_transform(scaled), fitted.base_transform(X), atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)


def test_extreme_rows_train_like_ordinary_ones():
    rows = X.astype(np.float64) * np.where(np.arange(60) % 2, 1e30, 1e-30)[:, None]
    Z = quick().fit(rows, Y).transform(rows)
    assert np.isfinite(Z).all()
    np.testing.assert_allclose(Z, quick().fit(X, Y).transform(X), atol=1e-4)


def test_single_row_classes_warn_and_still_train():
    y = Y.copy()
    y[:2] = [7, 8]
    with pytest.warns(UserWarning, match=r"2 classes have a single row \(7, 8"):
        refiner = quick().fit(X, y)
    Z = refiner.transform(X)
    assert Z.shape == (60, 8) and np.isfinite(Z).all()


def test_a_batch_size_larger_than_the_data_warns_and_uses_every_row():
    with pytest.warns(UserWarning, match="--batch-size 500 is larger than the 60 training rows"):
        refiner = quick(batch_size=500).fit(X, Y)
    assert refiner.plan_.batch_size == 60


def test_a_good_fit_warns_about_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quick().fit(X, Y)
