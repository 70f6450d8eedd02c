"""Prometheus metrics summed over worker processes (real child processes share the folder)."""

from __future__ import annotations

import multiprocessing as mp

from backend.metrics import Metrics


def _worker(directory: str, n: int) -> None:
    m = Metrics(directory)
    for _ in range(n):
        m.inc("alod_predicted_tasks_total", {"outcome": "ok"})
    m.observe("alod_request_seconds", 0.2, {"endpoint": "/predict"})
    m.set_gauge("alod_model_info", 1, {"model_version": "m:1"})
    m.render()  # a scrape writes the worker's own file first


def test_counters_are_summed_over_workers_including_exited_ones(tmp_path):
    ctx = mp.get_context("fork")
    for n in (3, 4):
        p = ctx.Process(target=_worker, args=(str(tmp_path), n))
        p.start()
        p.join()
    here = Metrics(tmp_path)
    here.inc("alod_predicted_tasks_total", {"outcome": "ok"})
    text = here.render()
    assert 'alod_predicted_tasks_total{outcome="ok"} 8' in text
    assert 'alod_request_seconds_bucket{endpoint="/predict",le="0.25"} 2' in text
    assert 'alod_request_seconds_bucket{endpoint="/predict",le="0.1"} 0' not in text  # only buckets it reached
    assert 'alod_request_seconds_count{endpoint="/predict"} 2' in text
    assert "alod_model_info" not in text  # gauges of exited workers are dropped
    assert text.count("# TYPE alod_predicted_tasks_total counter") == 1


def test_a_new_model_version_replaces_the_gauge_series():
    m = Metrics()
    m.set_gauge("alod_model_info", 1, {"model_version": "m:1"})
    m.set_gauge("alod_model_info", 1, {"model_version": "m:2"})
    text = m.render()
    assert 'model_version="m:2"' in text and 'model_version="m:1"' not in text
