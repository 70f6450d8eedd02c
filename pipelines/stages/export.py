"""`alod export` (DVC stage): the annotations so far -> this cycle's snapshot of the labeled set.

Source `simulation`: the annotation store the oracle answers into. Source `labelstudio`: the
project named by the dataset (`datasets.<name>.project`), through the SDK: every annotated task of
the pool split, with its task and annotation ids and Label Studio's `lead_time`. With `strategy:
box_level` the box answers join the snapshot (`pipelines.boxlevel.cycle_mode`). The snapshot is a
DVC output, so `git checkout <cycle tag> && dvc checkout` restores the labeled set of any cycle.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

import pandas as pd

from core.settings import load_params
from pipelines.boxlevel import cycle_mode as box_mode
from pipelines.boxlevel.partial_labels import QUERY_COLUMNS
from pipelines.cycle.layout import CycleLayout, write_json, write_parquet
from pipelines.cycle.oracle import AnnotationStore
from pipelines.datasets import Manifest, import_dataset
from pipelines.stages.evaluate import HISTORY_FILE, TEST_BOXES, TEST_FRAMES

log = logging.getLogger("alod.export")

SOURCES = ("simulation", "labelstudio")


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    params = load_params()
    layout = CycleLayout.from_params(params)
    source = params["cycle"]["source"]
    if source not in SOURCES:
        raise ValueError(f"cycle.source {source!r} is not supported by export; supported: {SOURCES}")
    if source == "labelstudio":
        frames, boxes, cycle, extra = _from_label_studio(params, layout)
    else:
        answers = AnnotationStore(layout.annotations).load()
        if answers.frames.empty:
            raise ValueError(f"no labeled frames in {layout.annotations}: run `alod seed` to start a simulation")
        frames = answers.frames.sort_values(["cycle", "frame_id"]).reset_index(drop=True)
        boxes = answers.boxes[answers.boxes["frame_id"].isin(set(frames["frame_id"]))]
        cycle, extra = int(frames["cycle"].max()) + 1, {}
        for stale in (TEST_FRAMES, TEST_BOXES):  # the oracle's test split is the dataset's ground truth
            (layout.snapshot / stale).unlink(missing_ok=True)
    if box_mode.enabled(params):
        frames, boxes, cycle, extra = _box_answers(params, layout, source, frames, boxes, cycle, extra)
    boxes = boxes.sort_values(["frame_id", "x1", "y1"]).reset_index(drop=True)
    write_parquet(frames, layout.snapshot / "labeled_frames.parquet")
    write_parquet(boxes, layout.snapshot / "labeled_boxes.parquet")
    summary = {"cycle": cycle, "source": source, "frames": len(frames), "boxes": len(boxes), **extra}
    write_json(layout.snapshot / "snapshot.json", summary)
    log.info("cycle %d snapshot: %d labeled frames, %d boxes", cycle, len(frames), len(boxes))
    return 0


def _box_answers(
    params: dict[str, Any],
    layout: CycleLayout,
    source: str,
    frames: pd.DataFrame,
    boxes: pd.DataFrame,
    cycle: int,
    extra: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, int, dict]:
    """Box mode: every box answer so far into the snapshot. Fully labeled frames stay ``labeled_frames``;
    frames asked about box by box are not (their annotations are read as answers). An answer once read
    is kept: a task queried again later gets a new annotation that no longer shows the earlier regions."""
    if source == "labelstudio":
        from pipelines.labelstudio.box_cycle import fetch_answers

        queries = box_mode.read_table(box_mode.store(layout) / box_mode.QUERIES, QUERY_COLUMNS)
        known = box_mode.snapshot_answers(layout)
        open_queries = queries[~queries["query_id"].isin(set(known["query_id"]))]
        names = list(Manifest.load(layout.manifest).labels.names)
        fetched = fetch_answers(params, open_queries, names)
        answers = pd.concat([p for p in (known, fetched) if len(p)] or [known], ignore_index=True)
        asked = set(queries["frame_id"])
        frames, boxes = frames[~frames["frame_id"].isin(asked)], boxes[~boxes["frame_id"].isin(asked)]
    else:
        answers = box_mode.simulation_answers(layout)
        cycle = box_mode.next_cycle(frames, answers)
    return frames, boxes, cycle, {**extra, **box_mode.write_snapshot(layout, answers, params)}


def _from_label_studio(params: dict[str, Any], layout: CycleLayout) -> tuple[pd.DataFrame, pd.DataFrame, int, dict]:
    name = params["dataset"]["name"]
    manifest, _ = import_dataset(name, params["datasets"][name], layout.root, verify="header")
    meta = manifest.frames["meta"].map(json.loads)
    split = params["score"]["split"]  # the pool; null: every frame, as `alod score` reads it
    pool = manifest.frames["split"] == split if split else pd.Series(True, index=manifest.frames.index)
    labeled = manifest.frames[pool & meta.map(lambda m: bool(m.get("annotated")))]
    labeled_meta = meta[labeled.index]
    frames = pd.DataFrame(
        {
            "frame_id": labeled["frame_id"],
            "cycle": -1,
            "task_id": labeled_meta.map(lambda m: m.get("ls_task_id")),
            "annotation_id": labeled_meta.map(lambda m: m.get("ls_annotation_id")),
        }
    ).reset_index(drop=True)
    if frames.empty:
        raise ValueError(f"the Label Studio project of dataset {name!r} has no annotated {pool.name} tasks yet")
    history = layout.history / HISTORY_FILE
    cycle = (len(pd.read_csv(history)) if history.exists() else 0) + 1
    lead_times = [m["lead_time"] for m in labeled_meta if m.get("lead_time") is not None]
    extra = {"lead_time_s": round(float(sum(lead_times)), 3)} if lead_times else {}
    # the test split as labeled now (`evaluate` measures on it; the manifest's copy is from import time)
    annotated = meta.map(lambda m: bool(m.get("annotated")))
    test = manifest.frames[(manifest.frames["split"] == params["evaluate"]["split"]) & annotated]
    write_parquet(test, layout.snapshot / TEST_FRAMES)
    write_parquet(manifest.boxes_of(test["frame_id"]), layout.snapshot / TEST_BOXES)
    extra["test_frames_labeled"] = len(test)
    return frames, manifest.boxes_of(frames["frame_id"]).assign(cycle=-1), cycle, extra
