"""`alod train` (DVC stage): fine-tune YOLO on this cycle's labeled set, one MLflow run per cycle.

Warm start (`train.warm_start: previous`, as in the papers): the model of the previous cycle, kept
as `previous.pt` so that a rerun after a crash starts from the same weights; `base` trains from
`model.base_weights` every cycle. The new model replaces `model.pt` only when training finished.
With `strategy: box_level` the training set holds box answers and noisy boxes, trained with the
dampened loss (`box_training_set`).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from core import tracking
from core.settings import load_params, resolve_path
from pipelines.boxlevel import cycle_mode as box_mode
from pipelines.boxlevel.partial_labels import write_weighted_yolo_dataset
from pipelines.cycle.layout import CycleLayout, read_json, write_json
from pipelines.cycle.yolo_ops import train_yolo, validation_frames
from pipelines.datasets import Manifest
from pipelines.datasets.yolo_writer import write_yolo_dataset

log = logging.getLogger("alod.train")


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def weights_source(params: dict[str, Any], value: str) -> str:
    """A weights setting as ultralytics takes it: a path relative to the repo, or a bare official
    name such as ``yolo11n.pt`` left for ultralytics to resolve."""
    path = resolve_path(params, value)
    assert path is not None
    return str(path) if path.exists() or "/" in value else value


def warm_start_weights(params: dict[str, Any], model_dir: Path, cycle: int) -> str:
    base = weights_source(params, params["model"]["base_weights"])
    if params.get("train", {}).get("warm_start", "previous") == "base":
        return base
    current, previous = model_dir / "model.pt", model_dir / "previous.pt"
    trained_for = int(read_json(model_dir / "train.json", {}).get("cycle", -1))
    if current.exists() and trained_for < cycle:  # the model of an earlier cycle: keep it as the start
        tmp = previous.with_name(".previous.pt.tmp")
        shutil.copy2(current, tmp)
        os.replace(tmp, previous)
        write_json(model_dir / "previous.json", {"cycle": trained_for})
        return str(previous)
    if previous.exists() and int(read_json(model_dir / "previous.json", {}).get("cycle", -1)) < cycle:
        return str(previous)  # a rerun of this cycle: the same start as the first attempt
    return base


def training_set(params: dict[str, Any], layout: CycleLayout, manifest: Manifest) -> Path:
    """Labeled frames (answers only) for training; the fixed val split (ground truth) for ultralytics' val."""
    labeled = pd.read_parquet(layout.snapshot / "labeled_frames.parquet")
    labeled_boxes = pd.read_parquet(layout.snapshot / "labeled_boxes.parquet")
    frames = manifest.frames
    train = frames[frames["frame_id"].isin(set(labeled["frame_id"]))]
    cfg = params.get("train", {})
    val = validation_frames(frames, train, cfg.get("val_split", "val"), cfg.get("val_limit"))
    return write_yolo_dataset(
        layout.model.parent / "train_set",
        manifest.labels.names,
        {"train": train, "val": val},
        training_boxes(labeled_boxes, manifest, train, val),
        layout.root,
    )


def training_boxes(
    labeled_boxes: pd.DataFrame, manifest: Manifest, train: pd.DataFrame, val: pd.DataFrame
) -> pd.DataFrame:
    """The answers for the training frames, plus ground truth for the val frames that are not training
    frames (with no val split, val falls back to the training frames: their boxes are written once)."""
    val_only = val.loc[~val["frame_id"].isin(set(train["frame_id"])), "frame_id"]
    return pd.concat([labeled_boxes, manifest.boxes_of(val_only)], ignore_index=True)


def box_training_set(
    params: dict[str, Any], layout: CycleLayout, manifest: Manifest, snapshot: dict[str, Any]
) -> tuple[Path, Callable[..., float], dict[str, Any]]:
    """Box mode: fully labeled and answered frames, noisy boxes weighing lambda_d (6th label column),
    trained with the dampened loss; the record counts boxes touched (`cycle_mode.train_record`)."""
    from pipelines.boxlevel.dampened_training import train_yolo_partial  # imports ultralytics

    frame_ids, boxes = box_mode.training_table(layout, params)
    frames = manifest.frames
    train = frames[frames["frame_id"].isin(set(frame_ids))]
    cfg = params.get("train", {})
    val = validation_frames(frames, train, cfg.get("val_split", "val"), cfg.get("val_limit"))
    val_only = val.loc[~val["frame_id"].isin(set(train["frame_id"])), "frame_id"]
    labels = pd.concat([boxes, manifest.boxes_of(val_only).assign(weight=1.0)], ignore_index=True)
    data_yaml = write_weighted_yolo_dataset(
        layout.model.parent / "train_set", manifest.labels.names, {"train": train, "val": val}, labels, layout.root
    )
    return data_yaml, train_yolo_partial, box_mode.train_record(snapshot, len(train), boxes)


def run(args: argparse.Namespace) -> int:
    params = load_params()
    layout = CycleLayout.from_params(params)
    snapshot = read_json(layout.snapshot / "snapshot.json")
    if snapshot is None:
        raise FileNotFoundError(f"no snapshot in {layout.snapshot}: run `alod export` (or `dvc repro`)")
    cycle = int(snapshot["cycle"])
    run_id = tracking.start_cycle_run(params, cycle)  # before training: a tracking server that is down fails here
    manifest = Manifest.load(layout.manifest)
    trainer, record = train_yolo, {"frames": snapshot["frames"], "boxes": snapshot["boxes"]}
    if box_mode.enabled(params):
        data_yaml, trainer, record = box_training_set(params, layout, manifest, snapshot)
    else:
        data_yaml = training_set(params, layout, manifest)
    weights = warm_start_weights(params, layout.model, cycle)
    cfg = params.get("train", {})
    log.info("cycle %d: training on %d frames from %s", cycle, record["frames"], weights)

    seconds = trainer(
        data_yaml,
        weights,
        layout.model / "model.pt",
        layout.model.parent / "train_runs" / f"cycle-{cycle}",
        epochs=int(cfg.get("epochs", 3)),
        imgsz=int(params["model"]["imgsz"]),
        batch=int(cfg.get("batch", 16)),
        device=cfg.get("device", "auto"),
        seed=int(params.get("seed", 0)),
        workers=int(cfg.get("workers", 0)),
        patience=int(cfg.get("patience", 100)),
    )
    write_json(
        layout.model / "train.json",
        {
            "cycle": cycle,
            "run_id": run_id,
            "warm_start": weights,
            "seconds": round(seconds, 1),
            **record,
            **({"lead_time_s": snapshot["lead_time_s"]} if "lead_time_s" in snapshot else {}),
        },
    )
    _log_params(params, run_id, layout, cycle, weights, seconds)
    log.info("cycle %d: trained in %.0f s -> %s", cycle, seconds, layout.model / "model.pt")
    return 0


def _log_params(params: dict[str, Any], run_id: str, layout: CycleLayout, cycle: int, weights: str, seconds: float):
    from mlflow import MlflowClient

    client = MlflowClient()
    flat = {
        "cycle": cycle,
        "dataset": params["dataset"]["name"],
        "strategy": params["strategy"]["name"],
        "seed": params.get("seed", 0),
        "imgsz": params["model"]["imgsz"],
        "warm_start_from": weights,
        "git_commit": _git_commit(layout.root),
        "snapshot_md5": _snapshot_md5(layout.snapshot),
        **{f"strategy.{k}": v for k, v in (params["strategy"].get("params") or {}).items()},
        **{f"budget.{k}": v for k, v in (params.get("budget") or {}).items()},
        **{f"train.{k}": v for k, v in (params.get("train") or {}).items()},
    }
    for key, value in flat.items():
        client.log_param(run_id, key, str(value)[:500])
    client.log_metric(run_id, "train_seconds", seconds)


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "none"
    except (OSError, subprocess.SubprocessError):
        return "none"


def _snapshot_md5(snapshot: Path) -> str:
    digest = hashlib.md5()
    for name in ("labeled_frames.parquet", "labeled_boxes.parquet"):
        digest.update((snapshot / name).read_bytes())
    return digest.hexdigest()
