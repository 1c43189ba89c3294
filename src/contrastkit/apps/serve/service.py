"""`Service`: what the endpoints work with — the embedder, the search index, the recommender,
the duplicate threshold, the batcher — loaded in a background thread after the server starts
listening, so that /health can say "loading" (503) until it is ready."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from contrastkit.apps.serve.batcher import Batcher
from contrastkit.apps.serve.errors import ApiError
from contrastkit.apps.serve.memory import MemoryTrimmer
from contrastkit.apps.serve.metrics import Metrics
from contrastkit.apps.serve.options import Batching, ServeOptions, encoder_workers
from contrastkit.errors import UserError


class Service:
    """The loaded models and the locks that keep the index consistent (one writer at a time;
    searches wait while a write and its save run)."""

    def __init__(self, options: ServeOptions, metrics: Metrics) -> None:
        self.options, self.metrics = options, metrics
        self.embedder = None
        self.index = None
        self.recommender = None
        self.threshold: tuple[float, str] | None = None
        self.batcher: Batcher | None = None
        self.model_name = "loading"
        self.loaded = threading.Event()
        self.failure: Exception | None = None
        self.index_lock = threading.Lock()
        self.notes: list[str] = []  # warnings met while loading, for the console
        self.trim_memory = MemoryTrimmer()

    # -- loading -------------------------------------------------------------------------------
    def load(self) -> None:
        """Load everything (blocking: run it in a thread); a failure is kept in `failure`."""
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._load()
            self.notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        except Exception as exc:  # reported by the server, which then stops
            self.failure = exc
            return
        self.metrics.ready.set(1)
        self.loaded.set()

    def _load(self) -> None:
        from contrastkit.apps.embedder import load_embedder

        options = self.options
        model, vectors = options.model, False
        if options.index is not None and model is None:
            model, vectors = index_model(options.index)
        self.embedder = load_embedder(model, vectors=vectors, cache=False)
        self.model_name = model_name(model, self.embedder.kind)
        warm_up(self.embedder)
        if options.index is not None:
            from contrastkit.apps.search import SearchIndex

            self.index = SearchIndex.load(options.index, embedder=self.embedder)
        if options.recommender is not None:
            from contrastkit.apps.recommend import Recommender

            self.recommender = Recommender.load(options.recommender)
        if options.index is not None:
            from contrastkit.apps.dedup.finder import choose_threshold

            self.threshold = choose_threshold(self.embedder, options.threshold, options.calibration)

    def start(self, on_failure: Callable[[Exception], None], on_ready: Callable[[], None]) -> None:
        """Start the batcher on the running loop and loading in a thread; then
        `on_ready()` (in that thread) or `on_failure(exc)` (on the loop)."""
        loop = asyncio.get_running_loop()
        batching = share_cores(self.options.batching)
        self.batcher = Batcher(
            self._encode, batching, self.metrics.batch_size.observe, self.metrics.queue_depth.set
        )
        self.batcher.start()

        def load_then_report() -> None:
            self.load()
            if self.failure is not None:
                loop.call_soon_threadsafe(on_failure, self.failure)
            else:
                on_ready()

        threading.Thread(target=load_then_report, name="load-model", daemon=True).start()

    def _encode(self, inputs) -> np.ndarray:
        try:
            return self.embedder.encode(inputs)
        finally:
            self.trim_memory()  # in the encoder's thread, whose heap holds the freed tensors

    # -- what the endpoints ask ----------------------------------------------------------------
    def ready(self) -> None:
        """503 until the model is loaded."""
        if not self.loaded.is_set():
            raise ApiError(
                503, "the model is still loading; GET /health says when the service is ready",
                headers={"Retry-After": "1"},
            )  # fmt: skip

    async def with_index(self, function: Callable):
        """`function(index)` in a worker thread, holding the index lock."""

        def locked():
            with self.index_lock:
                return function(self.index)

        return await asyncio.to_thread(locked)

    async def change_index(self, change: Callable):
        """`change(index)` then save the index folder (replaced whole, atomically), holding
        the index lock; if the save fails, the index is read back from the folder, so that
        what is served is always what the folder holds."""

        def locked():
            with self.index_lock:
                try:
                    result = change(self.index)
                    self.index.save(self.options.index, overwrite=True)
                except ApiError:
                    raise  # refused before anything changed
                except BaseException:
                    from contrastkit.apps.search import SearchIndex

                    self.index = SearchIndex.load(self.options.index, embedder=self.embedder)
                    raise
                return result

        return await asyncio.to_thread(locked)

    def need_index(self, path: str):
        self.ready()
        if self.index is None:
            raise ApiError(404, f"{path} needs an index; start the server with --index INDEX_DIR")
        return self.index

    def need_recommender(self, path: str):
        self.ready()
        if self.recommender is None:
            raise ApiError(
                404, f"{path} needs a recommender; start the server with --recommender RUN/model"
            )
        return self.recommender

    @property
    def input_dim(self) -> int | None:
        """The width of the vectors the model takes (models of vectors only)."""
        if self.embedder is None or self.embedder.kind != "vectors":
            return None
        return self.embedder.dim or (self.index.dim if self.index is not None else None)


def share_cores(batching: Batching) -> Batching:
    """`batching` with its number of encoder workers decided; with several, torch's threads
    are shared among them (each worker's operations use its share, not every core)."""
    workers = encoder_workers(batching.workers)
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads() // workers))
    return dataclasses.replace(batching, workers=workers)


def model_name(model: str | None, kind: str) -> str:
    """The `model` the service reports: the model folder's name, or the shipped model's."""
    if model is not None:
        return Path(model).name or str(model)
    return "all-MiniLM-L6-v2" if kind == "text" else "vectors"


def warm_up(embedder) -> None:
    """One encoder call, so that the model's weights are loaded (some load on first use)
    before /health says ready, and the first request does not wait for them."""
    if embedder.kind == "text":
        embedder.encode(["warm-up"])
    elif embedder.kind == "vectors" and embedder.dim is not None:
        embedder.encode(np.ones((1, embedder.dim), dtype=np.float32))


def index_model(index: Path) -> tuple[str | None, bool]:
    """(model reference, vectors?) the index folder was built with."""
    from contrastkit.apps.embedder import VECTORS_FINGERPRINT
    from contrastkit.apps.search.folder import read_manifest

    built = read_manifest(Path(index))["model"]
    return built["reference"], built["fingerprint"] == VECTORS_FINGERPRINT


def check_paths(options: ServeOptions) -> None:
    """The quick checks made before the server listens: the folders exist."""
    for flag, path in (("--index", options.index), ("--recommender", options.recommender)):
        if path is not None and not Path(path).is_dir():
            raise UserError(f"{flag} {path} is not a folder")
