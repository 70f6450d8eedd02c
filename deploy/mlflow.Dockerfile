# MLflow tracking server and model registry of the compose stack: the MLflow of alod's lock
# (constraints.txt) plus the PostgreSQL driver for the database backend store.
# Built by docker-compose.yml (context: the repository root).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true

COPY constraints.txt /tmp/constraints.txt
RUN pip install -c /tmp/constraints.txt mlflow psycopg2-binary==2.9.13 \
    && useradd --create-home --uid 1000 mlflow \
    && mkdir -p /mlartifacts \
    && chown 1000:1000 /mlartifacts
USER 1000:1000
WORKDIR /home/mlflow

EXPOSE 5000
