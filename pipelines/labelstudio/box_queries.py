"""Box-level queries in Label Studio, as pure JSON conversions (the backend sends and fetches them).

Out: `query_prediction` turns one task's queried boxes into a prediction whose regions are
exactly the queried boxes, each flagged for review: region id ``alod-q-<query id>``, region
``meta.text`` with the instruction, its confidence as the region ``score``. Only queried boxes
are pre-annotated, so everything pre-drawn on a task is to be reviewed (docs/box_level.md).

Back: `answers_from_annotation` reads the annotator's result into `ANSWER_COLUMNS` rows:

- a queried region still present: ``accepted`` if untouched (Label Studio's ``origin`` is
  "prediction", or the box moved less than ``tolerance_px`` and kept its label), else ``corrected``;
- a queried region that is gone: ``rejected`` (deleted: not an object);
- any other rectangle: ``drawn`` (an object the annotator added; query id ``drawn-<region id>``).

Queried regions are found by their id; when no id of the result carries the prefix (a client
that renumbered regions), by IoU >= ``match_iou`` instead, best overlap first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.predictions import box_region
from pipelines.boxlevel.partial_labels import ANSWER_COLUMNS, XYXY, empty, iou_matrix

REGION_PREFIX = "alod-q-"
REVIEW_NOTE = "alod review: fit the box to the object and fix its label, or delete the box if there is no object"


@dataclass(frozen=True)
class RegionSchema:
    """Where boxes go in the labeling config and which label each class id becomes."""

    from_name: str  # the <RectangleLabels> name
    to_name: str  # the <Image> name
    labels: Sequence[str]  # the Label Studio label of class id 0, 1, ...

    def class_of(self, label: str) -> int:
        try:
            return list(self.labels).index(label)
        except ValueError:
            raise ValueError(f"label {label!r} is not one of the model's classes {list(self.labels)}") from None


def region_id(query_id: str) -> str:
    return f"{REGION_PREFIX}{query_id}"


def query_regions(queries: pd.DataFrame, width: int, height: int, schema: RegionSchema) -> list[dict[str, Any]]:
    """One ``rectanglelabels`` region per queried box of one task, flagged for review."""
    return [
        {
            **box_region(
                region_id(str(q.query_id)),
                (q.x1, q.y1, q.x2, q.y2),
                width,
                height,
                schema.labels[int(q.class_id)],
                from_name=schema.from_name,
                to_name=schema.to_name,
                score=float(q.conf),
            ),
            "meta": {"text": [REVIEW_NOTE]},
        }
        for q in queries.itertuples(index=False)
    ]


def query_prediction(
    queries: pd.DataFrame,
    width: int,
    height: int,
    schema: RegionSchema,
    *,
    model_version: str,
    score: float | None = None,
) -> dict[str, Any]:
    """The prediction of one task. ``score`` orders the Data Manager (lowest first); by default the
    confidence of the least confident query, so tasks with the most doubtful boxes come first."""
    if score is None:
        score = float(queries["conf"].min()) if len(queries) else 1.0
    return {
        "result": query_regions(queries, width, height, schema),
        "score": float(score),
        "model_version": model_version,
    }


def region_xyxy(region: dict[str, Any], width: int | None = None, height: int | None = None) -> np.ndarray:
    """Pixel xyxy of a rectangle region (the bounding box of a rotated one; rotation is about its top left)."""
    w = float(region.get("original_width") or width or 0)
    h = float(region.get("original_height") or height or 0)
    if not w or not h:
        raise ValueError(f"region {region.get('id')!r} has no original_width/height and none was given")
    v = region["value"]
    x, y, bw, bh = v["x"] / 100 * w, v["y"] / 100 * h, v["width"] / 100 * w, v["height"] / 100 * h
    angle = math.radians(float(v.get("rotation") or 0.0))
    corners = np.array([[0, 0], [bw, 0], [bw, bh], [0, bh]], np.float64)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = corners @ rot.T + [x, y]
    return np.array([*pts.min(axis=0), *pts.max(axis=0)])


def _rectangles(annotation: dict[str, Any], schema: RegionSchema) -> list[dict[str, Any]]:
    return [
        r
        for r in annotation.get("result") or []
        if r.get("type") == "rectanglelabels" and r.get("from_name") == schema.from_name
    ]


def _match(regions: list[dict[str, Any]], boxes: np.ndarray, queries: pd.DataFrame, match_iou: float) -> dict[int, int]:
    """Region index -> query position: by region id, or by IoU when the ids were not kept."""
    ids = [str(r.get("id", "")) for r in regions]
    if any(i.startswith(REGION_PREFIX) for i in ids):
        position = {region_id(str(q)): k for k, q in enumerate(queries["query_id"])}
        return {i: position[rid] for i, rid in enumerate(ids) if rid in position}
    iou = iou_matrix(boxes, queries[XYXY].to_numpy(np.float64))
    pairs = np.argwhere(iou >= match_iou)
    matched: dict[int, int] = {}
    for ri, qi in pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")]:
        if ri not in matched and qi not in matched.values():
            matched[int(ri)] = int(qi)
    return matched


def answers_from_annotation(
    annotation: dict[str, Any],
    queries: pd.DataFrame,
    schema: RegionSchema,
    *,
    cycle: int,
    frame_id: str,
    width: int | None = None,
    height: int | None = None,
    match_iou: float = 0.5,
    tolerance_px: float = 1.0,
) -> pd.DataFrame:
    """The answers (`ANSWER_COLUMNS`) in one task's annotation to its ``queries``; none for a skipped task."""
    if annotation.get("was_cancelled"):
        return empty(ANSWER_COLUMNS)
    queries = queries.reset_index(drop=True)
    regions = _rectangles(annotation, schema)
    boxes = np.array([region_xyxy(r, width, height) for r in regions]).reshape(-1, 4)
    matched = _match(regions, boxes, queries, match_iou)
    rows = []
    for i, region in enumerate(regions):
        labels = region["value"].get("rectanglelabels") or []
        if not labels:
            raise ValueError(f"region {region.get('id')!r} of {frame_id} has no label")
        cls = schema.class_of(labels[0])
        if i in matched:
            q = queries.iloc[matched[i]]
            query_box = q[XYXY].to_numpy(np.float64)
            kept = region.get("origin") == "prediction" or (
                cls == int(q["class_id"]) and np.abs(boxes[i] - query_box).max() <= tolerance_px
            )
            rows.append(
                _row(
                    str(q["query_id"]),
                    frame_id,
                    "accepted" if kept else "corrected",
                    boxes[i],
                    cls,
                    float(iou_matrix(boxes[[i]], query_box)[0, 0]),
                    cycle,
                )
            )
        else:
            rows.append(_row(f"drawn-{region.get('id', i)}", frame_id, "drawn", boxes[i], cls, 0.0, cycle))
    answered = set(matched.values())
    for k, q in queries.iterrows():
        if k not in answered:
            rows.append(_row(str(q["query_id"]), frame_id, "rejected", q[XYXY].to_numpy(np.float64), -1, 0.0, cycle))
    return pd.DataFrame(rows, columns=ANSWER_COLUMNS) if rows else empty(ANSWER_COLUMNS)


def _row(query_id: str, frame_id: str, outcome: str, xyxy: np.ndarray, cls: int, iou: float, cycle: int) -> dict:
    return {
        "query_id": query_id,
        "frame_id": frame_id,
        "outcome": outcome,
        **{c: float(v) for c, v in zip(XYXY, xyxy, strict=True)},
        "class_id": int(cls),
        "iou": iou,
        "cycle": cycle,
    }
