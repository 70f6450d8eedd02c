"""Train, then evaluate: the one recipe of the DVC stages (`train`, `evaluate`) and both benchmark arms.

A `Recipe` says how a model is trained and measured: epochs, image size, batch, device, the
validation frames ultralytics checks its last epoch on, and whether the labels are box-level
partial labels (per-box weights, trained with the dampened loss). The DVC stages build theirs from
params.yaml (`Recipe.from_params`), the benchmark from its config; both then call the same
functions:

    data = write_training_data(recipe, manifest, train_ids, train_boxes, out, root)
    seconds = train(recipe, data, start_weights, out_model, work_dir, seed)
    quality = evaluate(recipe, model, names, test_frames, test_boxes, data_dir, work_dir, root)

(the benchmark's `train_and_evaluate` runs the three in one folder).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.cycle.yolo_ops import train_yolo, validate_yolo, validation_frames
from pipelines.datasets import Manifest
from pipelines.datasets.yolo_writer import write_yolo_dataset


@dataclass(frozen=True)
class Recipe:
    epochs: int
    imgsz: int
    batch: int
    device: Any
    val_split: str
    val_limit: int | None
    workers: int = 0
    patience: int = 100
    # box-level partial labels: the 6th label column weighs each box, and the dampened loss is
    # normalised this way ("per_group": Eq. 3 of the box-level paper, or "shared"); None: plain labels
    box_loss: str | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Recipe:
        """The DVC stages' recipe: params.yaml's ``train`` section at ``model.imgsz``."""
        cfg = params["train"]
        return cls(
            epochs=int(cfg["epochs"]),
            imgsz=int(params["model"]["imgsz"]),
            batch=int(cfg["batch"]),
            device=cfg["device"],
            val_split=cfg["val_split"],
            val_limit=cfg["val_limit"],
            workers=int(cfg["workers"]),
            patience=int(cfg["patience"]),
        )

    def with_box_loss(self, normalisation: str) -> Recipe:
        """The same recipe for box-level partial labels."""
        return dataclasses.replace(self, box_loss=normalisation)


def write_training_data(
    recipe: Recipe, manifest: Manifest, train_ids: list[str], train_boxes: pd.DataFrame, out: Path, root: Path
) -> Path:
    """The YOLO dataset of ``train_ids`` labeled with ``train_boxes``, plus the validation frames
    (`validation_frames`) with their ground truth. With no val split the validation frames are the
    training frames, which keep their training labels (each box written once)."""
    frames = manifest.frames
    train = frames[frames["frame_id"].isin(set(train_ids))]
    val = validation_frames(frames, train, recipe.val_split, recipe.val_limit)
    val_boxes = manifest.boxes_of(val.loc[~val["frame_id"].isin(set(train_ids)), "frame_id"])
    splits = {"train": train, "val": val}
    if recipe.box_loss is not None:
        from pipelines.boxlevel.partial_labels import write_weighted_yolo_dataset

        labels = pd.concat([train_boxes, val_boxes.assign(weight=1.0)], ignore_index=True)
        return write_weighted_yolo_dataset(out, manifest.labels.names, splits, labels, root)
    labels = pd.concat([train_boxes, val_boxes], ignore_index=True)
    return write_yolo_dataset(out, manifest.labels.names, splits, labels, root)


def train(recipe: Recipe, data_yaml: Path, start: str, out_model: Path, work_dir: Path, seed: int) -> float:
    """Fine-tune ``start`` on ``data_yaml`` into ``out_model`` (replaced only when training
    finished); the seconds it took."""
    trainer = None
    if recipe.box_loss is not None:
        from pipelines.boxlevel.dampened_training import dampened_trainer  # imports ultralytics' trainer

        trainer = dampened_trainer(recipe.box_loss)
    return train_yolo(
        data_yaml,
        start,
        out_model,
        work_dir,
        epochs=recipe.epochs,
        imgsz=recipe.imgsz,
        batch=recipe.batch,
        device=recipe.device,
        seed=seed,
        workers=recipe.workers,
        patience=recipe.patience,
        trainer=trainer,
    )


def evaluate(
    recipe: Recipe,
    model: Path,
    names: tuple[str, ...],
    frames: pd.DataFrame,
    boxes: pd.DataFrame,
    data_dir: Path,
    work_dir: Path,
    root: Path,
) -> dict[str, Any]:
    """mAP50, mAP50-95 and per-class AP50-95 of ``model`` on ``frames`` labeled with ``boxes``."""
    if frames.empty:
        raise ValueError("no frames to evaluate on")
    data_yaml = write_yolo_dataset(data_dir, names, {"val": frames}, boxes, root)
    return validate_yolo(model, data_yaml, names, work_dir, imgsz=recipe.imgsz, device=recipe.device)


def split_frames(manifest: Manifest, split: str, limit: int | None) -> pd.DataFrame:
    """The frames of a fixed split, the first ``limit`` of them when set."""
    frames = manifest.frames[manifest.frames["split"] == split]
    return frames.head(int(limit)) if limit else frames


def train_and_evaluate(
    recipe: Recipe,
    folder: Path,
    manifest: Manifest,
    root: Path,
    *,
    start: str,
    seed: int,
    train_ids: list[str],
    train_boxes: pd.DataFrame,
    test: pd.DataFrame,
) -> dict[str, Any]:
    """One benchmark step in ``folder`` (data/, train/, model.pt, test/, val/): trained from
    ``start`` and measured on the ``test`` frames against the ground truth; quality and seconds."""
    data = write_training_data(recipe, manifest, train_ids, train_boxes, folder / "data", root)
    seconds = train(recipe, data, start, folder / "model.pt", folder / "train", seed)
    names = manifest.labels.names
    test_boxes = manifest.boxes_of(test["frame_id"])
    quality = evaluate(recipe, folder / "model.pt", names, test, test_boxes, folder / "test", folder / "val", root)
    return {**quality, "train_seconds": round(seconds, 1)}
