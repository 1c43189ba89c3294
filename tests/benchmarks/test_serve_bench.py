"""The serve load test's client and Markdown, in a few seconds: its clients against a real
uvicorn server with a toy model (counting 200s, 429s and latencies), and the table they make."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "apps"))

bench = pytest.importorskip("benchmarks.serve_load")
report = pytest.importorskip("benchmarks.serve_report")
from serve_helpers import ThreadServer, wait_until  # noqa: E402

from contrastkit.apps.embedder import Embedder  # noqa: E402
from contrastkit.apps.serve import Batching, Limits, ServeOptions, create_app  # noqa: E402


def toy(texts):
    Z = np.ones((len(texts), 8), np.float32)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


@pytest.fixture
def toy_server(monkeypatch):
    def start(batching: Batching) -> ThreadServer:
        model = Embedder("text", 8, "toy", None, "toy", toy)
        monkeypatch.setattr("contrastkit.apps.embedder.load_embedder", lambda *a, **k: model)
        options = ServeOptions(batching=batching, limits=Limits(max_inputs=1))
        return ThreadServer(create_app(options))

    return start


def test_the_clients_count_answers_and_latencies(toy_server):
    with toy_server(Batching()) as server:
        wait_until(lambda: httpx.get(f"{server.url}/health").status_code == 200)
        record = asyncio.run(bench.level(server.url, ["a question", "another"], 4, 0.5))
    assert record["ok"] > 0 and record["errors"] == {} and record["clients"] == 4
    assert 0 < record["p50_s"] <= record["p99_s"] and record["throughput"] > 0


def test_above_the_queue_only_429s_fail(toy_server):
    with toy_server(Batching(max_batch_size=1, max_wait_ms=50, max_queue=1)) as server:
        wait_until(lambda: httpx.get(f"{server.url}/health").status_code == 200)
        record = asyncio.run(bench.level(server.url, ["a question"], 8, 0.5))
    assert record["ok"] > 0 and set(record["errors"]) == {"429"}
    assert record["p99_429_s"] is not None


def test_the_markdown_table():
    def level(part, clients, throughput, cpu):
        return {"part": part, "clients": clients, "throughput": throughput, "p50_s": 0.1,
                "p99_s": 0.5, "errors": {}, "server_cpu_s": cpu, "client_cpu_s": 1.0,
                "per_cpu_s": throughput * 30 / cpu, "load_before": 1.0, "load_after": 2.0,
                "ok": int(throughput * 30), "seconds": 30}  # fmt: skip

    records = [
        {"part": "offline", "throughput": 100.0, "per_cpu_s": 120.0},
        {"part": "offline-contrastkit", "throughput": 150.0, "per_cpu_s": 160.0},
        level("serve", 32, 90.0, 25.0), level("baseline", 32, 30.0, 30.0),
    ]  # fmt: skip
    meta = {"date": "d", "cpu": "cpu", "cores": 2, "threads": 1, "command": "c",
            "load_at_start": (1, 1, 1), "load_at_end": (2, 2, 2)}  # fmt: skip
    text = report.render(meta, records, SimpleNamespace(seconds=30, small_queue=64))
    row = next(line for line in text.splitlines() if line.startswith("| 32 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "90.0" and cells[5] == "30.0" and cells[9] == "3.0x" and cells[10] == "90%"
    assert cells[11] == "60%" and cells[12] == "108, 30, 120" and cells[13] == "25, 1; 30, 1"
    assert "150.0 texts/s" in text
