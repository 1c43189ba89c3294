"""The safety net of `contrastkit refine` (contrastkit.run.check): held-out training rows, the
verdict in the console, metrics.json and the report, and the frozen linear probe beside every
refined accuracy. Digits as CSV files, a few epochs: seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.run import check as check_module
from contrastkit.run.check import CHECK_FRACTION, check_split

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    import pandas as pd
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    folder = tmp_path_factory.mktemp("safety-data")
    frame = pd.DataFrame(X.astype(np.float32), columns=[f"f{i}" for i in range(64)]).assign(label=y)
    frame.iloc[:500].to_csv(folder / "train.csv", index=False)
    frame.iloc[500:800].to_csv(folder / "test.csv", index=False)
    return {"train": folder / "train.csv", "test": folder / "test.csv", "y": y[:500]}


def refine(files: dict, out: Path, *extra: str):
    args = ["refine", "--train", files["train"], "--out", out, "--epochs", 2, "--batch-size",
            128, "--quiet", *extra]  # fmt: skip
    result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result, json.loads((out / "metrics.json").read_text())


def test_check_split_holds_out_a_tenth_of_each_class_that_keeps_a_positive_pair():
    codes = np.repeat(np.arange(5), [1, 2, 3, 10, 40])
    kept, held = check_split(codes, seed=0)
    assert np.intersect1d(kept, held).size == 0 and len(kept) + len(held) == len(codes)
    per_class = np.bincount(codes[held], minlength=5)
    # classes of 1 and 2 rows train whole; 3 rows: one held out (at least one), two train;
    # 10 rows: one; 40 rows: four
    assert per_class.tolist() == [0, 0, 1, 1, round(40 * CHECK_FRACTION)]
    again = check_split(codes, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((kept, held), again, strict=True))


def test_with_test_data_the_check_is_on_held_out_training_rows(files, tmp_path):
    result, metrics = refine(files, tmp_path / "run", "--test", files["test"])
    check = metrics["check"]
    held = len(check_split(files["y"], seed=0)[1])
    assert check["rows"] == held == 50  # 10 % of 500 digits, never the 300 test rows
    # adapter mode: checked on a model trained without them, then refit on every row
    assert (
        check["refit"] is True
        and "the model kept was then trained on every row" in check["message"]
    )
    assert metrics["config"]["rows"]["train"] == 500
    assert set(check["before"]) == {"knn1_accuracy", "linear_accuracy", "map_at_r"}
    assert check["verdict"] in ("better", "no gain", "worse") and check["message"]
    assert "check:" in result.output or "warning:" in result.output


def test_without_test_data_the_evaluation_rows_are_the_check(files, tmp_path):
    _, metrics = refine(files, tmp_path / "run")
    check = metrics["check"]
    assert check["rows"] == metrics["config"]["rows"]["evaluation"]
    for key in check["before"]:
        assert check["before"][key] == metrics["before"][key]
        assert check["after"][key] == metrics["after"][key]


def test_the_check_measures_a_fit_without_its_rows_and_the_run_keeps_a_fit_on_every_row(files, tmp_path):  # fmt: skip
    """Independent reference: Refiner fits with the same options, one without the check rows
    (what the check must have scored) and one on every row (what the run must have kept)."""
    import pandas as pd

    from contrastkit import Refiner
    from contrastkit.evaluation import evaluate

    _, metrics = refine(files, tmp_path / "run", "--test", files["test"])
    frame = pd.read_csv(files["train"])
    X, y = frame.drop(columns="label").to_numpy(np.float32), frame["label"].to_numpy()
    kept, held = check_split(y, seed=0)
    options = dict(epochs=2, batch_size=128, quiet=True)
    without = Refiner(**options).fit(X[kept], y[kept])
    expected = evaluate(
        without.transform(X[kept]), y[kept], without.transform(X[held]), y[held], seed=0
    )
    for key, value in metrics["check"]["after"].items():
        assert value == pytest.approx(expected[key], abs=1e-6), key
    every = Refiner(**options).fit(X, y)
    saved = Refiner.load(tmp_path / "run" / "model")
    np.testing.assert_allclose(saved.transform(X[:50]), every.transform(X[:50]), atol=1e-5)
    assert (tmp_path / "run" / "checkpoints" / "refit").is_dir()


def test_finetune_mode_keeps_the_check_rows_out():
    from types import SimpleNamespace

    from contrastkit.run.job import RunData, _check_then_refit

    fitted = SimpleNamespace(mode_="finetune", dist_=SimpleNamespace(enabled=False))
    data = RunData("text", ["a"] * 4, ["x"] * 4, None, None, "", "test", check_rows=np.array([3]))
    assert _check_then_refit(fitted, {}, data, Path("unused"), False, {}) == (fitted, None)


def test_no_check_trains_on_every_row(files, tmp_path):
    _, metrics = refine(files, tmp_path / "run", "--test", files["test"], "--no-check")
    assert metrics["check"] is None and metrics["config"]["rows"]["train"] == 500


def test_metrics_json_puts_the_frozen_linear_probe_beside_every_refined_accuracy(files, tmp_path):
    _, metrics = refine(files, tmp_path / "run", "--test", files["test"])
    versus, before, after = metrics["versus_frozen_linear"], metrics["before"], metrics["after"]
    assert versus["frozen_linear_accuracy"] == before["linear_accuracy"]
    for key in ("knn1_accuracy", "knn10_accuracy", "linear_accuracy"):
        assert versus[key] == pytest.approx(after[key] - before["linear_accuracy"])
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "after vs frozen linear probe" in html


def test_a_worse_refinement_is_said_plainly_everywhere(files, tmp_path, monkeypatch):
    def worse(Z, y_fit, y_check, seed):
        return {"rows": 50, "before": {"linear_accuracy": 0.9}, "after": {"linear_accuracy": 0.8},
                "worse": ["linear_accuracy"], "beats_frozen_linear": False, "verdict": "worse"}  # fmt: skip

    monkeypatch.setattr("contrastkit.run.job.run_check", worse)
    result, metrics = refine(files, tmp_path / "run", "--test", files["test"])
    output = " ".join(result.output.split())
    assert "warning: refinement made things worse" in output and "lowered linear probe" in output
    assert "try: keep closer to the base embeddings: --residual-scale" in output
    check = metrics["check"]
    assert check["verdict"] == "worse" and check["message"].startswith("refinement made things")
    assert any("--mode finetune" in tip for tip in check["advice"])
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Refinement made things worse" in html and "What to try" in html


def test_advice_names_the_options_of_the_mode():
    from contrastkit.config.defaults import Plan

    plan = Plan(batch_size=64, m_per_class=2, epochs=40, lr=3e-5, head_lr=1e-3)
    tips = " ".join(check_module.advice("finetune", plan))
    assert "--epochs 20" in tips and "--lr 1e-05" in tips and "--mode adapter" in tips
    plan = Plan(batch_size=512, m_per_class=8, epochs=40, lr=1e-3, head_lr=1e-3, residual_scale=0.5)
    tips = " ".join(check_module.advice("adapter", plan))
    assert "--residual-scale 0.25" in tips and "--mode finetune" in tips


def test_the_check_scores_the_base_embeddings_of_the_held_out_rows_as_sklearn_does(files, tmp_path):
    """Independent reference: the check's "before" side is a cosine 1-NN and a standardised
    logistic regression (sklearn) on the L2-normalised digits, check rows against the rest."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, metrics = refine(files, tmp_path / "run", "--test", files["test"])
    X = np.loadtxt(files["train"], delimiter=",", skiprows=1, usecols=range(64))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    kept, held = check_split(files["y"], seed=0)
    nearest = np.argmax(X[held] @ X[kept].T, axis=1)
    knn1 = np.mean(files["y"][kept][nearest] == files["y"][held])
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    probe.fit(X[kept], files["y"][kept])
    linear = probe.score(X[held], files["y"][held])
    before = metrics["check"]["before"]
    assert before["knn1_accuracy"] == pytest.approx(knn1)
    assert before["linear_accuracy"] == pytest.approx(linear)


def test_classes_too_small_to_hold_rows_out_are_said_so(files, tmp_path):
    import pandas as pd

    frame = pd.read_csv(files["train"])
    two_a_class = frame.groupby("label").head(2)
    two_a_class.to_csv(tmp_path / "small.csv", index=False)
    small = {**files, "train": tmp_path / "small.csv"}
    result, metrics = refine(small, tmp_path / "run", "--test", files["test"])
    assert metrics["check"] is None and metrics["config"]["rows"]["train"] == 20
    assert "no class has 3 or more rows" in " ".join(result.output.split())
