"""MLflow: one run per cycle, the cycle's model registered, an alias that follows the best mAP.

The tracking URI is MLFLOW_TRACKING_URI if set, else `mlflow.tracking_uri` from params.yaml (a
plain path means a local SQLite store, e.g. `mlflow.db` in the repo). Open the UI with
`mlflow ui --backend-store-uri <uri>`.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger("alod.tracking")

CYCLE_TAG = "alod.cycle"


def tracking_uri(params: dict[str, Any]) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params["mlflow"]["tracking_uri"]
    if "://" in uri or uri.startswith("sqlite:"):
        return uri
    path = Path(uri) if Path(uri).is_absolute() else Path(params["_root"]) / uri
    return f"sqlite:///{path.resolve()}"


def ensure_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before any training, when a tracking server is down."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
        except (urllib.error.URLError, OSError, RuntimeError) as e:
            raise RuntimeError(
                f"MLflow tracking server {uri} is not reachable ({e}); start it or set MLFLOW_TRACKING_URI"
            ) from e
    elif uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def experiment_name(params: dict[str, Any]) -> str:
    project = params["mlflow"]["project"] or params["dataset"]["name"]
    return f"{project}-{params['strategy']['name']}"


def registered_model_name(params: dict[str, Any]) -> str:
    return params["mlflow"]["registered_model"] or f"alod-{params['dataset']['name']}"


def connect(params: dict[str, Any]) -> str:
    """Point mlflow at the tracking store and return the experiment id (created if missing)."""
    import mlflow

    uri = tracking_uri(params)
    ensure_reachable(uri)
    mlflow.set_tracking_uri(uri)
    name = experiment_name(params)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None
    if uri.startswith("sqlite:///"):  # keep artifacts beside the local store, not in the cwd
        artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=artifacts)


def start_cycle_run(params: dict[str, Any], cycle: int) -> str:
    """A new run for this cycle. Unfinished runs of the same cycle (a crashed attempt) are deleted
    first, so a rerun after a crash leaves exactly one run per cycle."""
    from mlflow import MlflowClient

    experiment_id = connect(params)
    client = MlflowClient()
    stale = client.search_runs(
        [experiment_id], filter_string=f"tags.`{CYCLE_TAG}` = '{cycle}' and attributes.status != 'FINISHED'"
    )
    for run in stale:
        log.warning("deleting unfinished run %s of cycle %d (an interrupted attempt)", run.info.run_id, cycle)
        client.delete_run(run.info.run_id)
    run = client.create_run(experiment_id, run_name=f"cycle-{cycle}", tags={CYCLE_TAG: str(cycle)})
    return run.info.run_id


def register_model(params: dict[str, Any], run_id: str, model_dir: Path, cycle: int, score: float) -> str:
    """Log the model folder to the run and register it; the alias follows the best score. Returns the version.

    Idempotent per run: a rerun of evaluate for the same run reuses its model version."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    name = registered_model_name(params)
    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # exists
    existing = [v for v in client.search_model_versions(f"name = '{name}'") if v.run_id == run_id]
    if existing:
        version = existing[0].version
    else:
        client.log_artifacts(run_id, str(model_dir), artifact_path="model")
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        from core.model_store import digest_tags  # the server checks this digest before loading the weights

        tags = {CYCLE_TAG: str(cycle), **digest_tags(model_dir)}
        mv = client.create_model_version(name, source, run_id=run_id, tags=tags)
        version = mv.version
    client.set_model_version_tag(name, version, "map50_95", f"{score:.6f}")
    alias = params["mlflow"]["champion_alias"]
    best = _best_version(client, name)
    if best is not None:
        client.set_registered_model_alias(name, alias, best)
    return str(version)


def _best_version(client: Any, name: str) -> str | None:
    scored = [
        (float(v.tags["map50_95"]), int(v.version))
        for v in client.search_model_versions(f"name = '{name}'")
        if "map50_95" in v.tags
    ]
    return str(max(scored)[1]) if scored else None
