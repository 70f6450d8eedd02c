"""Prometheus text metrics, summed over gunicorn workers.

Each worker keeps its counters in memory and writes them to ``<dir>/<pid>.json`` (at most once
a second, and whenever it answers ``/metrics``); ``/metrics`` sums the files of every worker,
including exited ones, so counters never go backwards when a worker is replaced. Without a
directory (a single process, e.g. Flask's test client) only the in-memory values are served.
A scrape may see another worker's numbers up to a second late.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from pathlib import Path

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

HELP = {
    "alod_requests_total": ("counter", "HTTP requests by endpoint and status code"),
    "alod_request_seconds": ("histogram", "HTTP request latency by endpoint"),
    "alod_predicted_tasks_total": ("counter", "tasks answered by /predict and push-predictions, by outcome"),
    "alod_predict_stage_seconds_total": ("counter", "time spent per prediction stage (fetch, detect, convert)"),
    "alod_webhooks_total": ("counter", "webhook events by action"),
    "alod_training_runs_total": ("counter", "START_TRAINING requests by outcome"),
    "alod_model_info": ("gauge", "the model version a worker serves (value 1)"),
}

Key = tuple[str, tuple[tuple[str, str], ...]]


def _key(name: str, labels: dict[str, object] | None) -> Key:
    return name, tuple(sorted((k, str(v)) for k, v in (labels or {}).items()))


class Metrics:
    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self._lock = threading.Lock()
        self._dump_lock = threading.Lock()
        self._counters: dict[Key, float] = defaultdict(float)
        self._gauges: dict[Key, float] = {}
        self._last_dump = 0.0

    def inc(self, name: str, labels: dict[str, object] | None = None, value: float = 1.0) -> None:
        with self._lock:
            self._counters[_key(name, labels)] += value
        self._maybe_dump()

    def observe(self, name: str, seconds: float, labels: dict[str, object] | None = None) -> None:
        with self._lock:
            for le in BUCKETS:
                if seconds <= le:
                    self._counters[_key(name + "_bucket", {**(labels or {}), "le": le})] += 1
            self._counters[_key(name + "_bucket", {**(labels or {}), "le": "+Inf"})] += 1
            self._counters[_key(name + "_sum", labels)] += seconds
            self._counters[_key(name + "_count", labels)] += 1
        self._maybe_dump()

    def set_gauge(self, name: str, value: float, labels: dict[str, object] | None = None) -> None:
        """Set a per-worker gauge; other series of the same name in this worker are dropped (e.g. an old version)."""
        key = _key(name, {**(labels or {}), "worker": os.getpid()})
        with self._lock:
            changed = self._gauges.get(key) != value or any(k[0] == name and k != key for k in self._gauges)
            if changed:
                self._gauges = {k: v for k, v in self._gauges.items() if k[0] != name}
                self._gauges[key] = value
        if changed:
            self._maybe_dump(force=True)

    def _snapshot(self) -> dict[str, list[list[object]]]:
        with self._lock:
            return {
                "counters": [[n, list(map(list, lab)), v] for (n, lab), v in self._counters.items()],
                "gauges": [[n, list(map(list, lab)), v] for (n, lab), v in self._gauges.items()],
            }

    def _maybe_dump(self, force: bool = False) -> None:
        if self.directory is None or (not force and time.monotonic() - self._last_dump < 1.0):
            return
        if not self._dump_lock.acquire(blocking=force):
            return  # another thread is writing this worker's file right now
        try:
            self._last_dump = time.monotonic()
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{os.getpid()}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._snapshot()))
            tmp.replace(path)
        except OSError:
            pass  # metrics must never fail a request
        finally:
            self._dump_lock.release()

    def _collect(self) -> tuple[dict[Key, float], dict[Key, float]]:
        if self.directory is None:
            with self._lock:
                return dict(self._counters), dict(self._gauges)
        self._maybe_dump(force=True)
        counters: dict[Key, float] = defaultdict(float)
        gauges: dict[Key, float] = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            alive = _alive(int(path.stem)) if path.stem.isdigit() else False
            for n, lab, v in data.get("counters", []):
                counters[(n, tuple(tuple(x) for x in lab))] += float(v)
            for n, lab, v in data.get("gauges", []) if alive else []:
                gauges[(n, tuple(tuple(x) for x in lab))] = float(v)
        return counters, gauges

    def render(self) -> str:
        counters, gauges = self._collect()
        lines: list[str] = []
        series = sorted({**counters, **gauges}.items(), key=lambda kv: (_family(kv[0][0]), kv[0][0], _order(kv[0][1])))
        seen: set[str] = set()
        for (name, labels), value in series:
            family = _family(name)
            if family not in seen and family in HELP:
                kind, text = HELP[family]
                lines += [f"# HELP {family} {text}", f"# TYPE {family} {kind}"]
            seen.add(family)
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        return "\n".join(lines) + "\n"


def _family(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HELP:
            return name[: -len(suffix)]
    return name


def _order(labels: tuple[tuple[str, str], ...]) -> tuple[object, ...]:
    out: list[object] = []
    for k, v in labels:
        if k == "le":
            out.append((k, float("inf") if v == "+Inf" else float(v)))
        else:
            out.append((k, v))
    return tuple(out)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
