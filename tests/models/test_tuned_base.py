"""`TunedBase` remembers a fine-tuned model's embeddings while a fit runs: each row is embedded
once, answers are the model's own in the order asked, and `forget` ends it."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.models.stacked import TunedBase


class CountingModel:
    """A stand-in fine-tuned backbone: a fixed random map, counting the rows it embeds."""

    dim = 4

    def __init__(self) -> None:
        self.rows_embedded = 0

    def embed(self, X) -> np.ndarray:
        self.rows_embedded += len(X)
        if len(X) == 0:
            return np.zeros((0, 4), np.float32)
        if isinstance(X, list):
            return np.stack([np.random.default_rng(abs(hash(x)) % 2**32).normal(size=4) for x in X]).astype(np.float32)  # fmt: skip
        return np.asarray(X, np.float32).reshape(len(X), -1)[:, :4] * 2


def test_texts_are_embedded_once_while_remembering_and_answers_match_the_model():
    model = CountingModel()
    base = TunedBase(model, remembering=True)
    first = base.encode(["a", "b", "a", "c"])
    assert model.rows_embedded == 3  # "a" twice in one call: once
    again = base.encode(["c", "a", "d"])
    assert model.rows_embedded == 4 and base.remembered == 4  # only "d" is new
    assert base.encode(("a", "d")).shape == (2, 4) and model.rows_embedded == 4  # a tuple too
    direct = TunedBase(CountingModel()).encode(["a", "b", "a", "c", "d"])
    np.testing.assert_array_equal(first, direct[:4])
    np.testing.assert_array_equal(again, direct[[3, 0, 4]])


def test_images_are_remembered_by_their_bytes():
    model = CountingModel()
    base = TunedBase(model, remembering=True)
    X = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)
    out = base.encode(X)
    base.encode(X[::-1].copy())
    assert model.rows_embedded == 3
    np.testing.assert_array_equal(out, X[:, :4] * 2)


@pytest.mark.parametrize("X", [[], np.zeros((0, 8), np.float32)])
def test_no_rows_go_straight_to_the_model(X):
    assert TunedBase(CountingModel(), remembering=True).encode(X).shape[0] == 0


def test_forget_empties_the_memory_and_stops_remembering():
    model = CountingModel()
    base = TunedBase(model, remembering=True)
    base.encode(["a", "b"])
    base.forget()
    assert base.remembered == 0
    base.encode(["a", "b"])
    base.encode(["a", "b"])
    assert model.rows_embedded == 6 and base.remembered == 0
