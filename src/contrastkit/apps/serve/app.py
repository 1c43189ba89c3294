"""`create_app(options)`: the FastAPI application of `contrastkit serve`.

    app = create_app(ServeOptions(model="run/model", index=Path("my_index")))
    uvicorn.run(app)          # or `contrastkit serve`, which also prints how to call it

The model loads in a background thread once the server runs; /health answers 503 until then.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware import Middleware
from fastapi.responses import JSONResponse, Response

from contrastkit import __version__
from contrastkit.apps.serve import routes_embed, routes_index, routes_recommend
from contrastkit.apps.serve.errors import install_handlers
from contrastkit.apps.serve.metrics import Metrics
from contrastkit.apps.serve.middleware import Guard, Observe
from contrastkit.apps.serve.options import ServeOptions
from contrastkit.apps.serve.service import Service

DESCRIPTION = """Refined embeddings over HTTP: OpenAI-compatible `/v1/embeddings`, search and
near-duplicate checks over an index, recommendations. Errors are JSON:
`{"error": {"message", "type", "param", "code"}}`."""


def create_app(
    options: ServeOptions,
    log: Callable[[str], None] | None = None,
    on_ready: Callable[[Service], None] = lambda service: None,
    on_failure: Callable[[Exception], None] = lambda exc: None,
) -> FastAPI:
    """The application. `log(line)` gets one line per request (None: no request log);
    `on_ready(service)` is called once the models are loaded, `on_failure(exc)` if loading
    fails (the app then answers 503 on every endpoint)."""
    options.check()
    metrics = Metrics()
    service = Service(options, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start(on_failure, lambda: on_ready(service))
        yield
        await service.batcher.stop()

    app = FastAPI(
        title="contrastkit serve",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        middleware=[
            Middleware(Observe, metrics=metrics, log=log),
            Middleware(Guard, options=options),
        ],
    )
    app.state.service = service
    install_handlers(app)
    app.include_router(routes_embed.router)
    app.include_router(routes_index.router)
    app.include_router(routes_recommend.router)

    @app.get("/health", tags=["service"])
    async def health(request: Request) -> JSONResponse:
        """200 once the model is loaded (and the index, the recommender); 503 before. Needs
        no API key."""
        if service.failure is not None:
            return JSONResponse({"status": "failed"}, status_code=503)
        if not service.loaded.is_set():
            return JSONResponse({"status": "loading"}, status_code=503)
        body = {"status": "ready", "model": service.model_name, "kind": service.embedder.kind}
        if service.index is not None:
            body["index_rows"] = len(service.index)
        body["recommender"] = service.recommender is not None
        return JSONResponse(body)

    @app.get("/metrics", tags=["service"])
    async def prometheus() -> Response:
        """Prometheus text format: requests, errors, latency, batch sizes, queue depth."""
        return Response(metrics.text(), media_type=metrics.content_type)

    return app
