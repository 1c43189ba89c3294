"""Refining on labelled pairs (1 = duplicate, 0 = not): cosent by default, pair metrics before
and after with the threshold calibrated on the training pairs; unlabelled pairs take clip."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from contrastkit import Refiner
from contrastkit.cli import app
from contrastkit.errors import DataError, OptionError

TOPICS = ["password", "card", "transfer", "refund", "address", "pin", "loan", "fee"]


def _pairs(n_topics: int, offset: int = 0) -> tuple[list[tuple[str, str]], list[int]]:
    pairs, labels = [], []
    for i, topic in enumerate(TOPICS[:n_topics]):
        pairs.append((f"how do I change my {topic}?", f"I want to change my {topic}, how?"))
        labels.append(1)
        other = TOPICS[(i + 1 + offset) % len(TOPICS)]
        pairs.append((f"how do I change my {topic}?", f"how do I change my {other}?"))
        labels.append(0)
    return pairs, labels


def _csv(path, pairs, labels):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence1", "sentence2", "label"])
        writer.writerows([(a, b, y) for (a, b), y in zip(pairs, labels, strict=True)])
    return path


def test_labelled_pairs_train_cosent_by_default_and_embed_texts():
    pairs, labels = _pairs(8)
    refiner = Refiner(epochs=3, quiet=True).fit(pairs, labels)
    assert refiner.method_ == "cosent" and refiner.plan_.method == "cosent"
    Z = refiner.transform(["how do I change my pin?", "pin change, how?"])
    assert Z.shape == (2, 384) and np.allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)


def test_unlabelled_pairs_train_clip_and_unlabelled_rows_need_a_method():
    pairs, _ = _pairs(4)
    assert Refiner(epochs=1, quiet=True).fit(pairs).method_ == "clip"
    with pytest.raises(DataError, match="needs labels.*self-supervised"):
        Refiner(epochs=1, quiet=True).fit(np.random.default_rng(0).normal(size=(8, 3)))


@pytest.mark.parametrize(
    "labels, message", [([1] * 16, "same score"), (["yes", "no"] * 8, "numbers")]
)
def test_pair_labels_must_be_numbers_that_differ(labels, message):
    pairs, _ = _pairs(8)
    with pytest.raises(DataError, match=message):
        Refiner(epochs=1, quiet=True).fit(pairs, labels)


def test_validation_rows_do_not_apply_to_pairs():
    pairs, labels = _pairs(8)
    with pytest.raises(OptionError, match="'val_fraction'"):
        Refiner(epochs=1, val_fraction=0.2, quiet=True).fit(pairs, labels)


def test_refine_on_pair_files_reports_pair_metrics(tmp_path):
    train = _csv(tmp_path / "train.csv", *_pairs(8))
    test = _csv(tmp_path / "test.csv", *_pairs(6, offset=2))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["refine", "--train", str(train), "--test", str(test),
                                      "--out", str(out), "--epochs", "3", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["method"] == "cosent"
    assert "threshold best on the training pairs" in metrics["config"]["evaluated_on"]
    for side in ("before", "after"):
        m = metrics[side]
        assert set(m) >= {
            "average_precision",
            "best_f1",
            "threshold",
            "f1",
            "precision",
            "accuracy",
        }
        assert 0 <= m["average_precision"] <= 1 and -1 <= m["threshold"] <= 1
    assert "average_precision" in result.stdout
