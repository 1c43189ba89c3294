"""`contrastkit serve` as a process: it prints where it listens and how to call it, logs one
line per request and never the key, answers a request that is not HTTP in JSON, 429 at once
when its queue is full, finishes the requests in flight on SIGTERM and exits 0, refuses a
model other than its index's (exit 2), and a kill -9 in the middle of saving the index leaves
a folder that loads."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest
from search_helpers import clustered, refined_vectors_model, refused, run_cli
from serve_helpers import ServerProcess, ThreadServer, error_of, wait_until

from contrastkit.apps.embedder import load_embedder
from contrastkit.apps.search import SearchIndex
from contrastkit.apps.serve import ServeOptions, create_app

KEY = "another-s3cret-9876543210"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("process")
    X = clustered(40, 8)
    return refined_vectors_model(folder / "model", X), X


def post_later(
    url: str, body: dict, headers: dict, into: list, delay: float = 0.0
) -> threading.Thread:
    def send():
        time.sleep(delay)
        try:
            into.append(httpx.post(url, json=body, headers=headers, timeout=30))
        except httpx.TransportError as exc:  # the server was killed
            into.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def raw_exchange(url: str, request: bytes) -> bytes:
    """What the server at `url` answers to `request` sent as raw bytes, until it closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_queue_full_sigterm_drain_and_a_log_without_the_key(model, tmp_path):
    path, X = model
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    server = ServerProcess(
        "--model", path, "--api-key-file", key_file, "--max-wait-ms", 1000,
        "--max-batch-size", 64, "--max-queue", 4, "--max-inputs", 4,
    )  # fmt: skip
    try:
        url = server.wait_ready()
        auth = {"Authorization": f"Bearer {KEY}"}
        endpoint = f"{url}/v1/embeddings"
        first: list = []
        waiting = post_later(endpoint, {"input": X[:4].tolist()}, auth, first)
        time.sleep(0.4)  # the 4 inputs now wait in the queue for 1 s
        start = time.perf_counter()
        busy = httpx.post(endpoint, json={"input": X[:1].tolist()}, headers=auth)
        assert time.perf_counter() - start < 0.5
        assert error_of(busy, 429)["code"] == "queue_full" and busy.headers["retry-after"] == "1"
        waiting.join()
        assert first[0].status_code == 200 and len(first[0].json()["data"]) == 4
        assert (
            httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {KEY[:-1]}"}).status_code
            == 401
        )
        malformed = raw_exchange(url, b"NOT HTTP AT ALL\r\n\r\n")
        head, _, body = malformed.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ") and b"content-type: application/json" in head
        assert json.loads(body)["error"]["type"] == "invalid_request_error"
        in_flight: list = []
        drained = post_later(endpoint, {"input": X[5:6].tolist()}, auth, in_flight)
        time.sleep(0.4)  # in flight: waiting for its batch
        assert server.terminate() == 0
        drained.join()
        assert in_flight[0].status_code == 200, in_flight[0].text
        expected = load_embedder(path).encode(X[5:6])[0]
        np.testing.assert_allclose(in_flight[0].json()["data"][0]["embedding"], expected, atol=1e-6)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=2)
    finally:
        server.kill()
    output = server.output()
    assert KEY not in output and KEY[:-1] not in output
    assert f"listening on {url}" in output
    assert f'curl -s {url}/v1/embeddings -H "Authorization: Bearer $(cat {key_file})"' in output
    assert "POST /v1/embeddings 429 " in output and "GET /metrics 401 " in output
    assert "Invalid HTTP request received." in output  # uvicorn's warning, in the server's log
    ours = [line for line in output.splitlines() if not line.startswith("WARNING:")]
    assert ours[-1] == "stopped"


def test_a_model_other_than_the_indexs_is_refused_at_start(model, tmp_path):
    path, X = model
    other = refined_vectors_model(tmp_path / "other", X, seed=1)
    SearchIndex.build(X, embedder=load_embedder(other)).save(tmp_path / "index")
    result = run_cli("serve", "--model", path, "--index", tmp_path / "index", "--port", 0)
    refused(result, r"the index .*index was built with the refined model in .*other")


def test_kill_9_while_the_index_is_saved_leaves_a_folder_that_loads(tmp_path):
    rows = 150_000
    Z = clustered(rows, 16, seed=3)
    vectors = load_embedder(None, vectors=True)
    SearchIndex.from_embeddings(Z, vectors).save(tmp_path / "index")
    server = ServerProcess(
        "--index", tmp_path / "index", "--allow-unauthenticated-writes", "--quiet"
    )
    try:
        url = server.wait_ready()
        answers: list = []
        writing = lambda: any(p.name.startswith(".index.") for p in tmp_path.iterdir())  # noqa: E731
        post_later(f"{url}/index/add", {"input": clustered(3, 16, seed=4).tolist()}, {}, answers)
        wait_until(writing, timeout=60, step=0.001)
        server.kill()  # SIGKILL while the new folder is being written
    finally:
        server.kill()
    assert not answers or isinstance(answers[0], httpx.TransportError)  # it never completed
    index = SearchIndex.load(tmp_path / "index")  # checksums verified: not half-written
    assert len(index) == rows
    options = ServeOptions(index=tmp_path / "index", allow_unauthenticated_writes=True)
    with (
        ThreadServer(create_app(options)) as restarted,
        httpx.Client(base_url=restarted.url, timeout=60) as client,
    ):
        wait_until(lambda: client.get("/health").status_code == 200, timeout=60)
        assert client.get("/health").json()["index_rows"] == rows
        added = client.post("/index/add", json={"input": clustered(3, 16, seed=4).tolist()})
        assert added.json()["rows"] == rows + 3
    assert len(SearchIndex.load(tmp_path / "index")) == rows + 3
