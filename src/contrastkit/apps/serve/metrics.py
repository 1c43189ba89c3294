"""The service's Prometheus metrics (`GET /metrics`, text format), in a registry of its own
so that several apps in one process do not mix their figures."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Requests and errors by endpoint and status, latency, encoder batch sizes, queue depth."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "contrastkit_requests",
            "HTTP requests answered.",
            ["method", "path", "status"],
            registry=r,
        )
        self.errors = Counter(
            "contrastkit_errors", "HTTP requests answered with a 4xx or 5xx status.",
            ["method", "path", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "contrastkit_request_latency_seconds", "Time to answer a request.", ["method", "path"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "contrastkit_batch_size", "Inputs per encoder call.", buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "contrastkit_queue_depth", "Inputs waiting for the encoder.", registry=r
        )
        self.in_flight = Gauge(
            "contrastkit_requests_in_flight", "Requests being answered now.", registry=r
        )
        self.ready = Gauge("contrastkit_ready", "1 once the model is loaded.", registry=r)

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        self.requests.labels(method, path, str(status)).inc()
        if status >= 400:
            self.errors.labels(method, path, str(status)).inc()
        self.latency.labels(method, path).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
