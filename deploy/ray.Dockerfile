# The alod image plus Ray Data (the `scale` extra): nodes of a scoring cluster, and the driver that
# runs `alod score` with score.engine: ray. `alod` is the backend service's image, handed over by
# docker-compose.yml (build.additional_contexts: alod: service:backend).
# hadolint ignore=DL3006
FROM alod

USER 0
# The versions come from the lock in the base image (/app/constraints.txt, pyproject's extra).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir -c /app/constraints.txt "/app[scale]" \
    && mkdir -p /workspace \
    && chown 1000:1000 /workspace
USER 1000:1000
WORKDIR /workspace
