"""gunicorn settings for the ML backend; every value can be overridden from the environment.

    gunicorn -c backend/gunicorn_conf.py 'backend.app:create_app()'

Each worker process holds one copy of the model (loaded in the background as soon as the worker
starts, see `post_worker_init`); its threads serve concurrent requests and share that model, and
their images go through shared forward passes (core/batching.py). Workers and threads come from
the hardware (backend/sizing.py: one worker per GPU, else one per CPU core; WORKERS / THREADS
win); torch gets CPU cores / workers threads per worker unless TORCH_THREADS (or
backend.torch_threads) says otherwise.
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backend.sizing import pick_gpu, plan, visible_gpus  # noqa: E402


def _detector_settings() -> dict:
    try:
        from core.settings import load_params

        return load_params().get("detector") or {}
    except Exception:  # noqa: BLE001 - sizing must not stop the server: defaults
        return {}


_detector = _detector_settings()
_plan = plan(gpus=visible_gpus(device=_detector.get("device")), batch=int(_detector.get("batch") or 8))

# loopback unless told otherwise: the container images set HOST=0.0.0.0 (their network is the stack's own)
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '9090')}"
workers = _plan.workers
threads = _plan.threads
# gthread, with each request read by the event loop before a thread serves it (slow clients hold no thread)
worker_class = "backend.worker.BufferingThreadWorker"
# Label Studio waits 100 s for /predict; a longer request is already lost, but inference must
# not be killed half-way by a short default.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
control_socket_disable = True  # gunicorn 26+ would otherwise write a socket under ~/.gunicorn
accesslog = os.environ.get("ACCESS_LOG", "-") or None
loglevel = os.environ.get("LOG_LEVEL", "info")
# The request line limit stays at gunicorn's default; bodies are limited by backend.max_request_mb.


def on_starting(server):  # noqa: ANN001 - gunicorn hook signature
    """One metrics folder shared by this server's workers (prometheus_client's multiprocess mode,
    summed by /metrics): ALOD_METRICS_DIR, emptied, or a fresh temporary folder."""
    folder = os.environ.get("ALOD_METRICS_DIR") or tempfile.mkdtemp(prefix="alod-metrics-")
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):  # values of an earlier server would be summed in
        if name.endswith(".db"):
            os.remove(os.path.join(folder, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    # used when neither backend.torch_threads nor TORCH_THREADS is set (see core/backend_settings.py)
    os.environ["ALOD_DEFAULT_TORCH_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, server.cfg.workers)))


def pre_fork(server, worker):  # noqa: ANN001
    """GPU serving: give the new worker the GPU no live worker holds."""
    taken = [getattr(w, "alod_gpu", None) for w in server.WORKERS.values()]
    worker.alod_gpu = pick_gpu(_plan.gpus, taken)


def post_fork(server, worker):  # noqa: ANN001
    """The worker sees only its GPU (as cuda:0) before torch is imported."""
    gpu = getattr(worker, "alod_gpu", None)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
        os.environ["ALOD__DETECTOR__DEVICE"] = "0"
    server.log.info("worker %s: %s%s", worker.pid, _plan.reason, f", GPU {gpu}" if gpu is not None else "")


def post_worker_init(worker):  # noqa: ANN001
    """The worker's app exists now: start loading the model in the background, start polling versions."""
    backend = getattr(worker.wsgi, "extensions", {}).get("alod")
    if backend is not None:
        backend.on_worker_start()


def child_exit(server, worker):  # noqa: ANN001
    """A worker exited: its counters stay in the sums, its gauges (the model it served) go."""
    from backend.metrics import worker_exited

    worker_exited(worker.pid)
