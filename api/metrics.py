"""Prometheus metrics, correct under several gunicorn workers (multiprocess mode).

With ``PROMETHEUS_MULTIPROC_DIR`` set (``gunicorn.conf.py`` sets and clears it), every worker
writes its samples to files there and ``/metrics`` aggregates them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "tribes_requests_total", "HTTP requests answered", ["endpoint", "method", "status"]
)
LATENCY = Histogram(
    "tribes_request_seconds",
    "Time to answer a request",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVENTS = Counter("tribes_events_ingested_total", "Events stored through the API", ["type"])


_children: dict[tuple[str, str, int], tuple] = {}


def request_metrics(endpoint: str, method: str, status: int) -> tuple:
    """The (counter, histogram) children of one endpoint, method and status, looked up once:
    ``labels()`` costs more than the increment itself."""
    key = (endpoint, method, status)
    found = _children.get(key)
    if found is None:
        found = _children[key] = (
            REQUESTS.labels(endpoint, method, str(status)),
            LATENCY.labels(endpoint),
        )
    return found


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
