"""Box-level queries to and from a Label Studio project through the SDK.

`push_box_queries` writes each task's queried boxes as one prediction (regions flagged for review,
`pipelines.labelstudio.box_queries.query_prediction`); `fetch_box_answers` reads the latest annotation of
every queried task back into answer rows (`ANSWER_COLUMNS`), which `partial_labels.training_boxes`
turns into the next cycle's labeled set. Tasks are found by the ``frame_id`` in their data.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from pipelines.boxlevel.partial_labels import ANSWER_COLUMNS, empty
from pipelines.labelstudio.box_queries import RegionSchema, answers_from_annotation, query_prediction

log = logging.getLogger("alod.box_labelstudio")


def task_ids_by_frame(ls: Any, project: int) -> dict[str, int]:
    """Task id of every task of ``project`` whose data names a ``frame_id``."""
    return {str(t.data["frame_id"]): int(t.id) for t in ls.tasks.list(project=project) if "frame_id" in (t.data or {})}


def push_box_queries(
    ls: Any,
    project: int,
    queries: pd.DataFrame,
    sizes: dict[str, tuple[int, int]],
    schema: RegionSchema,
    *,
    model_version: str,
) -> dict[str, int]:
    """One prediction per task with queries; returns frame_id -> prediction id. ``sizes``: frame_id -> (w, h)."""
    tasks = task_ids_by_frame(ls, project)
    missing = sorted(set(queries["frame_id"].astype(str)) - set(tasks))
    if missing:
        raise ValueError(f"{len(missing)} queried frames have no task in project {project}: {missing[:5]}")
    created = {}
    for frame_id, group in queries.groupby("frame_id", sort=False):
        width, height = sizes[str(frame_id)]
        body = query_prediction(group, width, height, schema, model_version=model_version)
        prediction = ls.predictions.create(task=tasks[str(frame_id)], **body)
        created[str(frame_id)] = int(prediction.id)
    log.info("pushed %d box queries on %d tasks of project %d", len(queries), len(created), project)
    return created


def fetch_box_answers(
    ls: Any,
    project: int,
    queries: pd.DataFrame,
    schema: RegionSchema,
    *,
    cycle: int,
) -> pd.DataFrame:
    """Answers to ``queries`` from the latest annotation of each queried task (unannotated tasks: none)."""
    tasks = task_ids_by_frame(ls, project)
    parts = []
    for frame_id, group in queries.groupby("frame_id", sort=False):
        annotations = [a for a in ls.annotations.list(id=tasks[str(frame_id)])]
        if not annotations:
            continue
        latest = max(annotations, key=lambda a: (str(a.updated_at or a.created_at), a.id))
        parts.append(answers_from_annotation(latest.model_dump(), group, schema, cycle=cycle, frame_id=str(frame_id)))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else empty(ANSWER_COLUMNS)
