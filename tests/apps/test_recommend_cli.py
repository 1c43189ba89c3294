"""`contrastkit recommend fit | top | similar`: the run folder, answers for one user and for
many to a file, and errors as one line with exit code 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from recommend_data import synthetic
from typer.testing import CliRunner

from contrastkit.cli import app

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, ["recommend", *map(str, args)], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recommend")
    interactions, items = synthetic()
    interactions.to_csv(folder / "ratings.csv", index=False)
    items.to_parquet(folder / "items.parquet")
    result = _invoke(
        "fit", "--interactions", folder / "ratings.csv", "--items", folder / "items.parquet",
        "--item-vector-column", "vector", "--epochs", 3, "--batch-size", 64, "--quiet",
        "--out", folder / "run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder, result.output


def _one_line_error(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0], result.output


def test_fit_writes_the_run_folder(run):
    folder, output = run
    names = sorted(p.name for p in (folder / "run").iterdir())
    assert names == ["config.yaml", "metrics.json", "model", "report.html"]
    metrics = json.loads((folder / "run" / "metrics.json").read_text())
    assert set(metrics["models"]) == {
        "two-tower",
        "most popular",
        "item-kNN",
        "BPR-MF",
        "content-only",
    }
    for m in metrics["models"].values():
        assert 0 <= m["test"]["ndcg@10"] <= m["test"]["hr@10"] <= 1
        assert set(m["test"]["cold"]) >= {"hr@10", "users"}
    assert len(metrics["training"]["epochs"]) == 3
    html = (folder / "run" / "report.html").read_text()
    for heading in (
        "Test metrics",
        "Training",
        "NDCG@10 by user activity",
        "Popularity",
        "Map of the item vectors",
    ):
        assert heading in html
    assert "two-tower" in output and "run folder" in output


def test_top_for_one_user_and_a_cold_user(run):
    folder, _ = run
    result = _invoke("top", "--model", folder / "run" / "model", "--user", "u0", "-k", 3)
    assert result.exit_code == 0, result.output
    assert "user u0" in result.output and "film" in result.output
    result = _invoke("top", "--model", folder / "run" / "model", "--user", "stranger")
    assert result.exit_code == 0
    assert "note: unknown user (no interactions): the most popular items" in result.output


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_top_for_many_users_to_a_file(run, suffix):
    folder, _ = run
    (folder / "users.txt").write_text("u1\nu2\n\nnobody\n")
    out = folder / f"recs{suffix}"
    result = _invoke(
        "top",
        "--model",
        folder / "run" / "model",
        "--users-file",
        folder / "users.txt",
        "-k",
        4,
        "--out",
        out,
        "--overwrite",
    )
    assert result.exit_code == 0, result.output
    if suffix == ".jsonl":
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["user"] for r in records] == ["u1", "u2", "nobody"]
        assert records[2]["note"] and records[0]["note"] is None
    else:
        frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        assert len(frame) == 12 and list(frame["rank"][:4]) == [1, 2, 3, 4]
    result = _invoke("top", "--model", folder / "run" / "model", "--all-users", "--out", out)
    _one_line_error(result, "already exists")


def test_similar_items(run):
    folder, _ = run
    result = _invoke("similar", "--model", folder / "run" / "model", "--item", "i0", "-k", 3)
    assert result.exit_code == 0 and "items like i0" in result.output
    _one_line_error(
        _invoke("similar", "--model", folder / "run" / "model", "--item", "zzz"),
        "item 'zzz' is not known",
    )


def test_existing_run_folder_is_refused_unless_overwrite(run):
    folder, _ = run
    result = _invoke("fit", "--interactions", folder / "ratings.csv", "--out", folder / "run")
    _one_line_error(result, "already exists")


@pytest.mark.parametrize(
    "content, message",
    [
        ("user,product\nu1,i1\n", "no column 'item'"),
        ("", "is empty"),
        ("user,item,rating\nu1,i1,5\nu1,i2,five\n", "not a rating"),
        ("user,item\nu1,i1\nu2,i2\n", "none can be evaluated"),
    ],
)
def test_bad_interaction_files(tmp_path, content, message):
    (tmp_path / "r.csv").write_text(content)
    result = _invoke(
        "fit", "--interactions", tmp_path / "r.csv", "--out", tmp_path / "run", "--quiet"
    )
    _one_line_error(result, message)
    assert not (tmp_path / "run").exists()  # nothing was written


def test_bad_options_and_models(tmp_path, run):
    folder, _ = run
    result = _invoke(
        "fit",
        "--interactions",
        folder / "ratings.csv",
        "--out",
        tmp_path / "r",
        "--temperature",
        "0",
    )
    _one_line_error(result, "--temperature must be a positive number")
    _one_line_error(_invoke("top", "--model", tmp_path / "none", "--user", "u0"), "does not exist")
    _one_line_error(_invoke("top", "--model", folder / "run", "--user", "u0"), "RUN_DIR/model")
    _one_line_error(_invoke("top", "--model", folder / "run" / "model"), "exactly one of --user")
    _one_line_error(
        _invoke("top", "--model", folder / "run" / "model", "--all-users"), "too many to print"
    )


def test_an_interrupted_run_leaves_nothing_behind(tmp_path, run, monkeypatch):
    from contrastkit.apps.recommend.recommender import Recommender

    folder, _ = run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Recommender, "fit_rows", interrupted)
    result = _invoke(
        "fit", "--interactions", folder / "ratings.csv", "--out", tmp_path / "new", "--quiet"
    )
    assert result.exit_code == 130 and "left as it was" in result.output
    assert not (tmp_path / "new").exists()
    # an interrupted --overwrite keeps the old run whole
    before = (folder / "run" / "metrics.json").read_bytes()
    result = _invoke(
        "fit",
        "--interactions",
        folder / "ratings.csv",
        "--out",
        folder / "run",
        "--overwrite",
        "--quiet",
    )
    assert result.exit_code == 130
    assert (folder / "run" / "metrics.json").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".run")) == [".run.lock"]
