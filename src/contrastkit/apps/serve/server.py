"""`run_server`: listen (127.0.0.1 unless told otherwise), say where and how to call the
service, serve until SIGTERM or Ctrl-C, finish the requests in flight, then return."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from contrastkit.apps.serve.app import create_app
from contrastkit.apps.serve.options import ServeOptions
from contrastkit.apps.serve.protocol import json_errors_protocol
from contrastkit.apps.serve.service import Service, check_paths
from contrastkit.errors import UserError

# Seconds the requests in flight get to finish after SIGTERM before they are cancelled.
DRAIN_SECONDS = 30
# How long an idle keep-alive connection stays open: longer than the 60 s idle timeout of the
# proxies and load balancers usually put in front, so the server is never the side that closes
# a connection a client is about to reuse (uvicorn's 5 s default raced clients slow to send
# their next request: a few ReadErrors at 128 clients in the load test).
KEEP_ALIVE_SECONDS = 75


class _Server(uvicorn.Server):
    """uvicorn's server, except that after a graceful stop on SIGTERM it returns instead of
    raising the signal again (which would end the process with status 143)."""

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; UserError in one sentence when the address cannot be used."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise UserError(f"--host {host} is not an address or name this machine knows") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} on {host} is in use; choose another --port (0: any free port)"
            ) from None
        if exc.errno == errno.EACCES:
            raise UserError(
                f"no permission to listen on port {port}; use a port above 1023"
            ) from None
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def curl_line(url: str, service: Service, key_file: Path | None) -> str:
    auth = f' -H "Authorization: Bearer $(cat {key_file})"' if key_file is not None else ""
    if service.embedder.kind != "text":
        dim = service.input_dim or "N"
        body = f'{{"input": [[{dim} numbers]]}}'
    else:
        body = '{"input": "a sentence to embed"}'
    return f"curl -s {url}/v1/embeddings{auth} -H 'Content-Type: application/json' -d '{body}'"


def run_server(
    options: ServeOptions,
    host: str = "127.0.0.1",
    port: int = 8000,
    out: Callable[[str], None] = print,
    key_file: Path | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (then finish the requests in flight, up to DRAIN_SECONDS).
    A failure to load the models stops the server and is raised (a UserError for what the
    user can fix: a model/index mismatch, a missing folder)."""
    options.check()
    check_paths(options)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}"
    holder: dict = {}

    def ready(service: Service) -> None:
        out(f"ready: {service.model_name} ({service.embedder.kind})")
        for note in service.notes:
            out(f"warning: {note}")
        out(f"try: {curl_line(url, service, key_file)}")

    def failed(exc: Exception) -> None:
        holder["server"].should_exit = True

    app = create_app(options, None if options.quiet else out, ready, failed)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on",
        timeout_graceful_shutdown=DRAIN_SECONDS, timeout_keep_alive=KEEP_ALIVE_SECONDS,
        http=json_errors_protocol(),
    )  # fmt: skip
    server = holder["server"] = _Server(config)
    out(
        f"listening on {url} (docs: {url}/docs); loading the model, GET {url}/health says when ready"
    )
    if not is_loopback(host) and options.api_key is None:
        out(f"warning: listening on {host} without --api-key-file: anyone who can reach this "
            "machine can use the service")  # fmt: skip
    asyncio.run(server.serve(sockets=[sock]))
    failure = app.state.service.failure
    if failure is not None:
        raise failure
    out("stopped")
