"""`contrastkit serve`: refined embeddings, search, duplicate checks and recommendations over
HTTP (FastAPI + uvicorn, the `serve` extra), with dynamic batching, an API key, limits on
every request and Prometheus metrics. `create_app` builds the application; `run_server`
listens, prints how to call it and stops gracefully on SIGTERM. (Both are imported on first
use, so that the options can be read without FastAPI installed.)"""

from contrastkit.apps.serve.options import Batching, Limits, ServeOptions

__all__ = ["Batching", "Limits", "ServeOptions", "create_app", "run_server"]


def __getattr__(name: str):
    if name == "create_app":
        from contrastkit.apps.serve.app import create_app

        return create_app
    if name == "run_server":
        from contrastkit.apps.serve.server import run_server

        return run_server
    raise AttributeError(name)
