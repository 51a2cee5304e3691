"""Prometheus metrics, one registry per app; with several workers, prometheus_client's multiprocess mode."""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 5000)


class Metrics:
    """The service's counters and histograms."""

    def __init__(self) -> None:
        # The *_created series double the output and no dashboard reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("uxcx_requests", "HTTP requests by route, method and status", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "uxcx_request_duration_seconds", "HTTP request latency by route", ["route", "method"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.predictions = Counter("uxcx_predictions", "texts classified, by primary label", ["label"], registry=r)
        self.batch_size = Histogram("uxcx_request_items", "texts per classify request", buckets=_BATCH_BUCKETS, registry=r)
        self.model_batch = Histogram(
            "uxcx_model_batch_items", "texts per model call (requests merged by the batcher)", buckets=_BATCH_BUCKETS, registry=r
        )
        self.recorded = Counter("uxcx_records_written", "predictions written to the database", registry=r)
        self.record_failures = Counter(
            "uxcx_records_failed",
            "predictions answered but not written at once because the database failed (kept in memory for a retry)",
            registry=r,
        )
        self.record_errors = Counter("uxcx_record_write_errors", "failed attempts to write predictions", registry=r)
        self.records_pending = Gauge(
            "uxcx_records_pending", "predictions waiting in memory for the database", registry=r, multiprocess_mode="livesum"
        )
        self.records_dropped = Counter(
            "uxcx_records_dropped", "predictions never recorded: the database stayed down past the buffer", registry=r
        )
        self.model_info = Gauge(
            "uxcx_model_info", "the model version served (value 1)", ["version"], registry=r, multiprocess_mode="liveall"
        )

    def set_model(self, version: str, previous: str | None = None) -> None:
        """Say which model version is served."""
        if previous is not None and previous != version:
            self.model_info.labels(version=previous).set(0)
        self.model_info.labels(version=version).set(1)

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format (all workers' when in multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts requests and times them by route template (unmatched paths share one label)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(name, method, str(status["code"])).inc()
            self.metrics.latency.labels(name, method).observe(time.perf_counter() - start)
