"""Pseudo-labels against a plain transcription of their definition."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.refiner import pseudo_labels
from contrastkit.refiner.pseudo_labels import confident_rows, nearest_class_margins


def _unit(rng, n: int, d: int) -> np.ndarray:
    Z = rng.normal(size=(n, d)).astype(np.float32)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def _reference(Z_l, codes, Z_u):
    """For each unlabelled row: the class of its most similar labelled row, and the cosine of
    that row minus the cosine of the most similar row of another class."""
    classes, margins = [], []
    for z in Z_u:
        best_per_class = {c: max(float(z @ Z_l[i]) for i in np.flatnonzero(codes == c)) for c in set(codes.tolist())}  # fmt: skip
        ranked = sorted(best_per_class.items(), key=lambda kv: -kv[1])
        classes.append(ranked[0][0])
        margins.append(ranked[0][1] - ranked[1][1] if len(ranked) > 1 else 2.0)
    return np.array(classes), np.array(margins)


@pytest.mark.parametrize("chunk", [3, 2048])
def test_classes_and_margins_match_the_definition(monkeypatch, chunk):
    monkeypatch.setattr(pseudo_labels, "CHUNK_ROWS", chunk)
    rng = np.random.default_rng(0)
    Z_l, Z_u = _unit(rng, 40, 8), _unit(rng, 25, 8)
    codes = rng.permutation(np.arange(40) % 7)  # classes in no particular order
    best, margin = nearest_class_margins(Z_l, codes, Z_u)
    ref_best, ref_margin = _reference(Z_l, codes, Z_u)
    assert (best == ref_best).all()
    np.testing.assert_allclose(margin, ref_margin, atol=1e-5)
    assert (margin >= 0).all()


def test_confident_rows_keep_the_margins_at_or_above_the_threshold():
    rng = np.random.default_rng(1)
    Z_l, Z_u = _unit(rng, 30, 6), _unit(rng, 50, 6)
    codes = np.arange(30) % 5
    ref_best, ref_margin = _reference(Z_l, codes, Z_u)
    rows, classes = confident_rows(Z_l, codes, Z_u, 0.1)
    assert rows.tolist() == np.flatnonzero(ref_margin >= 0.1).tolist()
    assert (classes == ref_best[rows]).all()
    assert len(confident_rows(Z_l, codes, Z_u, 0.0)[0]) == 50


def test_a_row_equal_to_a_labelled_row_takes_its_class():
    rng = np.random.default_rng(2)
    Z_l = _unit(rng, 12, 5)
    codes = np.arange(12) % 3
    rows, classes = confident_rows(Z_l, codes, Z_l[[4, 7]], 0.0)
    assert classes.tolist() == [codes[4], codes[7]]
