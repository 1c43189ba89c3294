"""`contrastkit serve` endpoints on a real uvicorn server (in a thread, on a free port),
called over HTTP with httpx, checked against independent references: the vectors of a
separately loaded `Embedder`, the hits of the index folder loaded from disk, the
recommender loaded from its folder. The model is a refined adapter over 16-d vectors."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from recommend_data import synthetic
from search_helpers import clustered, refined_vectors_model
from serve_helpers import ThreadServer, error_of, wait_until

from contrastkit.apps.embedder import load_embedder
from contrastkit.apps.recommend import ReadOptions, Recommender
from contrastkit.apps.search import SearchIndex
from contrastkit.apps.serve import Limits, ServeOptions, create_app

DIM = 16
LIMITS = Limits(max_inputs=8, max_chars=100, max_body_bytes=20_000, max_k=50)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    X = clustered(120, DIM)
    model = refined_vectors_model(folder / "model", X)
    embedder = load_embedder(model)
    groups = [f"g{i % 3}" for i in range(len(X))]
    index = SearchIndex.build(
        X, embedder=embedder, ids=[f"r{i}" for i in range(len(X))], metadata={"group": groups}
    )
    index.save(folder / "index")
    interactions, items = synthetic()
    Recommender(epochs=2, batch_size=64, seed=1).fit(
        interactions, items, read=ReadOptions(vector_column="vector")
    ).save(folder / "rec")
    options = ServeOptions(
        model=str(model), index=folder / "index", recommender=folder / "rec",
        allow_unauthenticated_writes=True, limits=LIMITS,
    )  # fmt: skip
    with ThreadServer(create_app(options)) as server, httpx.Client(base_url=server.url) as client:
        wait_until(lambda: client.get("/health").status_code == 200, timeout=60)
        yield SimpleNamespace(client=client, X=X, embedder=embedder, folder=folder)


def test_embeddings_have_openais_shape_and_the_models_vectors(served):
    rows = served.X[:3]
    response = served.client.post("/v1/embeddings", json={"input": rows.tolist(), "model": "x"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"object", "data", "model", "usage"}
    assert body["object"] == "list" and body["model"] == "model"
    assert set(body["usage"]) == {"prompt_tokens", "total_tokens"}
    assert all(isinstance(v, int) for v in body["usage"].values())
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(
        set(d) == {"object", "index", "embedding"} and d["object"] == "embedding"
        for d in body["data"]
    )
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    np.testing.assert_allclose(got, served.embedder.encode(rows), atol=1e-6)


def test_base64_and_dimensions(served):
    rows = served.X[5:7].tolist()
    plain = served.client.post("/v1/embeddings", json={"input": rows}).json()["data"]
    packed = served.client.post(
        "/v1/embeddings", json={"input": rows, "encoding_format": "base64"}
    ).json()["data"]
    for p, b in zip(plain, packed, strict=True):
        decoded = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        np.testing.assert_array_equal(decoded, np.array(p["embedding"], dtype=np.float32))
    short = served.client.post("/v1/embeddings", json={"input": rows, "dimensions": 5}).json()
    got = np.array([d["embedding"] for d in short["data"]])
    full = np.array([p["embedding"] for p in plain])[:, :5]
    np.testing.assert_allclose(got, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-6)
    too_many = served.client.post("/v1/embeddings", json={"input": rows, "dimensions": DIM + 1})
    assert error_of(too_many, 422)["param"] == "dimensions"


def test_search_returns_the_hits_of_the_index(served):
    Q = served.X[[0, 50]] + 0.01
    index = SearchIndex.load(served.folder / "index", embedder=served.embedder)
    for where in (None, {"group": ["g1", "g2"]}):
        response = served.client.post("/search", json={"query": Q.tolist(), "k": 4, "where": where})
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        expected = index.search(Q, k=4, where=where)
        assert len(data) == 2
        for got, hits in zip(data, expected, strict=True):
            assert [h["id"] for h in got["hits"]] == [h.id for h in hits]
            np.testing.assert_allclose(
                [h["score"] for h in got["hits"]], [h.score for h in hits], atol=1e-5
            )
            assert [h["metadata"] for h in got["hits"]] == [h.metadata for h in hits]
    bad_column = served.client.post("/search", json={"query": Q.tolist(), "where": {"nope": 1}})
    assert "cannot filter on 'nope'" in error_of(bad_column, 422)["message"]


def test_duplicates_use_the_given_or_default_threshold(served):
    near, far = served.X[7], -served.X[7]
    response = served.client.post("/duplicates", json={"input": [near.tolist(), far.tolist()]})
    body = response.json()
    assert body["threshold"] == 0.9 and body["threshold_source"] == "default"
    first, second = body["data"]
    assert first["duplicate"] and first["matches"][0]["id"] == "r7"
    assert first["matches"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert all(m["score"] >= 0.9 for m in first["matches"])
    assert not second["duplicate"] and second["matches"] == []
    strict = served.client.post(
        "/duplicates", json={"input": [near.tolist()], "threshold": -1, "k": 3}
    )
    assert strict.json()["threshold_source"] == "given"
    assert len(strict.json()["data"][0]["matches"]) == 3


def test_add_and_delete_are_saved_to_the_folder(served):
    new = clustered(2, DIM, seed=9)
    body = {"input": new.tolist(), "ids": ["new-a", "new/b"], "metadata": {"group": ["g9", "g9"]}}
    response = served.client.post("/index/add", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["ids"] == ["new-a", "new/b"]
    on_disk = SearchIndex.load(served.folder / "index", embedder=served.embedder)
    assert len(on_disk) == response.json()["rows"] == 122
    hits = served.client.post("/search", json={"query": new[:1].tolist(), "k": 1}).json()
    assert hits["data"][0]["hits"][0]["id"] == "new-a"
    again = served.client.post("/index/add", json=body)
    assert "new-a" in error_of(again, 422)["message"]
    assert len(SearchIndex.load(served.folder / "index", embedder=served.embedder)) == 122
    assert served.client.delete("/index/new-a").json() == {"deleted": "new-a", "rows": 121}
    on_disk = SearchIndex.load(served.folder / "index", embedder=served.embedder)
    assert "new-a" not in set(on_disk.rows.frame["id"]) and len(on_disk) == 121
    assert error_of(served.client.delete("/index/new-a"), 404)["param"] == "id"
    assert served.client.delete("/index/new%2Fb").json()["deleted"] == "new/b"  # a slash in an id


def test_recommendations_are_the_recommenders(served):
    rec = Recommender.load(served.folder / "rec")
    got = served.client.post("/recommend", json={"users": ["u1", "nobody"], "k": 3}).json()["data"]
    expected = rec.recommend(["u1", "nobody"], k=3)
    for g, e in zip(got, expected, strict=True):
        assert [i["id"] for i in g["items"]] == e.items and g["note"] == e.note
    history = served.client.post("/recommend", json={"history": ["i1", "zzz"], "k": 2}).json()
    assert history["data"][0]["ignored"] == ["zzz"]
    similar = served.client.post("/similar-items", json={"items": ["i1"], "k": 2}).json()["data"]
    assert [i["id"] for i in similar[0]["items"]] == rec.similar_items(["i1"], k=2)[0].items
    unknown = served.client.post("/similar-items", json={"items": ["nope"]})
    assert "nope" in error_of(unknown, 422)["message"]
    both = served.client.post("/recommend", json={"users": ["u1"], "history": ["i1"]})
    assert "one of the two" in error_of(both, 422)["message"]


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ('{"input": [[1, 2', 400, None),  # malformed JSON
        ("[1, 2]", 422, None),  # not an object
        ('{"input": 5}', 422, "input"),
        ('{"input": [[1, "a"]]}', 422, "input"),
        ('{"input": []}', 422, "input"),
        ('{"input": "text"}', 422, "input"),  # this model embeds vectors
        ('{"input": [[1, 2, 3]]}', 422, "input"),  # wrong width
        ('{"input": [[1, 2], [1, 2, 3]]}', 422, "input"),  # ragged
        ('{"input": [[NaN' + ", 1" * (DIM - 1) + "]]}", 422, "input"),
        ('{"input": [[0' + ", 0" * (DIM - 1) + "]]}", 422, "input"),
        ('{"inputs": [[1]]}', 422, "input"),  # misspelt: input is missing
        ('{"input": [[1]], "encoding_format": "hex"}', 422, "encoding_format"),
        ('{"input": [[1]], "dimensions": 0}', 422, "dimensions"),
    ],
)
def test_bad_embedding_requests_get_one_json_sentence(served, body, status, param):
    response = served.client.post(
        "/v1/embeddings", content=body, headers={"Content-Type": "application/json"}
    )
    assert error_of(response, status)["param"] == param


def test_bad_search_requests(served):
    query = served.X[:1].tolist()
    assert (
        error_of(served.client.post("/search", json={"query": query, "k": "x"}), 422)["param"]
        == "k"
    )
    assert (
        error_of(served.client.post("/search", json={"query": query, "k": 0}), 422)["param"] == "k"
    )
    assert (
        error_of(served.client.post("/search", json={"query": query, "where": [1]}), 422)["param"]
        == "where"
    )
    assert error_of(served.client.post("/search", json={"k": 3}), 422)["param"] == "query"
    error = error_of(served.client.post("/search", data={"query": "x"}), 422)  # a form, not JSON
    assert "Content-Type: application/json" in error["message"]


def test_unknown_paths_and_methods(served):
    assert error_of(served.client.get("/nowhere"), 404)["type"] == "not_found_error"
    assert "takes GET" in error_of(served.client.post("/health"), 405)["message"]
    assert "takes POST" in error_of(served.client.get("/v1/embeddings"), 405)["message"]


def test_every_limit_is_named(served):
    nine = clustered(9, DIM).tolist()
    assert (
        error_of(served.client.post("/v1/embeddings", json={"input": nine}), 413)["code"]
        == "max_inputs"
    )
    assert (
        error_of(served.client.post("/index/add", json={"input": nine}), 413)["code"]
        == "max_inputs"
    )
    big = {"input": served.X[:1].tolist(), "user": "x" * 25_000}
    assert error_of(served.client.post("/v1/embeddings", json=big), 413)["code"] == "max_body_bytes"
    chunks = (part for part in [b'{"input": [[1', b", 1" * 12_000, b"]]}"])  # no Content-Length
    chunked = served.client.post(
        "/v1/embeddings", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert error_of(chunked, 413)["code"] == "max_body_bytes"
    fine = (part for part in [b'{"input": ', json.dumps(served.X[:1].tolist()).encode(), b"}"])
    assert (
        served.client.post(
            "/v1/embeddings", content=fine, headers={"Content-Type": "application/json"}
        ).status_code
        == 200
    )
    query = served.X[:1].tolist()
    assert (
        error_of(served.client.post("/search", json={"query": query, "k": 51}), 413)["code"]
        == "max_k"
    )
    many = [f"u{i}" for i in range(9)]
    assert (
        error_of(served.client.post("/recommend", json={"users": many}), 413)["code"]
        == "max_inputs"
    )
    for response, limit in ((served.client.post("/v1/embeddings", json={"input": nine}), "--max-inputs"),
                            (served.client.post("/v1/embeddings", json=big), "--max-body-bytes")):  # fmt: skip
        assert limit in response.json()["error"]["message"]


def test_metrics_count_requests_errors_latency_batches_and_queue(served):
    served.client.post("/v1/embeddings", json={"input": served.X[:2].tolist()})
    served.client.get("/nowhere")
    text = served.client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {
        (s.labels["method"], s.labels["path"], s.labels["status"]): s.value
        for s in families["contrastkit_requests"].samples if s.name.endswith("_total")
    }  # fmt: skip
    assert requests[("POST", "/v1/embeddings", "200")] >= 1
    assert requests[("GET", "unmatched", "404")] >= 1
    errors = [s for s in families["contrastkit_errors"].samples if s.name.endswith("_total")]
    assert all(int(s.labels["status"]) >= 400 for s in errors) and errors
    latency = families["contrastkit_request_latency_seconds"].samples
    assert any(
        s.name.endswith("_count") and s.labels["path"] == "/v1/embeddings" and s.value >= 1
        for s in latency
    )
    batches = [s for s in families["contrastkit_batch_size"].samples if s.name.endswith("_sum")]
    assert batches[0].value >= 2
    assert [s.value for s in families["contrastkit_queue_depth"].samples] == [0.0]
    assert [s.value for s in families["contrastkit_ready"].samples] == [1.0]


def test_health_and_docs(served):
    health = served.client.get("/health").json()
    assert health["status"] == "ready" and health["kind"] == "vectors" and health["recommender"]
    assert served.client.get("/docs").status_code == 200
    paths = served.client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/embeddings",
        "/search",
        "/duplicates",
        "/index/add",
        "/index/{row_id}",
        "/recommend",
        "/similar-items",
        "/health",
        "/metrics",
    } <= set(paths)
    models = served.client.get("/v1/models").json()
    assert models["data"][0]["id"] == "model"


def test_the_duplicate_threshold_given_or_calibrated_at_start(tmp_path, monkeypatch):
    from search_helpers import toy_embedder

    from contrastkit.apps.dedup import calibrate

    rng = np.random.default_rng(0)
    table = {f"t{i}": rng.normal(size=8) for i in range(12)}
    table.update({f"t{i}'": table[f"t{i}"] + 0.3 * rng.normal(size=8) for i in range(6)})
    table["warm-up"] = rng.normal(size=8)  # the service runs its model once before it is ready
    toy = toy_embedder(table)
    monkeypatch.setattr("contrastkit.apps.embedder.load_embedder", lambda *a, **k: toy)
    SearchIndex.build([f"t{i}" for i in range(12)], embedder=toy).save(tmp_path / "index")
    pairs = [(f"t{i}", f"t{i}'") for i in range(6)] + [(f"t{i}", f"t{i + 6}") for i in range(6)]
    labels = [1] * 6 + [0] * 6
    expected = calibrate(toy, pairs, labels).threshold
    for options, threshold, source in [
        (ServeOptions(index=tmp_path / "index", calibration=(pairs, labels)), expected, "calibrated on 12"),
        (ServeOptions(index=tmp_path / "index", threshold=0.5), 0.5, "given"),
    ]:  # fmt: skip
        with (
            ThreadServer(create_app(options)) as server,
            httpx.Client(base_url=server.url) as client,
        ):
            wait_until(lambda c=client: c.get("/health").status_code == 200)
            body = client.post("/duplicates", json={"input": ["t0'"]}).json()
        assert body["threshold"] == pytest.approx(threshold) and body[
            "threshold_source"
        ].startswith(source)
        hits = toy.encode(["t0'"]) @ toy.encode([f"t{i}" for i in range(12)]).T
        assert body["data"][0]["duplicate"] == bool((hits >= threshold).any())
