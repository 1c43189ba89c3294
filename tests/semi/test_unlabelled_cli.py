"""`contrastkit refine --unlabelled FILE`: what the run folder says about the unlabelled rows,
labels in the file ignored, and one-line refusals (exit code 2) for files it cannot use."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from semi_data import write_files

from contrastkit.evaluation import report_html

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from reliability_helpers import assert_refused, run_refine  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return write_files(tmp_path_factory.mktemp("semi-files"))


def _refine(files, out: Path, unlabelled: str | Path, *extra: str):
    return run_refine("--train", files["labelled.npz"], "--test", files["test.npz"],
                      "--unlabelled", unlabelled, "--out", out, "--epochs", "3", *extra)  # fmt: skip


def _embeddings(run: Path) -> np.ndarray:
    table = pq.read_table(run / "embeddings.parquet")
    return np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    """The same unlabelled rows with (wrong) labels and without any."""
    root = tmp_path_factory.mktemp("semi-runs")
    with_labels = _refine(files, root / "labelled", files["unlabelled.npz"])
    without = _refine(files, root / "bare", files["unlabelled.npy"])
    return root, with_labels, without


def test_metrics_and_config_say_how_many_unlabelled_rows_trained(runs, files):
    root, _, result = runs
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((root / "bare" / "metrics.json").read_text())
    rows = metrics["config"]["rows"]
    assert rows["unlabelled"] == 200 and 0 < rows["pseudo_labelled"] <= 200
    assert metrics["config"]["data"]["unlabelled"]["path"] == str(files["unlabelled.npy"])
    resolved = metrics["config"]["resolved"]
    assert (resolved["unlabelled_method"], resolved["pseudo_labels"]) == ("none", True)
    assert "pseudo_labelled" in {row["stage"] for row in metrics["history"]}
    fact = report_html._unlabelled_fact(rows)  # the report's headline, from these counts
    assert (
        fact
        == f" Trained on {rows['train']} labelled and 200 unlabelled rows ({rows['pseudo_labelled']:,} took a pseudo-label)."
    )
    assert report_html._unlabelled_fact({"train": 30}) == ""
    tuned = report_html._unlabelled_fact(rows, "finetune")
    assert tuned.endswith("pseudo-label and an adapter over the fine-tuned model trained on them).")


def test_labels_in_the_unlabelled_file_are_ignored_and_said_so(runs):
    root, with_labels, without = runs
    assert with_labels.exit_code == 0, with_labels.stderr
    assert "labels of" in with_labels.stderr and "are ignored" in with_labels.stderr
    assert "ignored" not in without.stderr
    assert _embeddings(root / "labelled").tobytes() == _embeddings(root / "bare").tobytes()


def test_unlabelled_rows_shared_with_the_test_file_are_said(files, tmp_path):
    result = _refine(files, tmp_path / "run", files["test.npz"])
    assert result.exit_code == 0, result.stderr
    assert "100.0% of the evaluation rows are also in the unlabelled data" in result.stderr
    assert "transductive" in result.stderr


def _write(folder: Path, name: str, text: str) -> Path:
    (folder / name).write_text(text)
    return folder / name


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda d: _write(d, "texts.csv", "text\nhello\nworld\n"), ("unlabelled data", "holds text", "holds vectors")),
        (lambda d: _write(d, "empty.csv", "text,label\n"), ("empty.csv",)),
        (lambda d: d / "missing.npy", ("missing.npy does not exist",)),
        (lambda d: (np.save(d / "narrow.npy", np.ones((5, 3), np.float32)), d / "narrow.npy")[1], ("3 dimensions", "64")),
    ],
)  # fmt: skip
def test_unusable_unlabelled_files_are_refused_in_one_line(files, tmp_path, make, fragments):
    out = tmp_path / "run"
    assert_refused(_refine(files, out, make(tmp_path)), *fragments)
    assert not out.exists()


def test_an_unlabelled_option_that_cannot_apply_is_refused(files, tmp_path):
    out = tmp_path / "run"
    assert_refused(_refine(files, out, files["unlabelled.npy"], "--unlabelled-method", "simcse"), "simcse", "vectors")  # fmt: skip
    result = run_refine(
        "--train", files["labelled.npz"], "--out", out, "--pseudo-label-margin", "0.1"
    )
    assert_refused(result, "--pseudo-label-margin applies to unlabelled rows")
    assert not out.exists()


def test_resume_refuses_other_unlabelled_data(files, tmp_path):
    out = tmp_path / "run"
    assert _refine(files, out, files["unlabelled.npy"]).exit_code == 0
    other = tmp_path / "other.npy"
    np.save(other, np.load(files["unlabelled.npy"])[:50])
    assert_refused(_refine(files, out, other, "--resume"), "unlabelled data", "--unlabelled")
    result = run_refine("--train", files["labelled.npz"], "--test", files["test.npz"],
                        "--out", out, "--epochs", "3", "--resume")  # fmt: skip
    assert_refused(result, "unlabelled data none is not the data this run was started with")
