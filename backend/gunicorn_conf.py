"""gunicorn settings for the ML backend; every value can be overridden from the environment.

    gunicorn -c backend/gunicorn_conf.py 'backend.app:create_app()'

Each worker process holds one copy of the model (loaded in the background as soon as the worker
starts, see `post_worker_init`); its threads serve concurrent requests and share that model.
More workers = more model copies and more parallel inference; torch gets CPU cores / workers
threads per worker unless TORCH_THREADS (or backend.torch_threads) says otherwise.
"""

import os
import tempfile

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '9090')}"
workers = int(os.environ.get("WORKERS", "1"))
threads = int(os.environ.get("THREADS", "8"))
worker_class = "gthread"
# Label Studio waits 100 s for /predict; a longer request is already lost, but inference must
# not be killed half-way by a short default.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "300"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
control_socket_disable = True  # gunicorn 26+ would otherwise write a socket under ~/.gunicorn
accesslog = os.environ.get("ACCESS_LOG", "-") or None
loglevel = os.environ.get("LOG_LEVEL", "info")
# The request line limit stays at gunicorn's default; bodies are limited by backend.max_request_mb.


def on_starting(server):  # noqa: ANN001 - gunicorn hook signature
    """One metrics folder shared by this server's workers (summed by /metrics)."""
    if not os.environ.get("ALOD_METRICS_DIR"):
        os.environ["ALOD_METRICS_DIR"] = tempfile.mkdtemp(prefix="alod-metrics-")
    # used when neither backend.torch_threads nor TORCH_THREADS is set (see core/backend_settings.py)
    os.environ["ALOD_DEFAULT_TORCH_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, server.cfg.workers)))


def post_worker_init(worker):  # noqa: ANN001
    """The worker's app exists now: start loading the model in the background, start polling versions."""
    backend = getattr(worker.wsgi, "extensions", {}).get("alod")
    if backend is not None:
        backend.on_worker_start()
