"""`alod evaluate` (DVC stage): mAP of this cycle's model on the fixed test split, labeling cost so far,
the per-cycle history (DVC plots), MLflow metrics and plots, and the model registered."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from core import tracking
from core.settings import load_params
from pipelines.boxlevel import cycle_mode as box_mode
from pipelines.cycle.layout import CycleLayout, read_json, write_json
from pipelines.cycle.recipe import Recipe, evaluate
from pipelines.datasets import Manifest
from pipelines.labelstudio.project import TEST_TAB

log = logging.getLogger("alod.evaluate")

TEST_FRAMES, TEST_BOXES = "test_frames.parquet", "test_boxes.parquet"  # Label Studio: the test split as labeled
HISTORY_FILE = "cycles.csv"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def cost_metrics(frames: int, boxes: int, map50_95: float, budget: dict[str, Any]) -> dict[str, float]:
    """Labeling cost grows with boxes, data handling and training with frames: report both.
    The cost model is the budget's: frame_cost * frames + box_cost * boxes."""
    per_frame, per_box = float(budget["frame_cost"]), float(budget["box_cost"])
    return {
        "frames_labeled": frames,
        "boxes_labeled": boxes,
        "cumulative_cost": per_frame * frames + per_box * boxes,
        "map50_95_per_100_frames": map50_95 / frames * 100 if frames else 0.0,
        "map50_95_per_1000_boxes": map50_95 / boxes * 1000 if boxes else 0.0,
    }


def test_set(params: dict[str, Any], layout: CycleLayout, manifest: Manifest) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labeled frames of the test split and their boxes: from the cycle's snapshot when the source
    exported them (Label Studio: as labeled now), else the dataset's ground truth."""
    cfg = params["evaluate"]
    if (layout.snapshot / TEST_FRAMES).exists():
        frames = pd.read_parquet(layout.snapshot / TEST_FRAMES)
        boxes = pd.read_parquet(layout.snapshot / TEST_BOXES)
    else:
        frames = manifest.frames[manifest.frames["split"] == cfg["split"]]
        boxes = manifest.boxes_of(frames["frame_id"])
    if cfg["limit"]:
        frames = frames.head(int(cfg["limit"]))
    wanted = int(cfg["min_labeled_frames"])
    if len(frames) < wanted:
        raise ValueError(
            f"the test split {cfg['split']!r} has {len(frames)} labeled frames, fewer than evaluate.min_labeled_frames="
            f"{wanted}: label the tasks of the Data Manager tab {TEST_TAB!r} (or lower the setting), then rerun"
        )
    return frames, boxes[boxes["frame_id"].isin(set(frames["frame_id"]))]


def evaluate_model(params: dict[str, Any], layout: CycleLayout, manifest: Manifest) -> dict[str, Any]:
    frames, boxes = test_set(params, layout, manifest)
    quality = evaluate(
        Recipe.from_params(params),
        layout.model / "model.pt",
        manifest.labels.names,
        frames,
        boxes,
        layout.model.parent / "eval_set",
        layout.model.parent / "eval_runs" / "val",
        layout.root,
    )
    return {**quality, "test_frames": len(frames)}


def update_history(history_dir: Path, row: dict[str, Any]) -> pd.DataFrame:
    """One row per cycle; rerunning a cycle replaces its row."""
    path = history_dir / HISTORY_FILE
    old = pd.read_csv(path) if path.exists() else pd.DataFrame()
    if not old.empty:
        old = old[old["cycle"] != row["cycle"]]
    history = pd.concat([old, pd.DataFrame([row])], ignore_index=True).sort_values("cycle")
    history_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    history.to_csv(tmp, index=False)
    tmp.replace(path)
    return history


def plot_history(history: pd.DataFrame, out: Path) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    for x, label in (("boxes_labeled", "boxes labeled"), ("frames_labeled", "frames labeled")):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(history[x], history["map50_95"], marker="o")
        for row in history.itertuples():
            ax.annotate(f"c{row.cycle}", (getattr(row, x), row.map50_95), textcoords="offset points", xytext=(4, 4))
        ax.set(xlabel=label, ylabel="mAP50-95", title=f"mAP50-95 vs {label}")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"map_vs_{x.split('_')[0]}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def run(args: argparse.Namespace) -> int:
    params = load_params()
    layout = CycleLayout.from_params(params)
    trained = read_json(layout.model / "train.json")
    if trained is None:
        raise FileNotFoundError(f"no trained model in {layout.model}: run `alod train` first")
    cycle, run_id = int(trained["cycle"]), trained["run_id"]
    tracking.connect(params)
    manifest = Manifest.load(layout.manifest)
    quality = evaluate_model(params, layout, manifest)
    cost = cost_metrics(int(trained["frames"]), int(trained["boxes"]), quality["map50_95"], params["budget"])
    if "boxes_cost" in trained:  # box mode: cost in boxes touched
        cost.update(box_mode.cost_metrics(trained, params["budget"]))
    metrics = {
        "cycle": cycle,
        "map50": quality["map50"],
        "map50_95": quality["map50_95"],
        **cost,
        "test_frames": quality["test_frames"],
    }
    if "lead_time_s" in trained:
        metrics["lead_time_s"] = trained["lead_time_s"]
    version = tracking.register_model(params, run_id, layout.model, cycle, quality["map50_95"])
    registered = {"registered_model": tracking.registered_model_name(params), "model_version": version}
    write_json(
        layout.metrics / "eval.json", {**metrics, "per_class_ap50_95": quality["per_class_ap50_95"], **registered}
    )
    history = update_history(layout.history, metrics)
    _log_to_mlflow(run_id, metrics, quality, history, layout, version)
    log.info(
        "cycle %d: mAP50 %.3f, mAP50-95 %.3f on %d test frames; model version %s",
        cycle,
        quality["map50"],
        quality["map50_95"],
        quality["test_frames"],
        version,
    )
    return 0


def _log_to_mlflow(run_id, metrics, quality, history, layout: CycleLayout, version: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    for key, value in metrics.items():
        if key != "cycle":
            client.log_metric(run_id, key, float(value), step=int(metrics["cycle"]))
    for name, ap in quality["per_class_ap50_95"].items():
        client.log_metric(run_id, f"ap50_95.{name}", ap, step=int(metrics["cycle"]))
    client.set_tag(run_id, "model_version", version)
    for path in plot_history(history, layout.metrics):
        client.log_artifact(run_id, str(path), artifact_path="plots")
    client.log_artifact(run_id, str(layout.metrics / "eval.json"))
    client.set_terminated(run_id, "FINISHED")
