"""Who may call the service: with an API key every endpoint but /health needs it (and the key
never reaches the log: test_serve_process.py); without one, writes to the index are refused
unless allowed; the command line refuses keys it cannot use and addresses in use."""

from __future__ import annotations

import socket

import httpx
import pytest
from search_helpers import clustered, refined_vectors_model, refused, run_cli
from serve_helpers import ThreadServer, error_of, wait_until

from contrastkit.apps.embedder import load_embedder
from contrastkit.apps.search import SearchIndex
from contrastkit.apps.serve import ServeOptions, create_app

KEY = "s3cret-key-0123456789"


@pytest.fixture(scope="module")
def vectors_index(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secure")
    X = clustered(40, 8)
    model = refined_vectors_model(folder / "model", X)
    SearchIndex.build(X, embedder=load_embedder(model)).save(folder / "index")
    return folder / "model", folder / "index", X


def serve(options: ServeOptions) -> ThreadServer:
    return ThreadServer(create_app(options))


def test_with_a_key_everything_but_health_needs_it(vectors_index):
    model, index, X = vectors_index
    options = ServeOptions(model=str(model), index=index, api_key=KEY)
    with serve(options) as server, httpx.Client(base_url=server.url) as client:
        wait_until(lambda: client.get("/health").status_code == 200)
        body = {"input": X[:1].tolist()}
        for method, path in [("POST", "/v1/embeddings"), ("GET", "/metrics"), ("GET", "/docs"),
                             ("GET", "/openapi.json"), ("POST", "/search"), ("GET", "/nowhere"),
                             ("DELETE", "/index/1"), ("POST", "/index/add")]:  # fmt: skip
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                            {"Authorization": f"Basic {KEY}"}, {"Authorization": f"Bearer {KEY}x"}):  # fmt: skip
                response = client.request(method, path, json=body, headers=headers)
                error = error_of(response, 401)
                assert error["type"] == "authentication_error", (method, path, headers)
                assert response.headers["www-authenticate"] == "Bearer"
        good = {"Authorization": f"Bearer {KEY}"}
        assert client.post("/v1/embeddings", json=body, headers=good).status_code == 200
        assert client.get("/metrics", headers=good).status_code == 200
        assert (
            client.post("/search", json={"query": body["input"]}, headers=good).status_code == 200
        )
        added = client.post("/index/add", json=body, headers=good)  # writes: the key suffices
        assert added.status_code == 200, added.text
        assert client.delete(f"/index/{added.json()['ids'][0]}", headers=good).status_code == 200


def test_without_a_key_writes_are_refused_unless_allowed(vectors_index):
    model, index, X = vectors_index
    with (
        serve(ServeOptions(model=str(model), index=index)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        wait_until(lambda: client.get("/health").status_code == 200)
        assert client.post("/search", json={"query": X[:1].tolist()}).status_code == 200
        error = error_of(client.post("/index/add", json={"input": X[:1].tolist()}), 403)
        assert error["type"] == "permission_error" and "--api-key-file" in error["message"]
        assert error_of(client.delete("/index/0"), 403)["code"] == "writes_disabled"
        assert len(SearchIndex.load(index)) == 40


def test_the_command_refuses_what_it_cannot_use(vectors_index, tmp_path):
    model, index, _ = vectors_index
    empty = tmp_path / "empty"
    empty.write_text("\n")
    refused(run_cli("serve", "--model", model, "--api-key-file", empty), "must hold one key")
    refused(
        run_cli("serve", "--model", model, "--api-key-file", tmp_path / "missing"), "cannot be read"
    )
    refused(run_cli("serve", "--index", tmp_path / "nowhere"), r"--index .*nowhere is not a folder")
    refused(run_cli("serve", "--max-inputs", 600, "--max-queue", 100), "could never be queued")
    refused(run_cli("serve", "--threshold", 0.8), "needs --index")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(
            run_cli("serve", "--model", model, "--port", port),
            f"port {port} on 127.0.0.1 is in use",
        )
    refused(run_cli("serve", "--host", "no.such.host.invalid"), "not an address")
