"""Prometheus metrics, one registry per app (tests build many apps in one process).

Requests and latency per route are counted by a pure ASGI middleware; the
scoring path counts results by band, decision and version; reloads count by
outcome. With several uvicorn workers (``python -m serving.app --workers N``
sets ``PROMETHEUS_MULTIPROC_DIR``) the values live in Prometheus' multiprocess
files and every scrape, whichever worker answers it, sums all workers.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import queue
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServiceMetrics:
    """The service's metrics, registered in their own :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._own: list[_DictCollector] = []
        self._served_labels: tuple[str, str] | None = None
        self._children: dict[tuple[Any, ...], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "credit_risk_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "credit_risk_http_request_duration_seconds",
            "Server-side request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "credit_risk_predictions",
            "Scored applicants by model version, risk band and decision",
            ["version", "band", "decision"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "credit_risk_model_reloads", "Model reload attempts by outcome", ["outcome"], registry=self.registry
        )
        self.served = Gauge(
            "credit_risk_served_model_info",
            "1 for the model version being served",
            ["name", "version"],
            registry=self.registry,
            multiprocess_mode="liveall",  # one series per live worker: each says what it serves
        )
        self.ready = Gauge(
            "credit_risk_ready",
            "1 when the service is ready to score",
            registry=self.registry,
            multiprocess_mode="liveall",
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept: the labels' lookup under prometheus' lock costs more than the count
        (their number is bounded: routes x statuses, versions x bands x decisions)."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def set_served(self, name: str, version: str) -> None:
        # set the old series to 0 rather than clearing it: multiprocess mode cannot clear labels
        if self._served_labels is not None and self._served_labels != (name, version):
            self.served.labels(*self._served_labels).set(0)
        self._served_labels = (name, version)
        self.served.labels(name, version).set(1)

    def add_gauges(self, name: str, doc: str, read: Callable[[], dict[str, Any]]) -> None:
        """Expose the numeric entries of ``read()`` (e.g. the log writer's stats) as gauges."""
        self.add_collector(_DictCollector(name, doc, read))

    def add_collector(self, collector: Any) -> None:
        """A collector of this worker's own (its log, the case store's figures), rendered beside the counters."""
        self.registry.register(collector)
        self._own.append(collector)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        # every worker's counters from the multiprocess files, plus this worker's own gauges of its log
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        for collector in self._own:
            combined.register(collector)
        return generate_latest(combined)


class _DictCollector:
    def __init__(self, name: str, doc: str, read: Callable[[], dict[str, Any]]) -> None:
        self._name, self._doc, self._read = name, doc, read

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=["stat", "pid"])
        pid = str(os.getpid())
        for key, value in self._read().items():
            if isinstance(value, bool | int | float) and value is not None:
                family.add_metric([key, pid], float(value))
        yield family


class MetricsMiddleware:
    """Counts every HTTP request and its latency; unknown paths share one label (no cardinality blow-up).

    With ``serving.access_log`` on it also writes one JSON line per request to the ``credit_risk.access``
    logger (method, path, status, milliseconds, client address), handed to a background thread by a queue,
    so the request never waits on the terminal.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: ServiceMetrics,
        routes: Callable[[], set[str]],
        access_log: Callable[[], logging.Logger | None] = lambda: None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self._routes = routes
        self._known: set[str] | None = None
        self._access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._known is None:
            self._known = self._routes()
        path = scope["path"]
        route = path if path in self._known else "other"
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            observe_request(self.metrics, self._access_log(), scope, route, status, time.perf_counter() - started)


def observe_request(
    metrics: ServiceMetrics, access: logging.Logger | None, scope: Scope, route: str, status: int, took: float
) -> None:
    """Count one answered request and its latency; with the access log on, write its JSON line."""
    metrics.child(metrics.latency, route).observe(took)
    metrics.child(metrics.requests, route, str(status)).inc()
    if access is not None:
        access.info(
            orjson.dumps(
                {
                    "ts": time.time(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round(took * 1000, 3),
                    "client": (scope.get("client") or ("", 0))[0],
                }
            ).decode()
        )


def start_access_log() -> tuple[logging.Logger, Callable[[], None]]:
    """The ``credit_risk.access`` logger behind a queue (one JSON line per request, to stderr); returns
    the logger and a function that flushes and stops its writer thread."""
    access = logging.getLogger("credit_risk.access")
    access.propagate = False
    access.setLevel(logging.INFO)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    listener = logging.handlers.QueueListener(records, handler)
    queue_handler = logging.handlers.QueueHandler(records)
    access.handlers = [queue_handler]
    listener.start()

    def stop() -> None:
        listener.stop()
        access.removeHandler(queue_handler)

    return access, stop
