"""Detections -> Label Studio prediction JSON (``rectanglelabels`` regions in percent of the image)."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.labels import LabelMap

# Label Studio's queue that serves the unlabeled task with the lowest prediction score of the
# project's model version first (accepted by open-source 1.23 through the projects API)
UNCERTAINTY_SAMPLING = "Uncertainty sampling"


def _pct(value: float, total: int) -> float:
    return float(min(max(value / total * 100.0, 0.0), 100.0))


def regions(det: Any, label_map: LabelMap, min_conf: float) -> list[dict[str, Any]]:
    """One region per box with confidence >= ``min_conf`` whose class maps to a label.

    ``det`` is a `core.detector.ImageDetections` (xyxy in pixels of the original image).
    Coordinates are clipped to the image; the region's ``score`` is the box confidence.
    """
    out: list[dict[str, Any]] = []
    w, h = int(det.width), int(det.height)
    xyxy = np.asarray(det.xyxy, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(det.conf), kind="stable")
    for i in order:
        conf = float(det.conf[i])
        label = label_map.label_of(int(det.cls[i]))
        if conf < min_conf or label is None:
            continue
        x1, y1, x2, y2 = xyxy[i]
        x, y = _pct(x1, w), _pct(y1, h)
        out.append(
            {
                "id": f"r{len(out)}",
                "from_name": label_map.from_name,
                "to_name": label_map.to_name,
                "type": "rectanglelabels",
                "original_width": w,
                "original_height": h,
                "image_rotation": 0,
                "value": {
                    "x": x,
                    "y": y,
                    "width": _pct(x2, w) - x,
                    "height": _pct(y2, h) - y,
                    "rotation": 0,
                    "rectanglelabels": [label],
                },
                "score": conf,
            }
        )
    return out


def task_prediction(det: Any, label_map: LabelMap, min_conf: float, score: float, model_version: str) -> dict[str, Any]:
    """The prediction of one task: its regions, the task score that orders the Data Manager, the version."""
    return {"result": regions(det, label_map, min_conf), "score": float(score), "model_version": model_version}
