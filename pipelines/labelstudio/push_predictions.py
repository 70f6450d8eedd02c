"""`alod push-predictions`: predictions for a whole Label Studio project, written through the SDK in batches.

Label Studio waits at most 100 s for ``/predict``, so "Retrieve predictions" on a large pool times
out; this command does the same work from the outside, one batch at a time, with the backend's own
code (`core.predictor.Predictor`: same images, detector, label mapping, task score and
``model_version``). Tasks that already have a prediction of this model version are skipped, so a
rerun only fills the gaps. Finally the project's model version is set to this one (unless
``--keep-project-version``) so the Data Manager orders tasks by these scores.

    alod push-predictions --project 3 [--url http://ls:8080] [--api-key KEY] [--batch 64]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Mapping
from typing import Any

from core.predictions import UNCERTAINTY_SAMPLING

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", type=int, required=True, help="Label Studio project id")
    parser.add_argument("--url", help="Label Studio URL (default: LABEL_STUDIO_URL)")
    parser.add_argument("--api-key", help="Label Studio API key (default: LABEL_STUDIO_API_KEY)")
    parser.add_argument("--model-uri", help="a .pt file or models:/name/version|@alias (default: MODEL_URI / params)")
    parser.add_argument("--batch", type=int, help="tasks per batch (default: backend.push_batch)")
    parser.add_argument("--limit", type=int, help="stop after this many tasks (of those that need a prediction)")
    parser.add_argument(
        "--keep-project-version", action="store_true", help="do not set the project's model version to the one pushed"
    )


def run(args: argparse.Namespace) -> int:
    from label_studio_sdk import LabelStudio

    from core.backend_settings import BackendSettings
    from core.predictor import Predictor

    settings = BackendSettings.load()
    url = (args.url or settings.label_studio_url or "").rstrip("/")
    api_key = args.api_key or settings.label_studio_api_key
    if not url or not api_key:
        raise ValueError("give --url and --api-key, or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY")
    batch = int(args.batch or settings.push_batch)
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")

    predictor = Predictor.from_settings(settings, model_uri=args.model_uri, label_studio_url=url, api_key=api_key)
    client = LabelStudio(base_url=url, api_key=api_key, timeout=300)
    managed = settings.params["label_studio"]
    summary = push(
        client,
        args.project,
        predictor,
        batch=batch,
        limit=args.limit,
        set_project_version=managed["set_model_version"] and not args.keep_project_version,
        live_queue=bool(managed["live_queue"]),
    )
    log.info(
        "project %d: %d tasks, %d already had %s, %d predicted, %d errors in %.1f s",
        args.project,
        summary["tasks"],
        summary["skipped"],
        summary["model_version"],
        summary["predicted"],
        summary["errors"],
        summary["seconds"],
    )
    # a broken image is logged and counted, not fatal; nothing usable at all is (wrong URL, key or storage)
    return 1 if summary["errors"] and not summary["predicted"] and not summary["skipped"] else 0


def push(
    client: Any,
    project_id: int,
    predictor: Any,
    *,
    batch: int = 64,
    limit: int | None = None,
    set_project_version: bool = True,
    live_queue: bool = False,
    task_scores: Mapping[int, float] | None = None,
) -> dict[str, Any]:
    """Predict every task of ``project_id`` lacking a prediction of the current version; returns counts.

    ``task_scores``: only these tasks, with these task scores (the cycle's pool ranking from
    `alod select`) instead of the backend's per-task score."""
    from label_studio_sdk import PredictionRequest

    started = time.perf_counter()
    project = client.projects.get(id=project_id)
    _, ref = predictor.store.model()
    version = ref.version
    predictor.label_map(project.label_config)  # a config the backend cannot use fails before any work
    counts = {"tasks": 0, "skipped": 0, "predicted": 0, "errors": 0}
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        result = predictor.predict(pending, project.label_config)
        if result.model_version != version:
            raise RuntimeError(f"the model changed from {version} to {result.model_version} during the push")
        requests_ = [
            PredictionRequest(
                task=task["id"],
                result=p["result"],
                model_version=p["model_version"],
                score=task_scores[task["id"]] if task_scores is not None else p["score"],
            )
            for task, p in zip(pending, result.results, strict=True)
            if "result" in p
        ]
        if requests_:
            client.projects.import_predictions(id=project_id, request=requests_)
        counts["predicted"] += len(requests_)
        counts["errors"] += result.errors
        log.info("pushed %d predictions (%d errors) so far", counts["predicted"], counts["errors"])
        pending.clear()

    tasks = client.tasks.list(project=project_id, page_size=batch, include="id,data,predictions_model_versions")
    for task in tasks:
        if task_scores is not None and task.id not in task_scores:
            continue
        counts["tasks"] += 1
        versions = {v.strip() for v in str(task.predictions_model_versions or "").split(",")}
        if version in versions:
            counts["skipped"] += 1
            continue
        if limit is not None and counts["predicted"] + counts["errors"] + len(pending) >= limit:
            break
        pending.append({"id": task.id, "data": task.data})
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    fields: dict[str, Any] = {"model_version": version} if set_project_version else {}
    if live_queue:
        fields["sampling"] = UNCERTAINTY_SAMPLING
    if fields and (counts["predicted"] or counts["skipped"]):
        client.projects.update(id=project_id, **fields)
    return {**counts, "model_version": version, "seconds": round(time.perf_counter() - started, 2)}
