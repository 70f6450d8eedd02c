"""Prometheus metrics of the backend, with `prometheus_client`, summed over gunicorn workers.

Under gunicorn the library's multiprocess mode is on: `backend/gunicorn_conf.py` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before any worker starts (``ALOD_METRICS_DIR``
names it), every worker writes its values to memory-mapped files there, ``/metrics`` sums the
files of every worker (exited ones included, so counters never go backwards when a worker is
replaced), and the ``child_exit`` hook drops the gauges of a worker that exited. Without that
variable (one process, e.g. Flask's test client) each `Metrics` serves its own registry.

The metric families and their label names are declared here (`FAMILIES`); label values come
from closed sets (endpoints, outcomes, known webhook actions), so no request can grow the output.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

# name -> (kind, help, label names)
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "alod_requests_total": ("counter", "HTTP requests by endpoint and status code", ("endpoint", "code")),
    "alod_request_seconds": ("histogram", "HTTP request latency by endpoint", ("endpoint",)),
    "alod_predicted_tasks_total": (
        "counter",
        "tasks answered by /predict and push-predictions, by outcome",
        ("outcome",),
    ),
    "alod_predict_stage_seconds_total": (
        "counter",
        "time spent per prediction stage (fetch, detect, convert)",
        ("stage",),
    ),
    "alod_webhooks_total": ("counter", "webhook events by action", ("action",)),
    "alod_training_runs_total": ("counter", "START_TRAINING requests by outcome", ("outcome",)),
    "alod_model_info": (
        "gauge",
        "the model version a worker serves (1; 0 for a version it served before)",
        ("model_version", "worker"),
    ),
}


def multiprocess_dir() -> str | None:
    """The folder the workers share, when running under gunicorn (see `backend/gunicorn_conf.py`)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The backend's metrics: `inc`, `observe`, `set_gauge` by family name, `render` for ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._families: dict[str, Any] = {}
        for name, (kind, text, labels) in FAMILIES.items():
            if kind == "counter":
                family: Any = Counter(name, text, labels, registry=self.registry)
            elif kind == "histogram":
                family = Histogram(name, text, labels, buckets=BUCKETS, registry=self.registry)
            else:  # a gauge per worker; a worker that exited leaves the sum (gunicorn's child_exit hook)
                family = Gauge(name, text, labels, multiprocess_mode="livesum", registry=self.registry)
            self._families[name] = family
        self._gauge_lock = threading.Lock()
        self._gauge_series: dict[str, dict[str, str]] = {}  # gauge -> the labels it was last set with

    def inc(self, name: str, labels: dict[str, object] | None = None, value: float = 1.0) -> None:
        self._series(name, labels).inc(value)

    def observe(self, name: str, seconds: float, labels: dict[str, object] | None = None) -> None:
        self._series(name, labels).observe(seconds)

    def set_gauge(self, name: str, value: float, labels: dict[str, object] | None = None) -> None:
        """Set this worker's gauge; the series it set before with other labels (an earlier model
        version) drops to 0."""
        current = {k: str(v) for k, v in {**(labels or {}), "worker": os.getpid()}.items()}
        with self._gauge_lock:
            previous = self._gauge_series.get(name)
            if previous is not None and previous != current:
                self._families[name].labels(**previous).set(0)
            self._families[name].labels(**current).set(value)
            self._gauge_series[name] = current

    def render(self) -> bytes:
        """The Prometheus text exposition: of every worker under gunicorn, else of this process."""
        folder = multiprocess_dir()
        if folder is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        return generate_latest(registry)

    def _series(self, name: str, labels: dict[str, object] | None) -> Any:
        family = self._families[name]
        return family.labels(**{k: str(v) for k, v in (labels or {}).items()}) if labels else family


def worker_exited(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: drop the live gauges of an exited worker."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)
