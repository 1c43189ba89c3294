"""Helpers of the serve tests: the real `contrastkit serve` in a subprocess on a free port
(for SIGTERM, kill -9 and exit codes), and the app under uvicorn in a thread (for tests that
swap the model for a slow or gated one)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class ServerProcess:
    """`contrastkit serve ARGS --port 0` in a subprocess; `url` once it listens."""

    def __init__(self, *args, env: dict | None = None) -> None:
        environment = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1"}
        environment.update(env or {})
        command = [sys.executable, "-m", "contrastkit.cli", "serve", "--port", "0"]
        self.process = subprocess.Popen(
            [*command, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=environment,
        )  # fmt: skip
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.url: str | None = None
        self.listening = threading.Event()
        threading.Thread(
            target=self._read, args=(self.process.stdout, self.lines), daemon=True
        ).start()
        threading.Thread(
            target=self._read, args=(self.process.stderr, self.errors), daemon=True
        ).start()

    def _read(self, stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            found = LISTENING.search(line)
            if found:
                self.url = found.group(1)
                self.listening.set()

    def wait_listening(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while not self.listening.wait(0.1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start: {self.output()}")
        return self.url

    def wait_ready(self, timeout: float = 90) -> str:
        url = self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server stopped: {self.output()}")
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server was not ready in {timeout} s: {self.output()}")

    def terminate(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def output(self) -> str:
        time.sleep(0.2)  # let the readers catch up
        return "\n".join(self.lines + self.errors)


class ThreadServer:
    """uvicorn serving `app` in a thread of this process, on a free port."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


def wait_until(condition, timeout: float = 30, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(step)


def error_of(response: httpx.Response, status: int) -> dict:
    """The `error` object of a JSON error answer with `status`, checked for its shape: one
    sentence, a type, no traceback."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    message = error["message"]
    assert message and "\n" not in message and "Traceback" not in message, message
    assert isinstance(error["type"], str) and error["type"], error
    return error
