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
from pathlib import Path
from typing import Any

import pandas as pd

from core import tracking
from core.settings import load_params, resolve_path
from pipelines.boxlevel import cycle_mode as box_mode
from pipelines.cycle.layout import CycleLayout, read_json, write_json
from pipelines.cycle.recipe import Recipe, train, write_training_data
from pipelines.datasets import Manifest

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
    if params["train"]["warm_start"] == "base":
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


def training_set(
    params: dict[str, Any], recipe: Recipe, layout: CycleLayout, manifest: Manifest, snapshot: dict[str, Any]
) -> tuple[Path, dict[str, Any]]:
    """The YOLO dataset of this cycle (labeled frames with their answers; the val frames with
    ground truth) and what the training record counts. Box mode: fully labeled and answered
    frames, noisy boxes weighing lambda_d, and the record counts boxes touched."""
    out = layout.model.parent / "train_set"
    if recipe.box_loss is not None:
        frame_ids, boxes = box_mode.training_table(layout, params)
        data = write_training_data(recipe, manifest, frame_ids, boxes, out, layout.root)
        trained = int(manifest.frames["frame_id"].isin(set(frame_ids)).sum())
        return data, box_mode.train_record(snapshot, trained, boxes)
    labeled = pd.read_parquet(layout.snapshot / "labeled_frames.parquet")
    labeled_boxes = pd.read_parquet(layout.snapshot / "labeled_boxes.parquet")
    data = write_training_data(recipe, manifest, list(labeled["frame_id"]), labeled_boxes, out, layout.root)
    return data, {"frames": snapshot["frames"], "boxes": snapshot["boxes"]}


def stage_recipe(params: dict[str, Any]) -> Recipe:
    """params.yaml's recipe; in box mode with the dampened loss of ``box_level.loss_normalisation``."""
    recipe = Recipe.from_params(params)
    if box_mode.enabled(params):
        recipe = recipe.with_box_loss(box_mode.settings(params).loss_normalisation)
    return recipe


def run(args: argparse.Namespace) -> int:
    params = load_params()
    layout = CycleLayout.from_params(params)
    snapshot = read_json(layout.snapshot / "snapshot.json")
    if snapshot is None:
        raise FileNotFoundError(f"no snapshot in {layout.snapshot}: run `alod export` (or `dvc repro`)")
    cycle = int(snapshot["cycle"])
    run_id = tracking.start_cycle_run(params, cycle)  # before training: a tracking server that is down fails here
    manifest = Manifest.load(layout.manifest)
    recipe = stage_recipe(params)
    data_yaml, record = training_set(params, recipe, layout, manifest, snapshot)
    weights = warm_start_weights(params, layout.model, cycle)
    log.info("cycle %d: training on %d frames from %s", cycle, record["frames"], weights)
    seconds = train(
        recipe,
        data_yaml,
        weights,
        layout.model / "model.pt",
        layout.model.parent / "train_runs" / f"cycle-{cycle}",
        seed=int(params["seed"]),
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
        "seed": params["seed"],
        "imgsz": params["model"]["imgsz"],
        "warm_start_from": weights,
        "git_commit": _git_commit(layout.root),
        "snapshot_md5": _snapshot_md5(layout.snapshot),
        **{f"strategy.{k}": v for k, v in (params["strategy"].get("params") or {}).items()},
        **{f"budget.{k}": v for k, v in params["budget"].items()},
        **{f"train.{k}": v for k, v in params["train"].items()},
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
