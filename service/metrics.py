"""Prometheus metrics (prometheus-client): HTTP traffic, predictions, batches, the model.

:class:`Metrics` holds the app's metrics in a registry of its own; :class:`HttpMetrics`, a
pure-ASGI middleware that only wraps, counts and times every request by route template.
With several workers (``python -m service`` sets ``PROMETHEUS_MULTIPROC_DIR``) each worker
writes its values to that directory and :func:`exposition` adds them up (prometheus-client's
multiprocess mode); a worker's live gauges go with it when it stops.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.pipeline import InputRejected, Outcome
from service.schemas import NumberDigit, NumberReading, Prediction

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CONFIDENCE_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """Every metric of one app, in its own registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["handler", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer.",
            ["handler", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being handled now.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.predictions = Counter(
            "predictions_total", "Predictions answered, by digit.", ["digit"], registry=registry
        )
        self.not_digits = Counter(
            "not_a_digit_total",
            "Predictions answered with is_digit false (the picture did not look like a digit).",
            registry=registry,
        )
        self.numbers = Counter(
            "numbers_read_total",
            "Pictures of numbers read by /read (their digits count in predictions_total).",
            registry=registry,
        )
        self.confidence = Histogram(
            "prediction_confidence",
            "Calibrated softmax probability of the predicted digit.",
            buckets=CONFIDENCE_BUCKETS,
            registry=registry,
        )
        self.rejections = Counter(
            "rejected_uploads_total",
            "Uploads that could not be predicted, by the status they were answered with.",
            ["status"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "inference_batch_size",
            "Images in one forward pass.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.queued = Histogram(
            "inference_queue_seconds",
            "Time a request waited in the batcher's queue before its forward pass began.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.model_info = Gauge(
            "model_info",
            "The model being served (value 1), by checkpoint sha256 and architecture.",
            ["sha256", "architecture"],
            multiprocess_mode="livemax",
            registry=registry,
        )
        self._model: tuple[str, str] | None = None

    def serving(self, sha256: str, architecture: str) -> None:
        """Mark the model now served; the one served before drops to 0."""
        if self._model is not None:
            self.model_info.labels(*self._model).set(0)
        self._model = (sha256, architecture)
        self.model_info.labels(sha256, architecture).set(1)

    def batch(self, size: int, waited: Sequence[float]) -> None:
        """One forward pass of ``size`` images, and how long each request in it was queued."""
        self.batch_size.observe(size)
        for seconds in waited:
            self.queued.observe(seconds)

    def outcomes(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, InputRejected):
                self.rejections.labels(str(outcome.status)).inc()
            elif isinstance(outcome, NumberReading):
                self.numbers.inc()
                for digit in outcome.digits:
                    self._answered(digit)
            else:
                self._answered(outcome)

    def _answered(self, answer: Prediction | NumberDigit) -> None:
        self.predictions.labels(str(answer.digit)).inc()
        self.confidence.observe(answer.confidence)
        if not answer.is_digit:
            self.not_digits.inc()

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format; every worker's, in multiprocess mode."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    @staticmethod
    def worker_stopped() -> None:
        """In multiprocess mode, drop this worker's live gauges (in-flight, model_info)."""
        if multiprocess_dir() is not None:
            multiprocess.mark_process_dead(os.getpid())


class HttpMetrics:
    """Counts and times every HTTP request, labelled by the route template that served it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, watched)
        finally:
            self.metrics.in_progress.dec()
            route = scope.get("route")
            handler = getattr(route, "path", None) or "none"
            method = scope["method"]
            self.metrics.requests.labels(handler, method, str(status)).inc()
            self.metrics.duration.labels(handler, method).observe(time.perf_counter() - started)
