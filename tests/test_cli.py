"""The `contrastkit` command line: refine's run folder, config files, refusing to overwrite,
embed, evaluate and demo. In process with typer's CliRunner (one check runs the installed
console script)."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import contrastkit
from contrastkit import Refiner, evaluate
from contrastkit.cli import app

CONTRACT_KEYS = ("knn1_accuracy", "knn10_accuracy", "linear_accuracy", "precision_at_1",
                 "r_precision", "map_at_r", "nmi", "ami", "alignment", "uniformity")  # fmt: skip

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _strict_json(path: Path) -> dict:
    def refuse(name: str):
        raise ValueError(f"{path} holds {name}, which is not standard JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """Digits as CSV files of 64 numeric columns and a label column (600 train, 300 test)."""
    import pandas as pd
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    folder = tmp_path_factory.mktemp("cli-data")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(64)]).assign(label=y)
    frame.iloc[:600].to_csv(folder / "train.csv", index=False)
    frame.iloc[600:900].to_csv(folder / "test.csv", index=False)
    return {"folder": folder, "train": folder / "train.csv", "test": folder / "test.csv",
            "X": X[:600], "y": y[:600], "X_test": X[600:900], "y_test": y[600:900]}  # fmt: skip


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli-runs") / "run"
    result = invoke("refine", "--train", data["train"], "--test", data["test"], "--epochs", 3,
                    "--batch-size", 128, "--seed", 0, "--quiet", "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "map_at_r" in result.output  # the before/after table
    return out


def test_help_lists_the_commands_and_the_flags():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("refine", "embed", "evaluate", "demo"):
        assert command in result.output
    result = invoke("refine", "--help")
    assert result.exit_code == 0
    for flag in ("--train", "--test", "--out", "--config", "--resume", "--method", "--epochs"):
        assert flag in result.output


def test_version_in_process_and_from_the_installed_script():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"contrastkit {contrastkit.__version__}"
    script = Path(sys.executable).parent / "contrastkit"
    if not script.exists():
        pytest.skip(f"the console script is not installed next to {sys.executable}")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"contrastkit {contrastkit.__version__}"


def test_run_folder_holds_every_output(run):
    for name in ("metrics.json", "report.html", "model", "embeddings.parquet", "checkpoints"):
        assert (run / name).exists(), name
    assert (run / "model" / "contrastkit.json").is_file()
    assert (run / "checkpoints" / "latest.json").is_file()
    html = (run / "report.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith(("<!doctype html", "<html")) and "map_at_r" in html


def test_metrics_json_is_standard_json_with_every_contract_key(run):
    metrics = _strict_json(run / "metrics.json")
    assert {"before", "after", "config", "timing"} <= set(metrics)
    for side in ("before", "after"):
        for key in CONTRACT_KEYS:
            value = metrics[side][key]
            assert isinstance(value, float) and math.isfinite(value), (side, key)
    config = metrics["config"]
    assert (config["epochs"], config["batch_size"], config["seed"]) == (3, 128, 0)
    assert config["method"] == "supcon"
    assert metrics["timing"]["total_s"] > 0 and metrics["timing"]["fit_s"] > 0


def test_before_and_after_are_the_base_and_refined_embeddings_of_the_test_set(run, data):
    metrics = _strict_json(run / "metrics.json")
    before = evaluate(_unit_rows(data["X"]), data["y"], _unit_rows(data["X_test"]), data["y_test"])
    refiner = Refiner.load(run / "model")
    after = evaluate(refiner.transform(data["X"]), data["y"],
                     refiner.transform(data["X_test"]), data["y_test"])  # fmt: skip
    for key in ("knn1_accuracy", "map_at_r", "r_precision", "alignment"):
        assert metrics["before"][key] == pytest.approx(before[key], abs=1e-5), key
        assert metrics["after"][key] == pytest.approx(after[key], abs=1e-5), key


def test_embeddings_parquet_holds_train_and_test_rows(run, data):
    import pyarrow.parquet as pq

    table = pq.read_table(run / "embeddings.parquet").to_pydict()
    assert table["split"].count("train") == 600 and table["split"].count("test") == 300
    Z = np.asarray(table["embedding"], dtype=np.float32)
    assert Z.shape == (900, 64)
    refiner = Refiner.load(run / "model")
    np.testing.assert_allclose(Z[600:], refiner.transform(data["X_test"]), atol=1e-6)
    assert table["label"][600:] == [str(v) for v in data["y_test"]]


def _snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).digest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_an_existing_run_folder_is_refused_and_left_untouched(run, data):
    before = _snapshot(run)
    result = invoke("refine", "--train", data["train"], "--epochs", 1, "--quiet", "--out", run)
    assert result.exit_code == 2
    assert "already exists" in result.output and "--overwrite" in result.output
    assert "Traceback" not in result.output
    assert _snapshot(run) == before


def test_config_file_keys_mirror_flags_and_flags_win_then_overwrite(data, tmp_path):
    config = tmp_path / "options.yaml"
    config.write_text(yaml.safe_dump({"epochs": 2, "batch-size": 64, "seed": 3, "method": "triplet",
                                      "margin": 0.3, "quiet": True}))  # fmt: skip
    out = tmp_path / "run"
    common = ("refine", "--train", data["train"], "--test", data["test"], "--no-report")
    result = invoke(*common, "--config", config, "--epochs", 1, "--out", out)
    assert result.exit_code == 0, result.output
    saved = _strict_json(out / "metrics.json")["config"]
    assert (saved["epochs"], saved["batch_size"], saved["seed"]) == (1, 64, 3)
    assert (saved["method"], saved["margin"]) == ("triplet", 0.3)
    assert not (out / "report.html").exists()

    first = (out / "metrics.json").read_bytes()
    result = invoke(*common, "--config", config, "--seed", 4, "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out / "metrics.json").read_bytes() != first
    replaced = _strict_json(out / "metrics.json")["config"]
    assert (replaced["epochs"], replaced["seed"]) == (2, 4)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch-0001",
        "epoch-0002",
        "history.jsonl",
        "latest.json",
        "refit",  # adapter mode fits again on every row after the check (contrastkit.run.job)
    ]


def test_an_unknown_config_key_is_a_clean_error(data, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("epocs: 2\n")
    result = invoke("refine", "--train", data["train"], "--config", config, "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "bad.yaml, key 'epocs'" in result.output and "Traceback" not in result.output


def test_a_missing_training_file_is_a_clean_error(tmp_path):
    result = invoke("refine", "--train", tmp_path / "nope.csv", "--out", tmp_path / "r")
    assert result.exit_code == 2
    assert "nope.csv" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("suffix", [".parquet", ".npy"])
def test_embed_writes_parquet_and_npy(run, data, tmp_path, suffix):
    out = tmp_path / f"emb{suffix}"
    result = invoke("embed", "--model", run / "model", "--input", data["test"], "--out", out)
    assert result.exit_code == 0, result.output
    if suffix == ".npy":
        Z = np.load(out, allow_pickle=False)
    else:
        import pyarrow.parquet as pq

        Z = np.asarray(pq.read_table(out).column("embedding").to_pylist(), dtype=np.float32)
    expected = Refiner.load(run / "model").transform(data["X_test"])
    np.testing.assert_allclose(Z, expected, atol=1e-6)


def test_embed_base_gives_the_embeddings_before_refinement(run, data, tmp_path):
    out = tmp_path / "base.npy"
    result = invoke("embed", "--model", run / "model", "--input", data["test"], "--out", out,
                    "--base")  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(out), _unit_rows(data["X_test"]), atol=1e-6)


def test_evaluate_embeddings_of_a_run_gives_its_after_metrics(run, tmp_path):
    out = tmp_path / "m.json"
    result = invoke("evaluate", "--embeddings", run / "embeddings.parquet", "--out", out)
    assert result.exit_code == 0, result.output
    metrics, after = _strict_json(out), _strict_json(run / "metrics.json")["after"]
    for key in CONTRACT_KEYS:
        assert metrics[key] == pytest.approx(after[key], abs=1e-5), key


def test_evaluate_a_model_on_train_and_test_files(run, data, tmp_path):
    out = tmp_path / "m.json"
    result = invoke("evaluate", "--model", run / "model", "--train", data["train"],
                    "--test", data["test"], "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics, after = _strict_json(out), _strict_json(run / "metrics.json")["after"]
    for key in ("knn1_accuracy", "map_at_r", "nmi"):
        assert metrics[key] == pytest.approx(after[key], abs=1e-5), key


def test_evaluate_needs_exactly_one_source(run):
    result = invoke("evaluate")
    assert result.exit_code == 2 and "exactly one" in result.output
    result = invoke("evaluate", "--model", run / "model")
    assert result.exit_code == 2 and "--train" in result.output


def test_demo_runs_end_to_end(tmp_path):
    result = invoke("demo", "--out", tmp_path / "demo", "--quiet")
    assert result.exit_code == 0, result.output
    metrics = _strict_json(tmp_path / "demo" / "run" / "metrics.json")
    assert (tmp_path / "demo" / "run" / "report.html").is_file()
    assert metrics["after"]["map_at_r"] > metrics["before"]["map_at_r"]
