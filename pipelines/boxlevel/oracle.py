"""The simulation's annotator for box-level queries: each queried box snaps to ground truth or is removed.

A queried box whose IoU with a ground-truth box of its frame is >= ``iou_snap`` becomes that box
(coordinates and class). Queries compete for ground-truth boxes as detections do in mAP
matching: all (query, ground truth) pairs above the threshold, best IoU first, each taken once.
So a query takes its best-overlapping object unless another query overlaps that object better;
it then takes its next best, or, with none left, is rejected like a false positive (an annotator
deletes the second box on an object). Ground-truth boxes answered in earlier cycles are taken.

A snapped query counts as ``accepted`` when the annotator would have left it alone (same class,
IoU >= ``accept_iou``), else ``corrected``. Every query costs one box (`partial_labels.labeling_cost`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.boxlevel.partial_labels import ANSWER_COLUMNS, XYXY, empty, iou_matrix

# an earlier answer this close to a ground-truth box is that box (answers are snapped copies)
SAME_BOX_IOU = 0.99


def answer_queries(
    queries: pd.DataFrame,
    ground_truth: pd.DataFrame,
    *,
    iou_snap: float = 0.5,
    accept_iou: float = 0.9,
    earlier: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One answer per query (`ANSWER_COLUMNS`), in the queries' order.

    ``ground_truth``: manifest boxes (frame_id, x1, y1, x2, y2, class_id) of at least the queried
    frames; ``earlier``: answers of earlier cycles, whose objects are no longer available."""
    if queries.empty:
        return empty(ANSWER_COLUMNS)
    queries = queries.reset_index(drop=True)
    truth = {f: g for f, g in ground_truth.groupby("frame_id", sort=False)}
    before = {} if earlier is None or earlier.empty else {f: g for f, g in earlier.groupby("frame_id", sort=False)}
    parts = [
        _answer_frame(group, truth.get(frame_id), before.get(frame_id), iou_snap, accept_iou)
        for frame_id, group in queries.groupby("frame_id", sort=False)
    ]
    answers = pd.concat(parts).loc[queries.index]
    return answers[ANSWER_COLUMNS].reset_index(drop=True)


def _answer_frame(
    queries: pd.DataFrame, truth: pd.DataFrame | None, earlier: pd.DataFrame | None, iou_snap: float, accept_iou: float
) -> pd.DataFrame:
    q = queries[XYXY].to_numpy(np.float64)
    g = np.zeros((0, 4)) if truth is None else truth[XYXY].to_numpy(np.float64)
    g_cls = np.zeros(0, int) if truth is None else truth["class_id"].to_numpy(int)
    iou = iou_matrix(q, g)
    taken = np.zeros(len(g), bool)
    if earlier is not None and len(g):
        done = earlier[earlier["outcome"] != "rejected"][XYXY].to_numpy(np.float64)
        taken = (iou_matrix(g, done) >= SAME_BOX_IOU).any(axis=1) if len(done) else taken
    match = np.full(len(q), -1)
    pairs = np.argwhere(iou >= iou_snap)
    for qi, gi in pairs[np.argsort(-iou[pairs[:, 0], pairs[:, 1]], kind="stable")]:
        if match[qi] < 0 and not taken[gi]:
            match[qi], taken[gi] = gi, True

    out = queries[["query_id", "frame_id", *XYXY, "class_id", "cycle"]].copy()
    out["iou"] = iou.max(axis=1) if len(g) else 0.0
    snapped = match >= 0
    out.loc[snapped, XYXY] = g[match[snapped]]
    out.loc[snapped, "iou"] = iou[np.flatnonzero(snapped), match[snapped]]
    same_class = out["class_id"].to_numpy(int) == np.where(snapped, g_cls[np.maximum(match, 0)] if len(g) else -1, -1)
    out["outcome"] = np.where(
        ~snapped, "rejected", np.where(same_class & (out["iou"] >= accept_iou), "accepted", "corrected")
    )
    out.loc[snapped, "class_id"] = g_cls[match[snapped]]
    out.loc[~snapped, "class_id"] = -1
    out["class_id"] = out["class_id"].astype(int)
    return out
