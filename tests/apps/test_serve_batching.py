"""Dynamic batching and the event loop: concurrent requests share encoder calls and get their
own rows back, one bad request does not fail the others sharing its batch, a full queue is
refused at once, and /health answers while the model loads (503) and while the encoder works."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import numpy as np
import pytest
from serve_helpers import ThreadServer, error_of, wait_until

from contrastkit.apps.embedder import Embedder
from contrastkit.apps.serve import Batching, ServeOptions, create_app
from contrastkit.apps.serve.batcher import Batcher, QueueFull
from contrastkit.errors import ConfigError, DataError


def fake_vectors(texts: list[str]) -> np.ndarray:
    """A vector per text that depends on the text only (its length and characters)."""
    rows = [[len(t), sum(map(ord, t)) % 97 + 1, t.count("a") + 1, 1.0] for t in texts]
    Z = np.asarray(rows, dtype=np.float32)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_encoder_calls_and_get_their_own_rows():
    calls: list[int] = []

    def encode(texts):
        calls.append(len(texts))
        time.sleep(0.05)
        if "bad" in texts:
            raise DataError("a bad text")
        return fake_vectors(texts)

    async def main():
        batcher = Batcher(encode, Batching(max_batch_size=16, max_wait_ms=20, max_queue=100))
        batcher.start()
        requests = [[f"text {i}", "a" * i] for i in range(20)] + [["bad"]]
        results = await asyncio.gather(
            *(batcher.embed(r) for r in requests), return_exceptions=True
        )
        await batcher.stop()
        return requests, results

    requests, results = run(main())
    for request, result in zip(requests[:-1], results[:-1], strict=True):
        np.testing.assert_array_equal(result, fake_vectors(request))
    assert isinstance(results[-1], DataError)
    assert max(calls) == 16 and len(calls) < 21  # gathered, at most max_batch_size inputs


def test_workers_encode_batches_at_the_same_time_and_rows_stay_their_own():
    active, most = [0], [0]
    lock = threading.Lock()

    def encode(texts):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return fake_vectors(texts)

    async def main(workers: int):
        options = Batching(max_batch_size=2, max_wait_ms=0, max_queue=100, workers=workers)
        batcher = Batcher(encode, options)
        batcher.start()
        requests = [[f"text {i}", "b" * i] for i in range(12)]
        start = time.perf_counter()
        results = await asyncio.gather(*(batcher.embed(r) for r in requests))
        elapsed = time.perf_counter() - start
        await batcher.stop()
        for request, result in zip(requests, results, strict=True):
            np.testing.assert_array_equal(result, fake_vectors(request))
        return elapsed

    one = run(main(1))
    assert most[0] == 1
    three = run(main(3))
    assert most[0] == 3 and three < one * 0.6  # 12 batches of one request, 3 at a time


def test_requests_that_arrive_together_are_shared_among_the_free_workers():
    """Clients answered together come back together: 16 waiting inputs go to two free
    workers as 8 and 8, not 16 to one while the other idles (one at a time still gets all)."""
    calls: list[int] = []
    lock = threading.Lock()

    def encode(texts):
        with lock:
            calls.append(len(texts))
        time.sleep(0.05)
        return fake_vectors(texts)

    async def main(workers: int):
        calls.clear()
        options = Batching(max_batch_size=32, max_wait_ms=30, max_queue=100, workers=workers)
        batcher = Batcher(encode, options)
        batcher.start()
        requests = [[f"text {i}"] for i in range(16)]
        results = await asyncio.gather(*(batcher.embed(r) for r in requests))
        await batcher.stop()
        for request, result in zip(requests, results, strict=True):
            np.testing.assert_array_equal(result, fake_vectors(request))
        return sorted(calls)

    assert run(main(2)) == [8, 8]
    assert run(main(3)) == [5, 5, 6]
    assert run(main(1)) == [16]


def test_the_number_of_workers():
    from contrastkit.apps.serve.options import MAX_CPU_WORKERS, encoder_workers

    assert encoder_workers(3) == 3
    assert 1 <= encoder_workers(None) <= MAX_CPU_WORKERS
    with pytest.raises(ConfigError, match="--workers"):
        ServeOptions(batching=Batching(workers=0)).check()


def test_a_lone_request_waits_at_most_max_wait():
    async def main():
        batcher = Batcher(fake_vectors, Batching(max_batch_size=64, max_wait_ms=30, max_queue=100))
        batcher.start()
        start = time.perf_counter()
        await batcher.embed(["one"])
        elapsed = time.perf_counter() - start
        await batcher.stop()
        return elapsed

    assert 0.025 <= run(main()) < 0.5


def test_a_full_queue_refuses_at_once():
    gate = threading.Event()

    def encode(texts):
        gate.wait(5)
        return fake_vectors(texts)

    async def main():
        batcher = Batcher(encode, Batching(max_batch_size=2, max_wait_ms=0, max_queue=3))
        batcher.start()
        first = asyncio.ensure_future(batcher.embed(["a", "b"]))  # taken by the encoder
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(batcher.embed(["c", "d", "e"]))  # fills the queue
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        with pytest.raises(QueueFull):
            await batcher.embed(["f"])
        refused_in = time.perf_counter() - start
        assert batcher.depth == 3
        gate.set()
        await asyncio.gather(first, waiting)
        assert batcher.depth == 0
        await batcher.stop()
        return refused_in

    assert run(main()) < 0.05


@pytest.fixture
def toy_model(monkeypatch):
    """load_embedder replaced by a toy text model: loading waits for `loading`, every encoder
    call sleeps `delay[0]` seconds and is recorded in `calls`."""
    loading, delay, calls = threading.Event(), [0.0], []

    def encode(texts):
        calls.append(list(texts))
        time.sleep(delay[0])
        return fake_vectors(texts)

    def load(model, **kwargs):
        loading.wait(30)
        return Embedder("text", 4, "toy", None, "the toy model", encode)

    monkeypatch.setattr("contrastkit.apps.embedder.load_embedder", load)
    return loading, delay, calls


def test_health_is_503_until_the_model_is_loaded_and_answers_while_it_encodes(toy_model):
    loading, delay, calls = toy_model
    app = create_app(ServeOptions(batching=Batching(max_wait_ms=0)))
    with ThreadServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/health").status_code == 503
        assert client.get("/health").json() == {"status": "loading"}
        early = client.post("/v1/embeddings", json={"input": "too early"})
        assert error_of(early, 503)["type"] == "service_unavailable"
        assert early.headers["retry-after"] == "1"
        loading.set()
        wait_until(lambda: client.get("/health").status_code == 200)
        assert calls == [["warm-up"]]  # the model ran once before the service said ready
        delay[0] = 1.5
        slow = threading.Thread(
            target=client.post, args=("/v1/embeddings",), kwargs={"json": {"input": "slow"}}
        )
        slow.start()
        time.sleep(0.3)  # the encoder is now busy for a while
        start = time.perf_counter()
        assert client.get("/health").status_code == 200
        assert time.perf_counter() - start < 0.5
        slow.join()
        delay[0] = 0.0
        texts = [f"sentence number {i} with {'a' * i}" for i in range(12)]
        answers = []
        threads = [
            threading.Thread(target=lambda t=t: answers.append((t, client.post("/v1/embeddings", json={"input": t}))))
            for t in texts
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for text, response in answers:
            got = np.array(response.json()["data"][0]["embedding"], dtype=np.float32)
            np.testing.assert_allclose(got, fake_vectors([text])[0], atol=1e-7)


def test_freed_memory_is_given_back_at_most_as_often_as_asked():
    import sys

    from contrastkit.apps.serve.memory import MemoryTrimmer

    trimmer = MemoryTrimmer(every=60)
    glibc = sys.platform.startswith("linux")
    assert trimmer() is glibc  # the first call trims (where glibc is)
    assert trimmer() is False  # and the next ones wait their turn
