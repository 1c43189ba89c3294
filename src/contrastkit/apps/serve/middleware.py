"""The two layers every request passes before its endpoint (plain ASGI, nothing buffered
that need not be):

`Observe` (outermost): times the request, counts it in the metrics, logs one line (method,
path, status, latency; never a header, so never the key) and answers 500 with one sentence
if an endpoint fails unexpectedly (the traceback goes to the server's log only).

`Guard`: the API key (every path but /health; compared in constant time), writes refused
without a key unless allowed, and the body size limit (413 before the body is read when it
declares its length; a body sent in chunks is counted as it arrives)."""

from __future__ import annotations

import hmac
import sys
import time
import traceback
from collections.abc import Callable

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contrastkit.apps.serve.errors import error_response
from contrastkit.apps.serve.metrics import Metrics
from contrastkit.apps.serve.options import ServeOptions

OPEN_PATHS = ("/health",)
WRITE_PREFIX = "/index/"


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics, log: Callable[[str], None] | None) -> None:
        self.app, self.metrics, self.log = app, metrics, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                status.append("started")
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, sending)
        except Exception:
            print(f"error answering {scope['method']} {scope['path']}:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            if "started" not in status:
                await error_response(
                    500, "the server failed to answer this request; its log has the details"
                )(scope, receive, sending)
        finally:
            self.metrics.in_flight.dec()
        seconds = time.perf_counter() - start
        self.metrics.observe(scope["method"], route_path(scope), status[0], seconds)
        if self.log is not None:
            self.log(f"{scope['method']} {scope['path']} {status[0]} {seconds * 1000:.1f} ms")


def route_path(scope: Scope) -> str:
    """The endpoint's path template (/index/{id}, not every id: a bounded set of labels)."""
    route = scope.get("route")
    if route is None and "app" in scope:
        for candidate in scope["app"].routes:
            if candidate.matches(scope)[0] != Match.NONE:
                route = candidate
                break
    return getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"


class Guard:
    def __init__(self, app: ASGIApp, options: ServeOptions) -> None:
        self.app = app
        self.key = None if options.api_key is None else options.api_key.encode()
        self.open_writes = options.allow_unauthenticated_writes
        self.max_body = options.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            refusal, receive = await self.bounded(scope, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope):
        path, headers = scope["path"], dict(scope["headers"])
        if path in OPEN_PATHS:
            return None
        if self.key is not None:
            scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), self.key):
                return error_response(
                    401, "a valid API key is needed: send the header Authorization: Bearer <key>",
                    code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"},
                )  # fmt: skip
        elif path.startswith(WRITE_PREFIX) and not self.open_writes:
            return error_response(
                403, "writing to the index needs an API key: start the server with "
                "--api-key-file (or --allow-unauthenticated-writes on a trusted network)",
                code="writes_disabled",
            )  # fmt: skip
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return self.too_large(length.decode("latin-1"))
        return None

    def too_large(self, size: str):
        return error_response(
            413, f"the request body is {size} bytes, more than the limit of {self.max_body} "
            "(--max-body-bytes)", code="max_body_bytes",
        )  # fmt: skip

    async def bounded(self, scope: Scope, receive: Receive):
        """(refusal or None, receive): a body without a declared length is read here, up to
        the limit, and handed on whole."""
        if any(name == b"content-length" for name, _ in scope["headers"]):
            return None, receive
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return None, receive
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None, receive
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return self.too_large(f"more than {size}"), receive
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        return None, replayed
