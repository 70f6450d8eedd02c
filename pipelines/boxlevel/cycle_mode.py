"""`strategy: box_level` as a mode of the DVC cycle: each stage's box-level branch.

The cycle is the image-level one (export -> train -> evaluate -> score -> select -> push); with
``strategy.name: box_level`` the stages exchange boxes instead of frames:

- `select` drops predicted boxes an earlier answer covers (`partial_labels.covered_boxes`), lets the
  `box_level` strategy pick boxes within ``budget.boxes`` and writes them as ``queries.parquet``,
  plus ``noisy_candidates.parquet``: the selecting model's predicted boxes (>= noisy_conf, one per
  object) of every frame answered so far or queried now, the noisy labels of the next training.
- `push` copies both into the box store (``<cycle.dir>/annotations/box/``); in simulation the box
  oracle answers the queries there (`pipelines.boxlevel.oracle.answer_queries`); with Label Studio
  the queries become review regions (`pipelines.labelstudio.box_cycle`).
- `export` reads every answer so far (the store's, or Label Studio's) into the snapshot:
  ``box_answers.parquet`` (accepted / corrected / rejected / drawn) and ``noisy_boxes.parquet``
  (the candidates of answered frames that no answer covers). ``labeled_frames.parquet`` keeps only
  fully labeled frames (the initial random set), which are never asked about.
- `train` trains with the dampened loss on those plus the fully labeled frames (`training_table`).
- `evaluate` counts cost in boxes touched (`cost_metrics`): every query whatever its answer, every
  drawn box, the fully labeled frames' boxes; noisy labels never count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.boxlevel.oracle import answer_queries
from pipelines.boxlevel.partial_labels import (
    ANSWER_COLUMNS,
    QUERY_COLUMNS,
    XYXY,
    answered_frames,
    covered_boxes,
    empty,
    iou_matrix,
    labeling_cost,
    noisy_boxes,
    queries_from_selection,
    restrict,
    training_boxes,
)
from pipelines.boxlevel.settings import BoxSettings
from pipelines.cycle.layout import CycleLayout, write_parquet
from pipelines.datasets import Manifest
from strategies.pool import ScoredPool, Selection

STRATEGY = "box_level"
ANSWERS, NOISY = "box_answers.parquet", "noisy_boxes.parquet"  # snapshot files
QUERIES, CANDIDATES = "queries.parquet", "noisy_candidates.parquet"  # selection files (this cycle's)
CANDIDATE_COLUMNS = ["frame_id", *XYXY, "class_id", "conf"]


def enabled(params: dict[str, Any]) -> bool:
    return params["strategy"]["name"] == STRATEGY


def settings(params: dict[str, Any]) -> BoxSettings:
    return BoxSettings.resolve(params, {})


def noisy_conf(params: dict[str, Any]) -> float:
    chosen = settings(params).noisy_conf
    return float(params["budget"]["box_conf_threshold"] if chosen is None else chosen)


def store(layout: CycleLayout) -> Path:
    """The box store: what was asked (all cycles), the noisy candidates, the simulation's answers."""
    return layout.annotations / "box"


def read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else empty(columns)


def snapshot_answers(layout: CycleLayout) -> pd.DataFrame:
    return read_table(layout.snapshot / ANSWERS, ANSWER_COLUMNS)


# -- select --------------------------------------------------------------------------------------
def open_pool(pool: ScoredPool, answers: pd.DataFrame, params: dict[str, Any]) -> ScoredPool:
    """The pool without the boxes an earlier answer covers (that object or background is known)."""
    return restrict(pool, ~covered_boxes(pool, answers, settings(params).cover_iou))[0]


def write_queries(layout: CycleLayout, pool: ScoredPool, selection: Selection, cycle: int) -> pd.DataFrame:
    """This cycle's queries: the boxes of ``pool`` (the open pool the strategy ranked) it picked, in rank order."""
    queries = queries_from_selection(pool, selection, cycle)
    write_parquet(queries, layout.selection / QUERIES)
    return queries


def write_candidates(
    layout: CycleLayout, full_pool: ScoredPool, answers: pd.DataFrame, queries: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """Noisy-label candidates from the selecting model: predicted boxes (>= noisy_conf, one per object) of
    every frame answered so far or queried now that no earlier answer covers."""
    frames = [*answered_frames(answers), *queries["frame_id"].astype(str)]
    keep = ~covered_boxes(full_pool, answers, settings(params).cover_iou)
    candidates = noisy_boxes(full_pool, frames, keep, noisy_conf(params))
    write_parquet(candidates, layout.selection / CANDIDATES)
    return candidates


# -- push ----------------------------------------------------------------------------------------
def record_queries(layout: CycleLayout, cycle: int) -> pd.DataFrame:
    """Add this cycle's queries to the store's log (a rerun replaces them) and replace the candidates."""
    queries = pd.read_parquet(layout.selection / QUERIES)
    log_path = store(layout) / QUERIES
    old = read_table(log_path, QUERY_COLUMNS)
    merged = pd.concat([old[old["cycle"] != cycle], queries], ignore_index=True) if len(old) else queries
    write_parquet(merged, log_path)
    write_parquet(pd.read_parquet(layout.selection / CANDIDATES), store(layout) / CANDIDATES)
    return queries


def oracle_answers(
    layout: CycleLayout, manifest: Manifest, queries: pd.DataFrame, params: dict[str, Any], cycle: int
) -> pd.DataFrame:
    """The simulation: the box oracle answers ``queries`` into the store (a rerun replaces the cycle's)."""
    path = store(layout) / ANSWERS
    old = read_table(path, ANSWER_COLUMNS)
    earlier = old[old["cycle"] != cycle] if len(old) else old
    box = settings(params)
    new = answer_queries(
        queries,
        manifest.boxes_of(queries["frame_id"].unique()),
        iou_snap=box.iou_snap,
        accept_iou=box.accept_iou,
        earlier=earlier,
    )
    merged = pd.concat([earlier, new], ignore_index=True) if len(earlier) else new
    write_parquet(merged, path)
    return new


# -- export --------------------------------------------------------------------------------------
def uncovered(
    candidates: pd.DataFrame, answers: pd.DataFrame, cover_iou: float, background: bool = True
) -> pd.DataFrame:
    """Candidates of answered frames that no answer of their frame overlaps by IoU >= ``cover_iou``."""
    frames = set(answered_frames(answers, background))
    rows = candidates[candidates["frame_id"].isin(frames)]
    keep = np.ones(len(rows), bool)
    by_frame = {f: g[XYXY].to_numpy(np.float64) for f, g in answers.groupby("frame_id", sort=False)}
    for i, (frame_id, box) in enumerate(zip(rows["frame_id"], rows[XYXY].to_numpy(np.float64), strict=True)):
        done = by_frame.get(frame_id)
        keep[i] = done is None or not (iou_matrix(box[None], done) >= cover_iou).any()
    return rows[keep].reset_index(drop=True)


def write_snapshot(layout: CycleLayout, answers: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """The answers and the noisy labels into the snapshot; returns the snapshot summary's box fields."""
    answers = answers[ANSWER_COLUMNS].sort_values(["cycle", "query_id"]).reset_index(drop=True)
    candidates = read_table(store(layout) / CANDIDATES, CANDIDATE_COLUMNS)
    box = settings(params)
    noisy = uncovered(candidates, answers, box.cover_iou, box.train_background_answers)
    write_parquet(answers, layout.snapshot / ANSWERS)
    write_parquet(noisy, layout.snapshot / NOISY)
    return {
        "mode": STRATEGY,
        "answered_frames": len(answered_frames(answers)),
        "boxes_noisy": len(noisy),
        **labeling_cost(answers),
    }


def simulation_answers(layout: CycleLayout) -> pd.DataFrame:
    return read_table(store(layout) / ANSWERS, ANSWER_COLUMNS)


def next_cycle(frames: pd.DataFrame, answers: pd.DataFrame) -> int:
    """Simulation: one past the latest cycle that answered anything (the seed is cycle 0)."""
    latest = int(frames["cycle"].max()) if len(frames) else 0
    return max(latest, int(answers["cycle"].max()) if len(answers) else 0) + 1


# -- train ---------------------------------------------------------------------------------------
def training_table(layout: CycleLayout, params: dict[str, Any]) -> tuple[list[str], pd.DataFrame]:
    """Frames to train on (fully labeled, then answered) and their boxes with weights (`TRAIN_COLUMNS`):
    ground truth and answers weigh 1, the noisy boxes lambda_d (``box_level.noisy_weight``)."""
    labeled = pd.read_parquet(layout.snapshot / "labeled_frames.parquet")
    labeled_boxes = pd.read_parquet(layout.snapshot / "labeled_boxes.parquet")
    answers = snapshot_answers(layout)
    noisy = read_table(layout.snapshot / NOISY, CANDIDATE_COLUMNS)
    boxes = training_boxes(labeled_boxes, answers, noisy, settings(params).noisy_weight)
    background = settings(params).train_background_answers  # the paper's rule: rejection-only frames train too
    frames = list(dict.fromkeys([*labeled["frame_id"].astype(str), *answered_frames(answers, background)]))
    return frames, boxes


def train_record(snapshot: dict[str, Any], frames: int, boxes: pd.DataFrame) -> dict[str, Any]:
    """train.json's fields in box mode: ``boxes`` = boxes touched (fully labeled frames' boxes + queries +
    drawn), ``frames`` = frames trained on, and the answer counts for `evaluate`."""
    counts = {k: int(snapshot.get(k, 0)) for k in COST_KEYS}
    return {
        "frames": frames,
        "boxes": int(snapshot["boxes"]) + counts["boxes_cost"],
        "labeled_frames": int(snapshot["frames"]),
        "noisy_weighted": int((boxes["weight"] < 1).sum()),
        **counts,
        "boxes_noisy": int(snapshot.get("boxes_noisy", 0)),
    }


COST_KEYS = ("boxes_queried", "boxes_accepted", "boxes_corrected", "boxes_rejected", "boxes_drawn", "boxes_cost")


# -- evaluate ------------------------------------------------------------------------------------
def cost_metrics(trained: dict[str, Any], budget: dict[str, Any]) -> dict[str, float]:
    """Box mode's cost: ``boxes_labeled`` = boxes touched; ``cumulative_cost`` = frame_cost per fully
    labeled frame + box_cost per box touched (frames with only box answers cost no frame)."""
    per_frame, per_box = float(budget["frame_cost"]), float(budget["box_cost"])
    touched = int(trained["boxes"])
    return {
        "boxes_labeled": touched,
        "boxes_touched": touched,
        "cumulative_cost": per_frame * int(trained["labeled_frames"]) + per_box * touched,
        **{k: int(trained[k]) for k in (*COST_KEYS[:5], "boxes_noisy")},
    }
