"""Prometheus metrics summed over worker processes: prometheus_client's multiprocess mode, with real
child processes sharing the folder as gunicorn's workers do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from backend.metrics import Metrics

WORKER = textwrap.dedent(
    """
    import os, sys
    from backend.metrics import Metrics
    m = Metrics()
    for _ in range(int(sys.argv[1])):
        m.inc("alod_predicted_tasks_total", {"outcome": "ok"})
    m.observe("alod_request_seconds", 0.2, {"endpoint": "/predict"})
    m.set_gauge("alod_model_info", 1, {"model_version": "m:1"})
    print(os.getpid())
    """
)
SCRAPE = textwrap.dedent(
    """
    import os, sys
    from backend.metrics import Metrics, worker_exited
    for pid in sys.argv[1:]:
        worker_exited(int(pid))  # gunicorn's child_exit hook
    m = Metrics()
    m.inc("alod_predicted_tasks_total", {"outcome": "ok"})
    m.set_gauge("alod_model_info", 1, {"model_version": "m:2"})
    print(m.render().decode())
    """
)


def _python(code: str, folder, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True, timeout=120
    )


def test_counters_are_summed_over_workers_including_exited_ones_and_their_gauges_dropped(tmp_path):
    pids = [_python(WORKER, tmp_path, str(n)).stdout.strip() for n in (3, 4)]
    text = _python(SCRAPE, tmp_path, *pids).stdout
    assert 'alod_predicted_tasks_total{outcome="ok"} 8.0' in text
    assert 'alod_request_seconds_bucket{endpoint="/predict",le="0.25"} 2.0' in text
    assert 'alod_request_seconds_bucket{endpoint="/predict",le="0.1"} 0.0' in text
    assert 'alod_request_seconds_count{endpoint="/predict"} 2.0' in text
    assert 'model_version="m:1"' not in text  # gauges of exited workers are dropped
    assert 'model_version="m:2"' in text
    assert text.count("# TYPE alod_predicted_tasks_total counter") == 1


def test_a_new_model_version_takes_over_the_gauge_and_the_old_one_reads_zero():
    m = Metrics()
    m.set_gauge("alod_model_info", 1, {"model_version": "m:1"})
    m.set_gauge("alod_model_info", 1, {"model_version": "m:2"})
    text = m.render().decode()
    pid = os.getpid()
    assert f'alod_model_info{{model_version="m:2",worker="{pid}"}} 1.0' in text
    assert f'alod_model_info{{model_version="m:1",worker="{pid}"}} 0.0' in text


def test_two_backends_in_one_process_keep_their_own_counts():
    a, b = Metrics(), Metrics()
    a.inc("alod_webhooks_total", {"action": "ANNOTATION_CREATED"})
    assert 'alod_webhooks_total{action="ANNOTATION_CREATED"} 1.0' in a.render().decode()
    assert "ANNOTATION_CREATED" not in b.render().decode()
