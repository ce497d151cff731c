"""What the service tells its operator: Prometheus metrics and one access-log line
per request.

Each app has its own metrics registry (nothing goes into prometheus-client's
process-wide default one), so two apps in one process, as in tests, never mix
their counts. Access-log lines are JSON on the ``movierec.access`` logger and
never carry headers, query strings or bodies: no API key, no rating, no search
text ends up in a log.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("movierec.access")

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    """The service's metrics in their own registry."""

    def __init__(self, service: Callable[[], Any]):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "movierec_http_requests",
            "HTTP requests answered, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "movierec_http_request_duration_seconds",
            "Time from request to the end of the answer, by route and status",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ServiceCollector(service))


class _ServiceCollector:
    """Read at scrape time: the live model version and how many ratings and feedback
    rows are stored."""

    def __init__(self, service: Callable[[], Any]):
        self.service = service

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[Any]:
        service = self.service()
        if service is None:
            return
        recommender = service.recommender
        info = InfoMetricFamily("movierec_model", "The models being served")
        info.add_metric(
            [],
            {
                "model_version": service.model_version,
                "retrieval": str(recommender.retrieval.manifest.get("model", "")),
                "ranking": str(recommender.ranking.manifest.get("model", ""))
                if recommender.ranking is not None
                else "",
                "loaded_at": service.loaded_at,
            },
        )
        yield info
        reloads = GaugeMetricFamily("movierec_model_reloads", "Successful reloads since start")
        reloads.add_metric([], service.reloads)
        yield reloads
        trained_at = _unix(service.trained_at)
        if trained_at is not None:
            trained = GaugeMetricFamily(
                "movierec_model_trained_timestamp_seconds",
                "When the live retrieval model was trained (Unix time): alert on its age",
            )
            trained.add_metric([], trained_at)
            yield trained
        ratings = GaugeMetricFamily(
            "movierec_model_training_ratings",
            "Ratings the live retrieval model was trained on, by origin",
            labels=["origin"],
        )
        ratings.add_metric(["all"], service.trained_on_ratings)
        ratings.add_metric(["stored"], service.trained_on_stored)
        yield ratings
        stored = GaugeMetricFamily("movierec_ratings_stored", "Ratings in the ratings database")
        feedback = GaugeMetricFamily(
            "movierec_feedback_stored", "'watched' and 'not-interested' rows in the database"
        )
        try:
            stored.add_metric([], service.store.count())
            feedback.add_metric([], service.store.count_feedback())
        except Exception:  # noqa: BLE001 - a busy database must not fail the scrape
            return
        yield stored
        yield feedback


def _unix(utc: str | None) -> float | None:
    """``2026-12-02T03:25:28Z`` as seconds since the epoch (None if it is not that)."""
    import calendar

    try:
        return float(calendar.timegm(time.strptime(str(utc), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def route_of(scope: Scope) -> str:
    """The route template (``/users/{user_id}/ratings``), never the raw path: ids in
    labels would grow the metrics without bound."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return path
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "unmatched"


class Observe:
    """Outermost middleware: counts and times every answer and logs it in one line."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = 500
        size = 0

        async def observed(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            labels = (scope["method"], route, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(seconds)
            if access_logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_logger.info(
                    json.dumps(
                        {
                            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "request_id": request_id,
                            "client": client[0] if client else None,
                            "method": scope["method"],
                            "route": route,
                            "path": scope.get("path", "")[:200],
                            "status": status,
                            "ms": round(seconds * 1000, 2),
                            "bytes": size,
                        },
                        ensure_ascii=False,
                    )
                )
