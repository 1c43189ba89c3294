"""Dynamic batching: the inputs of concurrent requests are gathered into one encoder call.

A batch is sent to the encoder when it holds `max_batch_size` inputs or when its oldest
request has waited `max_wait_ms`; the inputs waiting then are shared among the free workers.
The encoder runs in `workers` threads, a batch each (torch lets go of the GIL while it
computes, so on a CPU each worker keeps a core busy); the event loop keeps answering (health
checks, 429s) while they work, and the next batch is gathered while all are busy. At most
`max_queue` inputs wait; a request that would pass it is refused at once (`QueueFull`)
instead of waiting ever longer."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from contrastkit.apps.serve.options import Batching


class QueueFull(Exception):
    """More inputs are waiting than the queue holds."""


@dataclass
class _Request:
    inputs: list | np.ndarray
    future: asyncio.Future
    arrived: float


class Batcher:
    """`await batcher.embed(inputs)` -> float32 (len(inputs), dim), gathered with others."""

    def __init__(
        self,
        encode: Callable[[list | np.ndarray], np.ndarray],
        options: Batching,
        on_batch: Callable[[int], None] = lambda size: None,
        on_depth: Callable[[int], None] = lambda depth: None,
    ) -> None:
        """`encode`: the model (texts, or a float array); `on_batch(size)` is told the size of
        every encoder call and `on_depth(inputs)` the queue's depth whenever it changes."""
        self.encode, self.options = encode, options
        self.on_batch, self.on_depth = on_batch, on_depth
        self.waiting: deque[_Request] = deque()
        self.depth = 0  # inputs waiting, not yet taken by the encoder
        workers = options.workers or 1  # the service decides how many (options.encoder_workers)
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="encoder")
        self.workers = workers
        self.free_workers = asyncio.Semaphore(workers)
        self.busy = 0  # workers encoding a batch now
        self.in_flight: set[asyncio.Task] = set()
        self.task: asyncio.Task | None = None
        self.wake = asyncio.Event()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        await asyncio.gather(*self.in_flight, return_exceptions=True)
        self.executor.shutdown(wait=True)

    async def embed(self, inputs: list | np.ndarray) -> np.ndarray:
        """The embeddings of `inputs`; QueueFull when the queue cannot take them now."""
        if self.depth + len(inputs) > self.options.max_queue:
            raise QueueFull
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(_Request(inputs, future, time.monotonic()))
        self._set_depth(self.depth + len(inputs))
        self.wake.set()
        return await future

    def _set_depth(self, depth: int) -> None:
        self.depth = depth
        self.on_depth(depth)

    async def _run(self) -> None:
        while True:
            await self.free_workers.acquire()
            while not self.waiting:
                self.wake.clear()
                await self.wake.wait()
            await self._gather()
            batch = self._take(self._share())
            if not batch:
                self.free_workers.release()
                continue
            self.busy += 1
            task = asyncio.get_running_loop().create_task(self._encode_then_free(batch))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _encode_then_free(self, batch: list[_Request]) -> None:
        try:
            await self._encode(batch)
        finally:
            self.busy -= 1
            self.free_workers.release()

    async def _gather(self) -> None:
        """Wait until a full batch waits or the oldest request has waited long enough."""
        deadline = self.waiting[0].arrived + self.options.max_wait_ms / 1000
        while self.depth < self.options.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=left)
            except TimeoutError:
                return

    def _share(self) -> int:
        """The inputs this batch may take: the waiting ones shared among the free workers, at
        most max_batch_size. Clients that are answered together come back together; one
        worker taking all of them would leave the others idle."""
        free = max(1, self.workers - self.busy)
        return min(self.options.max_batch_size, -(-self.depth // free))

    def _take(self, limit: int) -> list[_Request]:
        """Whole requests, oldest first, up to `limit` inputs (at least one request);
        requests whose client went away are dropped."""
        batch, size = [], 0
        while self.waiting:
            request = self.waiting[0]
            if batch and size + len(request.inputs) > limit:
                break
            self.waiting.popleft()
            self._set_depth(self.depth - len(request.inputs))
            if not request.future.done():  # cancelled: the client left
                batch.append(request)
                size += len(request.inputs)
        return batch

    async def _encode(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        try:
            Z = await loop.run_in_executor(self.executor, self._encode_batch, batch)
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            for request in batch:  # one bad request must not fail the others
                await self._encode([request])
            return
        start = 0
        for request in batch:
            stop = start + len(request.inputs)
            if not request.future.done():
                request.future.set_result(Z[start:stop])
            start = stop

    def _encode_batch(self, batch: list[_Request]) -> np.ndarray:
        if isinstance(batch[0].inputs, np.ndarray):
            inputs = np.concatenate([r.inputs for r in batch])
        else:
            inputs = [text for r in batch for text in r.inputs]
        self.on_batch(len(inputs))
        return self.encode(inputs)
