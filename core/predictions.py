"""Detections -> Label Studio prediction JSON (regions in percent of the image, in the geometry of
the project's labeling control: `core.labels.control`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.labels import CONTROLS, ClassLabels, Control

# Label Studio's queue that serves the unlabeled task with the lowest prediction score of the
# project's model version first (accepted by open-source 1.23 through the projects API)
UNCERTAINTY_SAMPLING = "Uncertainty sampling"


def _pct(value: float, total: float) -> float:
    return float(min(max(value / total * 100.0, 0.0), 100.0))


def box_region(
    region_id: str,
    xyxy: Any,
    width: int,
    height: int,
    label: str,
    *,
    from_name: str,
    to_name: str,
    control: Control = CONTROLS["rectanglelabels"],
    score: float | None = None,
) -> dict[str, Any]:
    """One labeled region of the box ``xyxy`` (pixels of a ``width`` x ``height`` image, clipped to
    it), in the control's geometry; the one builder of the backend's pre-annotations and of the
    box-level queries."""
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    x, y = _pct(x1, width), _pct(y1, height)
    region = {
        "id": region_id,
        "from_name": from_name,
        "to_name": to_name,
        "type": control.region_type,
        "original_width": int(width),
        "original_height": int(height),
        "image_rotation": 0,
        "value": {**control.geometry(x, y, _pct(x2, width) - x, _pct(y2, height) - y), control.region_type: [label]},
    }
    if score is not None:
        region["score"] = float(score)
    return region


def regions(det: Any, label_map: ClassLabels, min_conf: float) -> list[dict[str, Any]]:
    """One region per box with confidence >= ``min_conf`` whose class maps to a label.

    ``det`` is a `core.detector.ImageDetections` (xyxy in pixels of the original image).
    Coordinates are clipped to the image; the region's ``score`` is the box confidence.
    """
    out: list[dict[str, Any]] = []
    xyxy = np.asarray(det.xyxy, np.float64).reshape(-1, 4)
    for i in np.argsort(-np.asarray(det.conf), kind="stable"):
        conf = float(det.conf[i])
        label = label_map.label_of(int(det.cls[i]))
        if conf < min_conf or label is None:
            continue
        region = box_region(
            f"r{len(out)}",
            xyxy[i],
            int(det.width),
            int(det.height),
            label,
            from_name=label_map.from_name,
            to_name=label_map.to_name,
            control=label_map.control,
            score=conf,
        )
        out.append(region)
    return out


def task_prediction(
    det: Any, label_map: ClassLabels, min_conf: float, score: float, model_version: str
) -> dict[str, Any]:
    """The prediction of one task: its regions, the task score that orders the Data Manager, the version."""
    return {"result": regions(det, label_map, min_conf), "score": float(score), "model_version": model_version}
