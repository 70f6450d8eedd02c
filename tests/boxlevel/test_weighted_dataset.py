"""WeightedYOLODataset: each box keeps its weight through mosaic, affine, flips and batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.boxlevel.dampened_training import WeightedYOLODataset, read_weighted_rows

# a.txt: a labeled class-0 box and a noisy class-2 box (weight 0.5); b.txt: ultralytics' standard format
LABELS = {
    "a": "0 0.30 0.30 0.30 0.30 1.0\n2 0.70 0.70 0.30 0.30 0.5\n",
    "b": "1 0.50 0.50 0.40 0.40\n0 0.20 0.80 0.20 0.20\n",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("weighted")
    (root / "images/train").mkdir(parents=True)
    (root / "labels/train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, text in LABELS.items():
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(root / f"images/train/{name}.jpg")
        (root / f"labels/train/{name}.txt").write_text(text)
    return root


def dataset(folder, **hyp) -> WeightedYOLODataset:
    from ultralytics.cfg import get_cfg

    cfg = get_cfg(overrides={"imgsz": 64, **hyp})
    return WeightedYOLODataset(
        img_path=str(folder / "images/train"),
        imgsz=64,
        batch_size=2,
        augment=True,
        hyp=cfg,
        data={"names": {0: "a", 1: "b", 2: "c"}, "channels": 3},
        prefix="test: ",
    )


def test_a_sixth_column_is_the_weight_and_standard_files_weigh_one(folder):
    labels = {lb["im_file"].rsplit("/", 1)[1]: lb for lb in dataset(folder).labels}
    assert labels["a.jpg"]["weights"].tolist() == [1.0, 0.5]
    assert labels["a.jpg"]["cls"].ravel().tolist() == [0, 2]
    assert labels["b.jpg"]["weights"].tolist() == [1.0, 1.0]
    assert read_weighted_rows(str(folder / "labels/train/b.txt")) is None


def test_weights_follow_their_boxes_through_augmentation_and_batching(folder):
    data = dataset(folder, mosaic=1.0, degrees=10.0, fliplr=0.5, scale=0.5)
    torch.manual_seed(0)
    seen = 0
    for _ in range(12):  # mosaics mix both images; the affine step drops boxes that leave the frame
        b = data.collate_fn([data[0], data[1]])
        assert b["weights"].shape == (len(b["cls"]),) and b["cls"].shape[1] == 1
        cls, weights = b["cls"].view(-1), b["weights"]
        assert torch.equal(weights, torch.where(cls == 2, 0.5, 1.0))  # only the class-2 box is noisy
        seen += int((cls == 2).sum())
    assert seen > 0


def test_a_weight_outside_0_1_marks_the_file_corrupt_as_ultralytics_does(tmp_path):
    (tmp_path / "images/train").mkdir(parents=True)
    (tmp_path / "labels/train").mkdir(parents=True)
    for name, text in {"ok": LABELS["b"], "bad": "0 0.5 0.5 0.2 0.2 1.5\n"}.items():
        Image.new("RGB", (64, 64)).save(tmp_path / f"images/train/{name}.jpg")
        (tmp_path / f"labels/train/{name}.txt").write_text(text)
    names = [lb["im_file"].rsplit("/", 1)[1] for lb in dataset(tmp_path).labels]
    assert names == ["ok.jpg"]
