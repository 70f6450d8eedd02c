# CUDA-capable image for the backend and the pipelines. The torch 2.14.1 wheel bundles its CUDA
# runtime (nvidia-* wheels), so a slim Python base is enough; the host's NVIDIA driver is mounted
# by the NVIDIA container toolkit (`docker run --gpus all` or a compose GPU reservation).
FROM python:3.11-slim-bookworm

ENV HOST=0.0.0.0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    YOLO_OFFLINE=1 \
    YOLO_AUTOINSTALL=false \
    YOLO_CONFIG_DIR=/app/.yolo \
    MLFLOW_DISABLE_TELEMETRY=true \
    DVC_NO_ANALYTICS=1 \
    MPLCONFIGDIR=/app/.cache/matplotlib \
    PORT=9090

# OpenCV (pulled in by ultralytics) needs these shared libraries; git for DVC. Debian's
# security updates replace exact versions, so they are not pinned (the Python stack is).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY backend ./backend
COPY strategies ./strategies
COPY pipelines ./pipelines
RUN pip install -c constraints.txt .

COPY params.yaml dvc.yaml ./
RUN useradd --create-home --uid 1000 alod \
    && mkdir -p /app/.yolo /app/.cache /app/data \
    && chown -R 1000:1000 /app
USER 1000:1000

EXPOSE 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/health')"]
CMD ["gunicorn", "--config", "backend/gunicorn_conf.py", "backend.app:create_app()"]
