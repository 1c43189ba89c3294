"""What used to be silently wrong, a traceback or a NaN now gets one sentence: unseen test
classes, a test file without labels or equal to the training file, delimiters and duplicated
columns, inputs of the wrong rank or width, unusable devices, undefined metrics."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reliability_helpers import assert_refused, run_refine
from typer.testing import CliRunner

from contrastkit.cli import app
from contrastkit.data import read_dataset
from contrastkit.errors import DataError


def _vectors(tmp_path, name="train.npz", n=60, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    path = tmp_path / name
    np.savez(path, x=rng.normal(size=(n, d)).astype(np.float32), y=np.arange(n) % classes)
    return path


def _metrics(out):
    return json.loads((out / "metrics.json").read_text())


def _warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_unseen_test_classes_are_counted_and_seen_class_accuracy_is_reported(tmp_path):
    train = _vectors(tmp_path)
    test = _vectors(tmp_path, "test.npz", n=40, classes=4, seed=1)  # class 3 never trains
    out = tmp_path / "run"
    result = run_refine("--train", train, "--test", test, "--out", out, "--epochs", "2")
    assert result.exit_code == 0, result.stderr
    (warning,) = [w for w in _warnings(result) if "never seen in training" in w]
    assert "10 of 40 evaluation rows belong to 1 classes" in warning
    after = _metrics(out)["after"]
    assert after["knn1_accuracy"] <= 0.75  # the 10 unseen rows count as wrong
    assert 0 <= after["knn1_accuracy_seen_classes"] <= 1 and "linear_accuracy_seen_classes" in after


def test_a_test_file_without_labels_is_said_before_training(tmp_path):
    train = _vectors(tmp_path)
    rng = np.random.default_rng(2)
    np.save(tmp_path / "unlabelled.npy", rng.normal(size=(20, 8)).astype(np.float32))
    result = run_refine("--train", train, "--test", tmp_path / "unlabelled.npy",
                        "--out", tmp_path / "run", "--epochs", "1")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert any(
        "has no labels, so there will be no before/after metrics" in w for w in _warnings(result)
    )


def test_testing_on_the_training_rows_is_said(tmp_path):
    train = _vectors(tmp_path)
    result = run_refine(
        "--train", train, "--test", train, "--out", tmp_path / "run", "--epochs", "1"
    )
    assert result.exit_code == 0, result.stderr
    assert any("100% of the test rows" in w and "memory" in w for w in _warnings(result))


def test_a_semicolon_separated_csv_is_read_by_its_header(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("text;label\n" + "".join(f"hello, world {i};{i % 2}\n" for i in range(30)))
    data = read_dataset(path)
    assert data.kind == "text" and len(data) == 30 and data.inputs[0] == "hello, world 0"


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("text,label,label\na,1,2\nb,2,1\n")
    with pytest.raises(DataError, match="names the column 'label' twice"):
        read_dataset(path)


def test_vectors_saved_with_an_extra_axis_are_refused_in_one_line(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "r3.npz", x=rng.normal(size=(30, 1, 8)).astype(np.float32), y=np.arange(30) % 3
    )
    result = run_refine("--train", tmp_path / "r3.npz", "--out", tmp_path / "run")
    assert_refused(result, r"1x8 pixels", r"reshape them to \(n, d\)")


def test_one_dimensional_vectors_run_to_the_end_with_a_report(tmp_path):
    train = _vectors(tmp_path, d=1)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["refine", "--train", str(train), "--out", str(out),
                                      "--epochs", "2", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file()


@pytest.mark.parametrize("device", ["mps", "xpu", "cuda:7", "banana"])
def test_a_device_this_machine_lacks_is_refused_before_anything_is_written(tmp_path, device):
    out = tmp_path / "run"
    result = run_refine("--train", _vectors(tmp_path), "--out", out, "--device", device)
    assert_refused(result, re.escape(device))
    assert not out.exists()


def test_evaluate_on_embeddings_with_nan_or_zero_rows_exits_2(tmp_path):
    Z = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    for name, row in (("nan", np.nan), ("zero", 0.0)):
        bad = Z.copy()
        bad[5] = row
        table = pa.table({"split": ["train"] * 10 + ["test"] * 10, "row": list(range(20)),
                          "label": [str(i % 2) for i in range(20)], "embedding": bad.tolist()})  # fmt: skip
        pq.write_table(table, tmp_path / f"{name}.parquet")
        result = CliRunner().invoke(
            app, ["evaluate", "--embeddings", str(tmp_path / f"{name}.parquet")]
        )
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and "row" in result.stderr


def test_a_tiny_evaluation_split_prints_no_nan_and_says_what_is_left_out(tmp_path):
    """Without --test, 10 % of 3 rows a class leaves one evaluation row per class: retrieval
    and alignment are undefined there."""
    out = tmp_path / "run"
    result = run_refine(
        "--train", _vectors(tmp_path, n=30, classes=10), "--out", out, "--epochs", "1"
    )
    assert result.exit_code == 0, result.stderr
    assert not re.search(r"\bnan\b", result.stdout + result.stderr, re.IGNORECASE)
    assert "map_at_r is left out: no evaluated class has two rows" in result.stdout
    metrics = _metrics(out)
    assert "map_at_r" not in metrics["after"] and "two rows" in metrics["undefined"]["map_at_r"]
