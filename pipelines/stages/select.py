"""`alod select` (DVC stage): the configured strategy over the scored pool -> ranked queries.

Writes `selection.parquet` (the picks in rank order), `priority.parquet` (every pool frame's
priority, for the Label Studio task order) and `blocked.json` (frames the temporal rule dt2
blocks, keyed by the cycle that blocked them, so rerunning a cycle never blocks its own picks).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np
import pandas as pd

from core.settings import load_params
from pipelines.boxlevel import cycle_mode as box_mode
from pipelines.cycle.layout import CycleLayout, read_json, write_json, write_parquet
from pipelines.scoring.store import read_scored_pool
from strategies.pool import Budget, CycleState, ScoredPool, Selection
from strategies.registry import select
from strategies.temporal import close_pairs

log = logging.getLogger("alod.select")


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def cycle_state(layout: CycleLayout, pool: ScoredPool, cycle: int) -> CycleState:
    labeled = pd.read_parquet(layout.snapshot / "labeled_frames.parquet")
    boxes = pd.read_parquet(layout.snapshot / "labeled_boxes.parquet")
    counts = np.bincount(boxes["class_id"].astype(int), minlength=pool.num_classes)[: pool.num_classes]
    blocked_by_cycle = read_json(layout.selection / "blocked.json", {})
    blocked = {f for c, ids in blocked_by_cycle.items() if int(c) < cycle for f in ids}
    return CycleState(
        cycle=cycle, labeled=frozenset(labeled["frame_id"]), labeled_class_counts=counts, blocked=frozenset(blocked)
    )


CLOSE_WINDOW = 5  # frames: how near two picks of one video count as near-duplicates when dt1 is not set


def near_duplicate_picks(pool: ScoredPool, indices: np.ndarray, dt1: int) -> dict[str, int]:
    """Pairs of picks of the same video within dt1 frames (CLOSE_WINDOW without dt1): 0 under the temporal rule."""
    if pool.videos is None or pool.frame_index is None or not any(pool.videos):  # still images only
        return {"close_window": 0, "close_pairs": 0}
    window = dt1 if dt1 > 0 else CLOSE_WINDOW
    videos = np.asarray(pool.videos[indices], dtype=object)
    return {"close_window": window, "close_pairs": close_pairs(videos, pool.frame_index[indices], window)}


def selection_table(pool: ScoredPool, selection: Selection, budget: Budget) -> pd.DataFrame:
    predicted = np.bincount(pool.box_image_index[pool.box_conf >= budget.box_conf_threshold], minlength=pool.num_images)
    idx = selection.indices
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(idx) + 1),
            "frame_id": pool.frame_ids[idx].astype(str),
            "value": selection.values,
            "predicted_boxes": predicted[idx],
        }
    )


def run(args: argparse.Namespace) -> int:
    params = load_params()
    layout = CycleLayout.from_params(params)
    cycle = int(read_json(layout.snapshot / "snapshot.json")["cycle"])
    pool = read_scored_pool(layout.scores)
    state = cycle_state(layout, pool, cycle)
    budget = Budget(**{k: v for k, v in params["budget"].items() if v is not None})
    strategy = params["strategy"]
    full_pool, answers = pool, box_mode.snapshot_answers(layout) if box_mode.enabled(params) else None
    if answers is not None:  # box mode: boxes an earlier answer covers are not asked again
        pool = box_mode.open_pool(full_pool, answers, params)
    selection = select(
        strategy["name"], pool, budget, state, seed=int(params["seed"]) + cycle, **(strategy.get("params") or {})
    )
    box_summary = {}
    if answers is not None:
        queries = box_mode.write_queries(layout, pool, selection, cycle)
        candidates = box_mode.write_candidates(layout, full_pool, answers, queries, params)
        box_summary = {"boxes": len(queries), "noisy_candidates": len(candidates)}
    temporal = (strategy.get("params") or {}).get("temporal") or {}
    table = selection_table(pool, selection, budget)
    write_parquet(table, layout.selection / "selection.parquet")
    priority = pd.DataFrame({"frame_id": pool.frame_ids.astype(str), "priority": selection.priority})
    write_parquet(priority, layout.selection / "priority.parquet")
    blocked = read_json(layout.selection / "blocked.json", {})
    blocked[str(cycle)] = sorted(selection.blocked)
    write_json(layout.selection / "blocked.json", blocked)
    summary = {
        "cycle": cycle,
        "strategy": strategy["name"],
        "frames": len(table),
        "predicted_boxes": int(table["predicted_boxes"].sum()),
        "pool": pool.num_images,
        "selectable": int(state.selectable_mask(pool).sum()),
        **near_duplicate_picks(pool, selection.indices, int(temporal.get("dt1") or 0)),
    }
    summary.update(box_summary)
    write_json(layout.selection / "selection.json", summary)
    _log_to_mlflow(params, layout, summary)
    if box_summary:
        log.info("cycle %d: box_level queries %d boxes on %d frames", cycle, box_summary["boxes"], summary["frames"])
    log.info(
        "cycle %d: %s picked %d frames (%d predicted boxes) of %d selectable",
        cycle,
        strategy["name"],
        summary["frames"],
        summary["predicted_boxes"],
        summary["selectable"],
    )
    return 0


def _log_to_mlflow(params: dict[str, Any], layout: CycleLayout, summary: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    from core import tracking

    trained = read_json(layout.model / "train.json", {})
    if "run_id" not in trained:
        return
    tracking.connect(params)
    client = MlflowClient()
    client.log_artifact(trained["run_id"], str(layout.selection / "selection.parquet"), artifact_path="selection")
    client.log_metric(trained["run_id"], "selected_frames", summary["frames"], step=summary["cycle"])
    client.log_metric(trained["run_id"], "selected_predicted_boxes", summary["predicted_boxes"], step=summary["cycle"])
    if "boxes" in summary:  # box mode: the queried boxes
        client.log_metric(trained["run_id"], "selected_boxes", summary["boxes"], step=summary["cycle"])
