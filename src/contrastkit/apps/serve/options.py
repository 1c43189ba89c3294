"""What `contrastkit serve` serves and how: the models, the limits on a request, the batching
of the encoder and who may write. Every default that is chosen rather than obvious says here
what it was measured on."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from contrastkit.errors import ConfigError

# Batching, measured with the shipped all-MiniLM-L6-v2 on one-sentence inputs on the 2-core
# development machine (AMD EPYC, shared, one torch thread): 24 texts/s one at a time, 68 in
# batches of 4, 81 of 8, 95 of 16, 97 of 32, 102 of 64, 95 of 128. Throughput is flat from 16
# on, while a batch's time grows with its size (330 ms at 32, 625 ms at 64): 32 keeps most of
# the gain and a bounded wait. A batch waits at most 5 ms for more requests; the next one is
# gathered while the encoder works, so under load batches fill without waiting at all.
MAX_BATCH_SIZE = 32
MAX_WAIT_MS = 5.0
# Texts waiting for the encoder before new requests are refused with 429: at about 100
# texts/s, 512 is a wait of about 5 s (on a GPU, well under one).
MAX_QUEUE = 512
# Encoder threads when none is asked for: one per CPU core the process may use (torch lets go
# of the GIL while it computes), at most MAX_CPU_WORKERS; one on a GPU, which runs one batch
# at a time anyway.
MAX_CPU_WORKERS = 4
# Per request: inputs (OpenAI allows 2048; a request must fit in the queue), characters per
# input (all-MiniLM-L6-v2 reads 256 tokens, about 1000 characters of English; longer texts are
# truncated by the model, not refused, up to this), and the body (256 vectors of 1536 floats
# written as JSON take about 4 MB).
MAX_INPUTS = 256
MAX_CHARS = 8192
MAX_BODY_BYTES = 4 * 1024 * 1024
# Results per query (k) of /search, /duplicates, /recommend and /similar-items.
MAX_K = 1000


@dataclass(frozen=True)
class Limits:
    """What one request may hold; beyond it the service answers 413 naming the limit."""

    max_inputs: int = MAX_INPUTS
    max_chars: int = MAX_CHARS
    max_body_bytes: int = MAX_BODY_BYTES
    max_k: int = MAX_K


@dataclass(frozen=True)
class Batching:
    """How requests are gathered into encoder calls, and how many texts may wait."""

    max_batch_size: int = MAX_BATCH_SIZE
    max_wait_ms: float = MAX_WAIT_MS
    max_queue: int = MAX_QUEUE
    workers: int | None = None  # None: encoder_workers() chooses


@dataclass(frozen=True)
class ServeOptions:
    """Everything `create_app` needs. `model`: a refined model folder, a sentence-transformers
    folder, or None (the index's model when `index` is given, else the shipped
    all-MiniLM-L6-v2). `calibration`: (text pairs, 0/1 labels) to choose the duplicate
    threshold on, or `threshold`. `api_key`: every endpoint but /health needs it; without it,
    writes to the index need `allow_unauthenticated_writes`."""

    model: str | None = None
    index: Path | None = None
    recommender: Path | None = None
    threshold: float | None = None
    calibration: tuple[list, list] | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    allow_unauthenticated_writes: bool = False
    limits: Limits = Limits()
    batching: Batching = Batching()
    quiet: bool = False

    def check(self) -> ServeOptions:
        """ConfigError naming the flag of the first value out of range."""
        values = {
            "max_inputs": self.limits.max_inputs,
            "max_chars": self.limits.max_chars,
            "max_body_bytes": self.limits.max_body_bytes,
            "max_batch_size": self.batching.max_batch_size,
            "max_queue": self.batching.max_queue,
        }
        if self.batching.workers is not None:
            values["workers"] = self.batching.workers
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be a whole number >= 1")
        if not 0 <= self.batching.max_wait_ms <= 10_000:
            raise ConfigError("--max-wait-ms must be between 0 and 10000")
        if self.limits.max_inputs > self.batching.max_queue:
            raise ConfigError(
                f"--max-inputs {self.limits.max_inputs} is larger than --max-queue "
                f"{self.batching.max_queue}: such a request could never be queued"
            )
        if self.threshold is not None and not -1 <= self.threshold <= 1:
            raise ConfigError("--threshold is a cosine similarity in [-1, 1]")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key is empty")
        return self


def encoder_workers(requested: int | None) -> int:
    """The encoder threads to run: `requested`, else one per usable CPU core (at most
    MAX_CPU_WORKERS), or one when a GPU is there."""
    if requested is not None:
        return requested
    import torch

    if torch.cuda.is_available():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_CPU_WORKERS, cores or 1))
