"""`contrastkit index`, `search` and `dedup` on vectors (no model to load): results equal the
Python API's, every refusal is one line with exit code 2, and a refused command leaves the
index as it was."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from search_helpers import clustered, refined_vectors_model, refused, run_cli, unit

from contrastkit.apps.dedup import duplicates_of_embeddings
from contrastkit.apps.search import SearchIndex

X = clustered(400, dim=16, seed=0)
Q = clustered(6, dim=16, seed=1)


def _vectors_table(path, Z, start=0):
    ids = [f"v{i}" for i in range(start, start + len(Z))]
    colour = np.array(["red", "blue"])[np.arange(len(Z)) % 2]
    table = pa.table({
        "id": ids, "colour": colour,
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(Z.ravel(), pa.float32()), Z.shape[1]),
    })  # fmt: skip
    pq.write_table(table, path)
    return path


@pytest.fixture()
def files(tmp_path):
    np.save(tmp_path / "queries.npy", Q)
    return {
        "corpus": _vectors_table(tmp_path / "corpus.parquet", X),
        "more": _vectors_table(tmp_path / "more.parquet", clustered(5, dim=16, seed=7), start=400),
        "queries": tmp_path / "queries.npy",
        "ix": tmp_path / "ix",
        "tmp": tmp_path,
    }


def _digest(folder) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_index_and_search_give_the_api_results(files):
    done = run_cli(
        "index", "--input", files["corpus"], "--out", files["ix"], "--id-column", "id", "--quiet"
    )
    assert done.exit_code == 0, done.stderr
    assert "indexed 400 rows of dimension 16" in done.stdout and "kind flat" in done.stdout
    out = files["tmp"] / "results.csv"
    done = run_cli("search", "--index", files["ix"], "--queries", files["queries"], "-k", "4",
                   "--where", "colour=red", "--out", out)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    got = pd.read_csv(out)
    reference = SearchIndex.build(X, ids=[f"v{i}" for i in range(400)],
                                  metadata={"colour": ["red", "blue"] * 200})  # fmt: skip
    want = reference.search(Q, k=4, where={"colour": "red"})
    assert got["id"].tolist() == [h.id for hits in want for h in hits]
    np.testing.assert_allclose(got["score"], [h.score for hits in want for h in hits], atol=1e-5)
    assert set(got["colour"]) == {"red"} and got["rank"].tolist()[:4] == [1, 2, 3, 4]


def test_update_and_remove_change_the_index_and_a_refusal_leaves_it_alone(files):
    ix = files["ix"]
    assert (
        run_cli("index", "--input", files["corpus"], "--out", ix, "--id-column", "id").exit_code
        == 0
    )
    done = run_cli("index", "--input", files["more"], "--out", ix, "--id-column", "id", "--update")
    assert done.exit_code == 0 and "added 5 rows" in done.stdout and "holds 405 rows" in done.stdout
    before = _digest(ix)
    refused(run_cli("index", "--input", files["more"], "--out", ix, "--id-column", "id", "--update"),
            "ids 'v400', .* are already in the index")  # fmt: skip
    (files["tmp"] / "gone.txt").write_text("v1\nv3\n\nv400\n")
    (files["tmp"] / "bad.txt").write_text("v2\nnope\n")
    refused(
        run_cli("index", "--out", ix, "--remove", files["tmp"] / "bad.txt"),
        "'nope' are not in the index; nothing was removed",
    )
    assert _digest(ix) == before
    done = run_cli("index", "--out", ix, "--remove", files["tmp"] / "gone.txt")
    assert done.exit_code == 0 and "removed 3 rows" in done.stdout
    assert len(SearchIndex.load(ix)) == 402


def test_index_refusals_are_one_line(files):
    ix = files["ix"]
    refused(run_cli("index", "--out", ix), "give --input")
    refused(
        run_cli("index", "--input", files["corpus"], "--out", files["tmp"]), "overlaps the input"
    )
    refused(
        run_cli("index", "--input", files["corpus"], "--out", ix, "--update"),
        "does not exist; build the index first",
    )
    refused(
        run_cli("index", "--input", files["corpus"], "--out", ix, "--kind", "hnsw"),
        "unknown index kind 'hnsw'",
    )
    refused(run_cli("index", "--input", files["tmp"] / "none.csv", "--out", ix), "does not exist")
    refused(
        run_cli("index", "--input", files["corpus"], "--out", ix, "--id-column", "nope"),
        "has no column 'nope'",
    )
    assert run_cli("index", "--input", files["corpus"], "--out", ix).exit_code == 0
    refused(
        run_cli("index", "--input", files["corpus"], "--out", ix),
        "already exists; pass --overwrite",
    )
    assert run_cli("index", "--input", files["queries"], "--out", ix, "--overwrite").exit_code == 0
    assert len(SearchIndex.load(ix)) == 6


def test_search_refusals_are_one_line(files):
    ix = files["ix"]
    refused(run_cli("search", "--index", ix, "-q", "hello"), "does not exist; build one")
    assert run_cli("index", "--input", files["corpus"], "--out", ix).exit_code == 0
    refused(run_cli("search", "--index", ix), "give --query")
    refused(
        run_cli("search", "--index", ix, "-q", "x", "--queries", files["queries"]), "give --query"
    )
    refused(
        run_cli("search", "--index", ix, "-q", "hello"),
        "precomputed vectors embeds vectors but was given text",
    )
    refused(
        run_cli("search", "--index", ix, "--queries", files["queries"], "--where", "colour"),
        "not COLUMN=VALUE",
    )
    refused(
        run_cli("search", "--index", ix, "--queries", files["queries"], "--where", "shape=1"),
        "cannot filter on 'shape'",
    )
    refused(
        run_cli("search", "--index", ix, "--queries", files["queries"], "--out", files["queries"]),
        "is one of the inputs",
    )
    done = run_cli("search", "--index", ix, "--queries", files["queries"], "-k", "2")
    assert done.exit_code == 0 and done.stdout.count("query row") == 6


def test_an_index_refuses_queries_from_another_model(files):
    model_a = refined_vectors_model(files["tmp"] / "a", X, seed=0)
    model_b = refined_vectors_model(files["tmp"] / "b", X, seed=1)
    ix = files["ix"]
    assert (
        run_cli("index", "--input", files["corpus"], "--out", ix, "--model", model_a).exit_code == 0
    )
    done = run_cli("search", "--index", ix, "--queries", files["queries"], "-k", "1")
    assert done.exit_code == 0, done.stderr
    refused(
        run_cli("search", "--index", ix, "--queries", files["queries"], "--model", model_b),
        "was built with the refined model in .*a",
    )
    refused(
        run_cli("index", "--input", files["corpus"], "--out", model_a / "ix", "--model", model_a),
        "overlaps the input",
    )


def test_dedup_writes_groups_and_pairs_as_the_api_finds_them(files):
    rng = np.random.default_rng(3)
    Z = np.concatenate([X, unit(X[:40] + 0.01 * rng.normal(size=(40, 16)))])
    np.save(files["tmp"] / "z.npy", Z)
    groups, pairs = files["tmp"] / "groups.csv", files["tmp"] / "pairs.jsonl"
    done = run_cli("dedup", "--input", files["tmp"] / "z.npy", "--out", groups, "--pairs", pairs,
                   "--threshold", "0.97", "--quiet")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    want = duplicates_of_embeddings(Z, 0.97)
    got_pairs = pd.read_json(pairs, lines=True)
    assert got_pairs[["a", "b"]].values.tolist() == want.pairs[["a", "b"]].values.tolist()
    got_groups = pd.read_csv(groups)
    assert got_groups["group"].tolist() == want.groups.tolist()
    assert list(got_groups.columns) == ["row", "group", "group_size", "keep"]
    assert (
        f"{len(want.pairs)} duplicate pairs" in done.stdout
        and "threshold 0.9700 (given)" in done.stdout
    )


def test_dedup_refusals_are_one_line(files):
    src, out = files["queries"], files["tmp"] / "g.csv"
    refused(run_cli("dedup", "--input", src, "--out", src), "is one of the inputs")
    refused(run_cli("dedup", "--input", src, "--out", out, "--pairs", out), "name the same file")
    refused(
        run_cli("dedup", "--input", src, "--out", files["tmp"] / "g.txt"), "use a name ending in"
    )
    refused(run_cli("dedup", "--input", src, "--out", out, "--kind", "annoy"), "unknown index kind")
    pd.DataFrame({"sentence1": ["a"], "sentence2": ["b"], "label": ["yes"]}).to_csv(
        files["tmp"] / "cal.csv", index=False
    )
    refused(
        run_cli("dedup", "--input", src, "--out", out, "--calibrate", files["tmp"] / "cal.csv"),
        "must be 1 \\(duplicates\\) or 0",
    )
    done = run_cli("dedup", "--input", src, "--out", out, "--threshold", "0.99")
    assert done.exit_code == 0
    refused(
        run_cli("dedup", "--input", src, "--out", out, "--threshold", "0.99"),
        "already exists; pass --overwrite",
    )
