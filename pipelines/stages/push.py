"""`alod push` (DVC stage): send the ranked queries to whoever labels them.

Sink `simulation`: the oracle answers the selected frames from the withheld ground truth and
the answers go into the annotation store, which `export` reads in the next `dvc repro`.
Answers are upserted by frame id, so a rerun after a crash duplicates nothing.

`strategy: box_level` (`pipelines.boxlevel.cycle_mode`): the selected *boxes* go out instead; the
box oracle answers them, or Label Studio shows them as review regions (`pipelines.labelstudio.box_cycle`).

Sink `labelstudio`: pre-annotations from this cycle's registered model for every pool task, with
the strategy's ranking as the prediction score (lower = more informative), the project's model
version set to it, and a Data Manager tab listing the selected tasks in rank order. Tasks that
already have a prediction of this version are skipped and the tab is updated, not duplicated.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from typing import Any

import pandas as pd

from core.settings import load_params, resolve_path
from pipelines.boxlevel import cycle_mode as box_mode
from pipelines.cycle.layout import CycleLayout, read_json, write_json
from pipelines.cycle.oracle import AnnotationStore, oracle_answer
from pipelines.datasets import Manifest

log = logging.getLogger("alod.push")

SINKS = ("simulation", "labelstudio")


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    params = load_params()
    layout = CycleLayout.from_params(params)
    sink = params["cycle"]["source"]
    if sink not in SINKS:
        raise ValueError(f"cycle.source {sink!r} is not supported by push; supported: {SINKS}")
    cycle = int(read_json(layout.snapshot / "snapshot.json")["cycle"])
    selection = pd.read_parquet(layout.selection / "selection.parquet")
    if box_mode.enabled(params):
        receipt = {"cycle": cycle, "sink": sink, **_push_boxes(params, layout, cycle, sink)}
    elif sink == "labelstudio":
        receipt = {"cycle": cycle, "sink": sink, **_to_label_studio(params, layout, cycle, selection)}
    else:
        answers = oracle_answer(Manifest.load(layout.manifest), selection["frame_id"].tolist(), cycle)
        AnnotationStore(layout.annotations).add(answers)
        receipt = {"cycle": cycle, "sink": sink, "frames": len(answers.frames), "boxes": len(answers.boxes)}
        log.info("cycle %d: the oracle answered %d frames with %d boxes", cycle, receipt["frames"], receipt["boxes"])
    write_json(layout.push / "receipt.json", receipt)
    return 0


def _push_boxes(params: dict[str, Any], layout: CycleLayout, cycle: int, sink: str) -> dict[str, Any]:
    """Box mode: the cycle's queried boxes to Label Studio as review regions, or to the box oracle."""
    queries = box_mode.record_queries(layout, cycle)
    manifest = Manifest.load(layout.manifest)
    if sink == "labelstudio":
        from pipelines.labelstudio.box_cycle import push_queries

        return push_queries(params, cycle, queries, manifest.frames, list(manifest.labels.names))
    answers = box_mode.oracle_answers(layout, manifest, queries, params, cycle)
    outcomes = answers["outcome"].value_counts().to_dict()
    log.info(
        "cycle %d: the box oracle answered %d queries on %d frames: %s",
        cycle,
        len(answers),
        answers["frame_id"].nunique(),
        outcomes,
    )
    return {
        "boxes": len(answers),
        "frames": int(answers["frame_id"].nunique()),
        **{f"boxes_{o}": int(n) for o, n in outcomes.items()},
    }


def _to_label_studio(params: dict[str, Any], layout: CycleLayout, cycle: int, selection: pd.DataFrame) -> dict:
    from core.backend_settings import BackendSettings
    from core.predictor import Predictor
    from pipelines.labelstudio import project as lsp
    from pipelines.labelstudio.push_predictions import push as push_predictions

    config = params["datasets"][params["dataset"]["name"]]
    url, key, project = lsp.connection(config)
    ls = lsp.client(config)
    manifest = Manifest.load(layout.manifest)
    scores = lsp.ranked_scores(pd.read_parquet(layout.selection / "priority.parquet"), manifest.frames)
    tasks = manifest.frames["meta"].map(lambda m: json.loads(m).get("ls_task_id"))
    task_of = dict(zip(manifest.frames["frame_id"], tasks, strict=True))
    selected = [int(task_of[f]) for f in selection["frame_id"]]
    evaluated = read_json(layout.metrics / "eval.json")
    model_uri = f"models:/{evaluated['registered_model']}/{evaluated['model_version']}"
    settings = BackendSettings.load()
    if config.get("document_root") and settings.local_files_document_root is None:  # read local files from disk
        settings = replace(settings, local_files_document_root=resolve_path(params, config["document_root"]))
    predictor = Predictor.from_settings(settings, model_uri=model_uri, label_studio_url=url, api_key=key)
    managed = params["label_studio"]
    pushed = push_predictions(
        ls,
        project,
        predictor,
        batch=int(params["backend"]["push_batch"]),
        task_scores=scores,
        set_project_version=bool(managed["set_model_version"]),
        live_queue=bool(managed["live_queue"]),
    )
    payload = lsp.view_payload(cycle, params["strategy"]["name"], lsp.selection_threshold(scores, selected))
    existing = [v for v in ls.views.list(project=project) if (v.data or {}).get("title") == payload["title"]]
    if existing:
        view = ls.views.update(id=existing[0].id, data=payload)
    else:
        view = ls.views.create(project=project, data=payload)
    log.info(
        "cycle %d: %d predictions (%s) pushed to project %d; tab %r lists the %d selected tasks",
        cycle,
        pushed["predicted"],
        pushed["model_version"],
        project,
        payload["title"],
        len(selected),
    )
    return {
        "predicted": pushed["predicted"],
        "skipped": pushed["skipped"],
        "errors": pushed["errors"],
        "model_version": pushed["model_version"],
        "view": view.id,
        "selected_tasks": selected,
    }
