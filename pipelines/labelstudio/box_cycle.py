"""The box-level cycle mode's Label Studio side: push a cycle's queries, fetch every answer so far.

`push_queries` sends the cycle's queried boxes as review regions (`box_sync.push_box_queries`) under the
model version ``alod-box-cycle-<n>`` and makes it the project's model version with predictions shown to
annotators, so opening a queried task prelabels exactly its queried boxes; a rerun of the cycle replaces
its predictions. `fetch_answers` reads the latest annotation of every task ever queried
(`box_sync.fetch_box_answers`), each answer tagged with the cycle that asked.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from core.labels import build_label_map
from pipelines.boxlevel.partial_labels import ANSWER_COLUMNS, empty
from pipelines.labelstudio import project as lsp
from pipelines.labelstudio.box_queries import RegionSchema
from pipelines.labelstudio.box_sync import fetch_box_answers, push_box_queries

log = logging.getLogger("alod.box_labelstudio")


def version_of(cycle: int) -> str:
    return f"alod-box-cycle-{cycle}"


def region_schema(ls: Any, project: int, class_names: list[str] | tuple[str, ...]) -> RegionSchema:
    """Where query regions go in the project's labeling config; every model class needs a label."""
    label_map = build_label_map(ls.projects.get(id=project).label_config, class_names)
    labels = [label_map.label_of(i) for i in range(len(class_names))]
    missing = [n for n, label in zip(class_names, labels, strict=True) if label is None]
    if missing:
        raise ValueError(f"classes {missing} have no label in <RectangleLabels name={label_map.from_name!r}>")
    return RegionSchema(from_name=label_map.from_name, to_name=label_map.to_name, labels=tuple(labels))  # type: ignore[arg-type]


def _connect(params: dict[str, Any]) -> tuple[Any, int]:
    config = params["datasets"][params["dataset"]["name"]]
    return lsp.client(config), lsp.connection(config)[2]


def push_queries(
    params: dict[str, Any], cycle: int, queries: pd.DataFrame, frames: pd.DataFrame, class_names: list[str]
) -> dict[str, Any]:
    """The cycle's queries as predictions (one per queried task); ``frames``: the manifest's, for image sizes."""
    ls, project = _connect(params)
    version = version_of(cycle)
    stale = [p.id for p in ls.predictions.list(project=project) if p.model_version == version]
    for prediction in stale:  # a rerun of this cycle: replace, never duplicate
        ls.predictions.delete(id=prediction)
    asked = frames[frames["frame_id"].isin(set(queries["frame_id"]))]
    sizes = {
        str(f): (int(w), int(h)) for f, w, h in zip(asked["frame_id"], asked["width"], asked["height"], strict=True)
    }
    created = push_box_queries(
        ls, project, queries, sizes, region_schema(ls, project, class_names), model_version=version
    )
    ls.projects.update(id=project, model_version=version, show_collab_predictions=True)
    log.info(
        "cycle %d: %d box queries on %d tasks of project %d (model version %s)",
        cycle,
        len(queries),
        len(created),
        project,
        version,
    )
    return {
        "model_version": version,
        "boxes": len(queries),
        "frames": len(created),
        "replaced": len(stale),
        "predictions": sorted(created.values()),
    }


def fetch_answers(params: dict[str, Any], queries: pd.DataFrame, class_names: list[str]) -> pd.DataFrame:
    """Answers (`ANSWER_COLUMNS`) to every query so far; queries of unannotated tasks have none yet."""
    if queries.empty:
        return empty(ANSWER_COLUMNS)
    ls, project = _connect(params)
    schema = region_schema(ls, project, class_names)
    parts = [
        fetch_box_answers(ls, project, group, schema, cycle=int(cycle))
        for cycle, group in queries.groupby("cycle", sort=True)
    ]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else empty(ANSWER_COLUMNS)
