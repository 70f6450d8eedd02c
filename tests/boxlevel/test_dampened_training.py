"""Training with partial labels: the trainer uses the weighted dataset and loss, and saves a stock model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipelines.boxlevel.dampened_training import WeightedDetectionLoss, _attach_weighted_loss
from pipelines.boxlevel.partial_labels import write_weighted_yolo_dataset


def test_the_trainer_swaps_in_the_weighted_loss_after_set_up():
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolo11n.yaml", nc=3, verbose=False)
    model.args = get_cfg()
    _attach_weighted_loss(SimpleNamespace(model=model))
    assert type(model.criterion) is WeightedDetectionLoss


@pytest.mark.slow
def test_one_epoch_on_weighted_labels_gives_a_model_any_yolo_loads(shared, tmp_path, monkeypatch):
    from ultralytics import YOLO
    from ultralytics.data.utils import load_dataset_cache_file
    from ultralytics.nn.tasks import DetectionModel

    from pipelines.boxlevel.dampened_training import dampened_trainer
    from pipelines.cycle.yolo_ops import train_yolo

    images = sorted((shared / "data/bccd/BCCD/JPEGImages").glob("*.jpg"))[:3]
    frames = pd.DataFrame(
        {"frame_id": [p.stem for p in images], "image": [str(p) for p in images], "width": 640, "height": 480}
    )
    rng = np.random.default_rng(0)
    xy = rng.uniform(50, 500, (12, 2))
    boxes = pd.DataFrame(
        {
            "frame_id": np.repeat(frames["frame_id"], 4).to_numpy(),
            "x1": xy[:, 0],
            "y1": xy[:, 1] / 2,
            "x2": xy[:, 0] + 80,
            "y2": xy[:, 1] / 2 + 80,
            "class_id": rng.integers(0, 3, 12),
            "weight": np.tile([1.0, 1.0, 0.5, 0.5], 3),
        }
    )
    data = write_weighted_yolo_dataset(
        tmp_path / "data", ["RBC", "WBC", "Platelets"], {"train": frames, "val": frames.head(1)}, boxes, tmp_path
    )
    seen: list[float] = []
    stock = WeightedDetectionLoss.get_assigned_targets_and_loss

    def spy(self, preds, batch, **kwargs):
        seen.extend(batch["weights"].tolist())
        return stock(self, preds, batch, **kwargs)

    monkeypatch.setattr(WeightedDetectionLoss, "get_assigned_targets_and_loss", spy)
    out = tmp_path / "model.pt"
    seconds = train_yolo(
        data,
        str(shared / "weights/yolo11n-coco.pt"),
        out,
        tmp_path / "train",
        epochs=1,
        imgsz=160,
        batch=4,
        device="cpu",
        trainer=dampened_trainer("per_group"),
    )
    assert seconds > 0 and out.stat().st_size > 0
    assert 0.5 in seen and 1.0 in seen  # training batches reached the weighted loss with their weights
    cache = load_dataset_cache_file(data.parent / "labels/train.cache")  # written by the weighted dataset
    assert sorted(w for lb in cache["labels"] for w in lb["weights"].tolist()) == [0.5] * 6 + [1.0] * 6
    model = YOLO(str(out))
    assert type(model.model) is DetectionModel and getattr(model.model, "criterion", None) is None
    assert model.names == {0: "RBC", 1: "WBC", 2: "Platelets"}
