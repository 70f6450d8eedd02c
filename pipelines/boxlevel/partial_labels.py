"""The per-cycle box dataset of box-level active learning: queries, answers, and partial labels.

A box-level cycle asks about single predicted boxes (*queries*). Each query gets one answer:

- ``accepted``: the box was right as predicted (simulation: same class and IoU >= accept_iou);
- ``corrected``: the box was moved and/or relabeled (simulation: snapped to its ground truth);
- ``rejected``: not an object, or a second box on an object already answered: removed;
- ``drawn``: a box the annotator added that no query proposed (Label Studio only).

An image enters training once any of its queries has an answer, a rejection included (the box-level
paper's update rule: a background answer is information too, and an image whose only answers are
rejections trains as background plus its noisy boxes). ``include_background=False`` in
`answered_frames` / `training_boxes` keeps the earlier rule by name (only accepted, corrected or
drawn boxes admit an image). Its answered boxes are labels (weight 1); its other predicted boxes,
unless an answer or a rejection covers them, are *noisy* labels trained with weight lambda_d
(`noisy_weight`), with the loss of Eq. 3 (`pipelines.boxlevel.dampened_training`). Frames of the initial
random set are fully labeled and train on their ground truth. Cost: every query is one box
whatever its answer, a drawn box is one box, noisy boxes cost nothing (`labeling_cost`).

Tables (pandas): `QUERY_COLUMNS`, `ANSWER_COLUMNS` (a rejected answer keeps the query's box, so
the region it declared background stays known, with class_id -1) and `TRAIN_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.datasets.yolo_writer import safe_name, write_yolo_dataset
from strategies.pool import ScoredPool, Selection

QUERY_COLUMNS = ["query_id", "frame_id", "x1", "y1", "x2", "y2", "class_id", "conf", "cycle"]
ANSWER_COLUMNS = ["query_id", "frame_id", "outcome", "x1", "y1", "x2", "y2", "class_id", "iou", "cycle"]
TRAIN_COLUMNS = ["frame_id", "x1", "y1", "x2", "y2", "class_id", "weight"]
OUTCOMES = ("accepted", "corrected", "rejected", "drawn")
ANSWERED = ("accepted", "corrected", "drawn")
XYXY = ["x1", "y1", "x2", "y2"]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) IoU of boxes ``a`` (n, 4) and ``b`` (m, 4), xyxy."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in ("query_id", "frame_id", "outcome") else float) for c in columns}
    )


def queries_from_selection(pool: ScoredPool, selection: Selection, cycle: int) -> pd.DataFrame:
    """The boxes a box-level selection asks about, in rank order (class = the most probable one)."""
    rows = np.asarray(selection.box_indices if selection.box_indices is not None else [], np.int64)
    if not len(rows):
        return empty(QUERY_COLUMNS)
    xyxy = pool.box_xyxy[rows]
    return pd.DataFrame(
        {
            "query_id": [f"{cycle}-{k}" for k in range(len(rows))],
            "frame_id": pool.frame_ids[pool.box_image_index[rows]].astype(str),
            **{c: xyxy[:, i].astype(float) for i, c in enumerate(XYXY)},
            "class_id": pool.box_probs[rows].argmax(axis=1).astype(int),
            "conf": pool.box_conf[rows].astype(float),
            "cycle": cycle,
        }
    )


def covered_boxes(pool: ScoredPool, answers: pd.DataFrame, cover_iou: float = 0.5) -> np.ndarray:
    """(M,) True for predicted boxes that overlap an earlier answer of their frame by IoU >= cover_iou.

    An answered box already labels that object and a rejected one declared the region background:
    neither is asked about again nor trained on as a noisy label."""
    covered = np.zeros(pool.num_boxes, bool)
    if answers.empty or not pool.num_boxes:
        return covered
    position = _positions(pool)
    for frame_id, group in answers.groupby("frame_id", sort=False):
        if str(frame_id) in position:
            rows = pool.boxes_of(position[str(frame_id)])
            done = group[XYXY].to_numpy(np.float64)
            covered[rows] = (iou_matrix(pool.box_xyxy[rows], done) >= cover_iou).any(axis=1)
    return covered


def _positions(pool: ScoredPool) -> dict[str, int]:
    return {str(f): i for i, f in enumerate(pool.frame_ids)}


def restrict(pool: ScoredPool, keep: np.ndarray) -> tuple[ScoredPool, np.ndarray]:
    """The pool with only the ``keep`` boxes, and the original row of each box left (to map back)."""
    keep = np.asarray(keep, bool)
    rows = np.flatnonzero(keep)
    counts = np.bincount(pool.box_image_index[rows], minlength=pool.num_images)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    sub = replace(
        pool,
        box_offsets=offsets,
        box_xyxy=pool.box_xyxy[rows],
        box_conf=pool.box_conf[rows],
        box_probs=pool.box_probs[rows],
        box_embeddings=pool.box_embeddings[rows],
    )
    return sub, rows


def _suppress(xyxy: np.ndarray, conf: np.ndarray, iou: float) -> np.ndarray:
    """Class-agnostic greedy NMS: indices kept, by descending confidence."""
    order, kept = np.argsort(-conf, kind="stable"), []
    alive = np.ones(len(order), bool)
    for k, i in enumerate(order):
        if not alive[k]:
            continue
        kept.append(int(i))
        alive[k + 1 :] &= iou_matrix(xyxy[[i]], xyxy[order[k + 1 :]])[0] < iou
    return np.array(kept, np.int64)


def noisy_boxes(
    pool: ScoredPool, frame_ids: Sequence[str], candidates: np.ndarray, min_conf: float, nms_iou: float = 0.7
) -> pd.DataFrame:
    """Predicted boxes of ``frame_ids`` that become noisy labels: ``candidates`` (not covered by an
    answer) with confidence >= ``min_conf``, one per object (the scoring NMS is per class, so two
    classes can claim one object: the more confident wins)."""
    position = _positions(pool)
    parts = []
    for frame_id in dict.fromkeys(str(f) for f in frame_ids):
        if frame_id not in position:
            continue
        span = pool.boxes_of(position[frame_id])
        rows = np.arange(span.start, span.stop)
        rows = rows[candidates[rows] & (pool.box_conf[rows] >= min_conf)]
        rows = rows[_suppress(pool.box_xyxy[rows], pool.box_conf[rows], nms_iou)] if len(rows) else rows
        if len(rows):
            xyxy = pool.box_xyxy[rows].astype(float)
            parts.append(
                pd.DataFrame(
                    {
                        "frame_id": frame_id,
                        **{c: xyxy[:, j] for j, c in enumerate(XYXY)},
                        "class_id": pool.box_probs[rows].argmax(axis=1).astype(int),
                        "conf": pool.box_conf[rows].astype(float),
                    }
                )
            )
    return pd.concat(parts, ignore_index=True) if parts else empty(["frame_id", *XYXY, "class_id", "conf"])


def answered_frames(answers: pd.DataFrame, include_background: bool = True) -> list[str]:
    """Frames that enter training, in order of first answer: every frame with an answer (the paper's
    rule), or with ``include_background=False`` only frames with an answered (non-rejected) box."""
    if answers.empty:
        return []
    outcomes = OUTCOMES if include_background else ANSWERED
    return list(dict.fromkeys(answers.loc[answers["outcome"].isin(outcomes), "frame_id"].astype(str)))


def training_boxes(
    labeled: pd.DataFrame,
    answers: pd.DataFrame,
    noisy: pd.DataFrame,
    noisy_weight: float,
    include_background: bool = True,
) -> pd.DataFrame:
    """The labels of one training set: ground truth of fully labeled frames and answered boxes
    (weight 1), noisy boxes of the frames `answered_frames` admits (weight ``noisy_weight``).
    A frame admitted with no box at all trains as background: pass `answered_frames` to the writer."""
    if not 0.0 <= noisy_weight <= 1.0:
        raise ValueError(f"noisy_weight (lambda_d) must be in [0, 1], got {noisy_weight}")
    frames = set(answered_frames(answers, include_background))
    done = answers[answers["outcome"].isin(ANSWERED)] if not answers.empty else answers
    parts = [
        labeled[["frame_id", *XYXY, "class_id"]].assign(weight=1.0),
        done[["frame_id", *XYXY, "class_id"]].assign(weight=1.0),
        noisy.loc[noisy["frame_id"].isin(frames), ["frame_id", *XYXY, "class_id"]].assign(weight=float(noisy_weight)),
    ]
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    if out is None:
        return empty(TRAIN_COLUMNS)
    out["class_id"] = out["class_id"].astype(int)
    return out[TRAIN_COLUMNS].reset_index(drop=True)


def labeling_cost(answers: pd.DataFrame) -> dict[str, int]:
    """Boxes of labeling work in ``answers``: each query costs one box whatever the answer, each
    drawn box one box. Noisy labels are not answers, so they can never count."""
    counts = answers["outcome"].value_counts() if not answers.empty else pd.Series(dtype=int)
    n = {o: int(counts.get(o, 0)) for o in OUTCOMES}
    queried = n["accepted"] + n["corrected"] + n["rejected"]
    return {
        "boxes_queried": queried,
        "boxes_accepted": n["accepted"],
        "boxes_corrected": n["corrected"],
        "boxes_rejected": n["rejected"],
        "boxes_drawn": n["drawn"],
        "boxes_cost": queried + n["drawn"],
    }


def write_weighted_yolo_dataset(
    out_dir: Path,
    names: Sequence[str],
    splits: Mapping[str, pd.DataFrame],
    boxes: pd.DataFrame,
    root: Path,
) -> Path:
    """`write_yolo_dataset` with a per-box ``weight``: a frame whose boxes all weigh 1 gets the standard
    5-column label file; a frame with a lighter box gets a 6th column (the weight) on every line,
    which `pipelines.boxlevel.dampened_training.WeightedYOLODataset` reads. Returns the data.yaml path."""
    data_yaml = write_yolo_dataset(out_dir, names, splits, boxes, root)
    if "weight" not in boxes or "train" not in splits:
        return data_yaml
    sizes = splits["train"].set_index("frame_id")[["width", "height"]]
    for frame_id, group in boxes[boxes["frame_id"].isin(set(splits["train"]["frame_id"]))].groupby("frame_id"):
        if (group["weight"] >= 1.0).all():
            continue
        w, h = sizes.loc[frame_id]
        path = data_yaml.parent / "labels" / "train" / f"{safe_name(str(frame_id))}.txt"
        path.write_text("".join(_weighted_line(b, int(w), int(h)) for b in group.itertuples(index=False)))
    return data_yaml


def _weighted_line(b: object, width: int, height: int) -> str:
    x1, y1, x2, y2 = (float(getattr(b, c)) for c in XYXY)
    cx, cy, bw, bh = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
    return f"{int(b.class_id)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f} {float(b.weight):.4f}\n"  # type: ignore[attr-defined]
