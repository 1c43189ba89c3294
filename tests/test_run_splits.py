"""Without --test, the rows that measure never train and never pick the epoch; with
--val-fraction, the validation rows come out of the training rows once, and every row is used."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from contrastkit import Refiner
from contrastkit.cli import app


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    path = tmp_path_factory.mktemp("splits") / "digits.npz"
    np.savez(path, x=X[:400].astype(np.float32), y=y[:400])
    return path


def _refine(*args) -> dict:
    result = CliRunner().invoke(app, ["refine", *map(str, args), "--quiet", "--no-report"])
    assert result.exit_code == 0, result.output
    return json.loads((args[args.index("--out") + 1] / "metrics.json").read_text())


def test_with_val_fraction_and_no_test_every_row_has_one_role(digits_npz, tmp_path):
    metrics = _refine("--train", digits_npz, "--out", tmp_path / "run", "--epochs", "3",
                      "--val-fraction", "0.2")  # fmt: skip
    rows = metrics["config"]["rows"]
    assert rows["evaluation"] == 40  # 10 % of each class of the 400 rows
    assert rows["validation"] == pytest.approx(0.2 * 360, abs=10)  # 20 % of the other 360
    assert rows["train"] + rows["validation"] + rows["evaluation"] == 400
    assert all("val_score" in row for row in metrics["history"])
    assert "neither for training nor to pick the epoch" in metrics["config"]["evaluated_on"]


def test_without_val_fraction_the_evaluation_rows_do_not_pick_the_epoch(digits_npz, tmp_path):
    metrics = _refine("--train", digits_npz, "--out", tmp_path / "run", "--epochs", "2")
    rows = metrics["config"]["rows"]
    assert (rows["train"], rows["validation"], rows["evaluation"]) == (360, 0, 40)
    assert not any("val_score" in row for row in metrics["history"])


def test_explicit_validation_rows_replace_the_val_fraction_split(digits_npz):
    data = np.load(digits_npz)
    X, y = data["x"], data["y"]
    refiner = Refiner(epochs=2, batch_size=64, val_fraction=0.3, quiet=True)
    refiner.fit(X[:300], y[:300], validation=(X[300:], y[300:]))
    assert refiner.rows_ == {"train": 300, "validation": 100}  # no training row held out
