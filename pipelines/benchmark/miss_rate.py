"""Miss rate at a given number of false positives per image (the pedestrian-detection metric).

The pedestrian-video paper reports, beside average precision, the miss rate at 1 false positive
per image (FPPI). Detections of all test images are sorted by score; in that order each one is
matched to the unmatched ground-truth box of its image with the highest IoU >= ``iou``
(0.5, as Caltech's protocol), else it is a false positive. Lowering the score threshold one
detection at a time traces the curve

    FPPI(t) = FP(t) / images,   miss rate(t) = 1 - TP(t) / ground-truth boxes,

and the reported value is the miss rate at the lowest threshold whose FPPI is still <= the
target (no detection at all: miss rate 1). Ignore regions and height ranges of the Caltech
protocol are not modelled: every ground-truth box counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.boxlevel.partial_labels import iou_matrix


def miss_rate_curve(
    detections: Sequence[tuple[np.ndarray, np.ndarray]], truths: Sequence[np.ndarray], iou: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """(FPPI, miss rate) after each detection in descending score order, over all images.

    ``detections[i]`` is image i's (xyxy (n, 4), scores (n,)); ``truths[i]`` its ground truth (m, 4)."""
    if len(detections) != len(truths):
        raise ValueError(f"{len(detections)} detection lists for {len(truths)} images")
    n_gt = sum(len(t) for t in truths)
    items = [(float(s), i, k) for i, (_, scores) in enumerate(detections) for k, s in enumerate(scores)]
    items.sort(key=lambda t: -t[0])
    pairs = zip(detections, truths, strict=True)
    ious = [iou_matrix(np.asarray(d[0]).reshape(-1, 4), np.asarray(t).reshape(-1, 4)) for d, t in pairs]
    taken = [np.zeros(len(t), bool) for t in truths]
    tp = np.zeros(len(items))
    for j, (_, i, k) in enumerate(items):
        if not len(truths[i]):
            continue
        overlap = np.where(taken[i], -1.0, ious[i][k])
        best = int(overlap.argmax())
        if overlap[best] >= iou:
            taken[i][best] = True
            tp[j] = 1.0
    cum_tp, cum_fp = np.cumsum(tp), np.cumsum(1.0 - tp)
    fppi = cum_fp / max(len(truths), 1)
    miss = 1.0 - cum_tp / n_gt if n_gt else np.zeros(len(items))
    return fppi, miss


def miss_rate_at_fppi(
    detections: Sequence[tuple[np.ndarray, np.ndarray]],
    truths: Sequence[np.ndarray],
    fppi: float = 1.0,
    iou: float = 0.5,
) -> float:
    """Miss rate at the lowest score threshold whose false positives per image stay <= ``fppi``."""
    curve_fppi, miss = miss_rate_curve(detections, truths, iou)
    within = np.flatnonzero(curve_fppi <= fppi + 1e-12)
    if not len(within):
        return 1.0 if sum(len(t) for t in truths) else 0.0
    return float(miss[within[-1]])


def model_miss_rate(
    model_path: Path,
    test: pd.DataFrame,
    boxes: pd.DataFrame,
    root: Path,
    *,
    imgsz: int,
    device: Any = "auto",
    conf: float = 0.001,
    fppi: float = 1.0,
) -> float:
    """Miss rate at ``fppi`` of a trained model on manifest frames ``test`` (ground truth ``boxes``)."""
    from core.detector import Detector
    from core.images import load_image
    from pipelines.datasets.manifest import resolve_image

    detector = Detector(model_path, device=device, imgsz=imgsz, conf=conf)
    detections, truths = [], []
    for row in test.itertuples(index=False):
        det = detector.detect([load_image(resolve_image(row.image, root))])[0]
        detections.append((det.xyxy, det.conf))
        truths.append(boxes.loc[boxes["frame_id"] == row.frame_id, ["x1", "y1", "x2", "y2"]].to_numpy(np.float64))
    return miss_rate_at_fppi(detections, truths, fppi)
