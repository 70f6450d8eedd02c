"""Training and validating YOLO with ultralytics: the one place both the DVC stages and the benchmark call."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from core.settings import disable_ultralytics_integrations

log = logging.getLogger("alod.yolo")


def validation_frames(frames: Any, train: Any, split: str, limit: int | None) -> Any:
    """The frames ultralytics validates its final epoch on: the val split, or (when the dataset has
    none) the training frames themselves. Only the last epoch's model is kept, so this choice
    changes a logged number, never which model is used."""
    val = frames[frames["split"] == split]
    if val.empty:
        val = train
    return val.head(limit) if limit else val


def _device(value: Any) -> Any:
    return None if value in (None, "auto") else value


def train_yolo(
    data_yaml: Path,
    weights: str,
    out_model: Path,
    work_dir: Path,
    *,
    epochs: int,
    imgsz: int,
    batch: int,
    device: Any = "auto",
    seed: int = 0,
    workers: int = 0,
    patience: int = 100,
    trainer: Any = None,
) -> float:
    """Fine-tune ``weights`` on ``data_yaml``; the last epoch's model replaces ``out_model`` atomically
    only when training finished. Returns the seconds it took. Validation runs once, on the final epoch.
    ``trainer``: an ultralytics trainer class instead of the default detection trainer."""
    disable_ultralytics_integrations()
    from ultralytics import YOLO

    started = time.time()
    model = YOLO(weights)
    model.add_callback("on_train_epoch_end", _log_epoch)
    model.train(
        trainer=trainer,
        data=str(data_yaml),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        workers=workers,
        device=_device(device),
        seed=seed,
        deterministic=True,
        project=str(work_dir.parent),
        name=work_dir.name,
        exist_ok=True,
        val=False,
        plots=False,
        verbose=False,
        patience=patience,
    )
    out_model.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_model.with_name(f".{out_model.name}.tmp")
    shutil.copy2(Path(model.trainer.last), tmp)
    os.replace(tmp, out_model)
    return time.time() - started


def _log_epoch(trainer: Any) -> None:
    losses = getattr(trainer, "tloss", None) or {}  # running mean of each loss term this epoch
    total = sum(float(v) for v in losses.values()) if isinstance(losses, dict) else float("nan")
    log.info("epoch %d/%d, train loss %.3f", trainer.epoch + 1, trainer.epochs, total)


def validate_yolo(
    model_path: Path,
    data_yaml: Path,
    names: tuple[str, ...],
    work_dir: Path,
    *,
    imgsz: int,
    batch: int = 16,
    device: Any = "auto",
) -> dict[str, Any]:
    """mAP50, mAP50-95 and per-class AP50-95 of a model on the `val` entry of ``data_yaml``."""
    disable_ultralytics_integrations()
    from ultralytics import YOLO

    result = YOLO(str(model_path)).val(
        data=str(data_yaml),
        split="val",
        imgsz=imgsz,
        batch=batch,
        device=_device(device),
        plots=False,
        verbose=False,
        project=str(work_dir.parent),
        name=work_dir.name,
        exist_ok=True,
    )
    per_class = {names[int(c)]: float(result.box.all_ap[i].mean()) for i, c in enumerate(result.box.ap_class_index)}
    return {
        "map50": float(result.box.map50),
        "map50_95": float(result.box.map),
        "per_class_ap50_95": {n: per_class.get(n, 0.0) for n in names},
    }
