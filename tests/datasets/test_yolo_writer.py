"""The YOLO writer symlinks images, writes labels that read back to the manifest, and ultralytics trains on it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from core.settings import REPO_ROOT, disable_ultralytics_integrations
from pipelines.datasets import import_dataset
from pipelines.datasets.yolo_writer import safe_name, write_yolo_dataset


@pytest.fixture(scope="module")
def bccd(params):
    manifest, _ = import_dataset("bccd", params["datasets"]["bccd"], REPO_ROOT, verify="header")
    return manifest


def _write_small(bccd, out, n_train=6, n_val=3):
    frames = bccd.frames
    splits = {"train": frames[frames.split == "train"].head(n_train), "val": frames[frames.split == "val"].head(n_val)}
    return write_yolo_dataset(out, bccd.labels.names, splits, bccd.boxes, REPO_ROOT), splits


def test_images_are_symlinks_and_labels_read_back_to_1e6(bccd, tmp_path):
    data_yaml, splits = _write_small(bccd, tmp_path / "yolo")
    data = yaml.safe_load(data_yaml.read_text())
    assert data["names"] == {0: "RBC", 1: "WBC", 2: "Platelets"} and data["train"] == "images/train"
    for row in splits["train"].itertuples():
        link = tmp_path / "yolo/images/train" / f"{safe_name(row.frame_id)}.jpg"
        assert link.is_symlink() and link.resolve() == (REPO_ROOT / row.image).resolve()
        lines = (tmp_path / "yolo/labels/train" / f"{safe_name(row.frame_id)}.txt").read_text().split("\n")
        got = np.array([[float(v) for v in line.split()] for line in lines if line])
        want = bccd.boxes[bccd.boxes.frame_id == row.frame_id]
        cx = (want.x1 + want.x2) / 2 / row.width
        assert len(got) == len(want)
        assert np.abs(got[:, 0] - want.class_id.to_numpy()).max() == 0
        assert np.abs(got[:, 1] - cx.to_numpy()).max() < 1e-6


def test_rewriting_replaces_the_old_dataset(bccd, tmp_path):
    _write_small(bccd, tmp_path / "yolo", n_train=6)
    _write_small(bccd, tmp_path / "yolo", n_train=2)
    assert len(list((tmp_path / "yolo/images/train").iterdir())) == 2
    assert not (tmp_path / "yolo.tmp").exists() and not (tmp_path / "yolo.old").exists()


def test_safe_names_do_not_collide():
    assert safe_name("a/b__c") != safe_name("a__b/c")


@pytest.mark.slow
def test_ultralytics_trains_one_epoch_on_it(bccd, tmp_path):
    disable_ultralytics_integrations()
    from ultralytics import YOLO

    data_yaml, _ = _write_small(bccd, tmp_path / "yolo", n_train=4, n_val=2)
    model = YOLO(str(REPO_ROOT.parent / "shared/weights/yolo11n-coco.pt"))
    model.train(
        data=str(data_yaml),
        epochs=1,
        imgsz=160,
        batch=4,
        workers=0,
        device="cpu",
        project=str(tmp_path / "runs"),
        name="t",
        plots=False,
        verbose=False,
        amp=False,
    )
    metrics = model.val(
        data=str(data_yaml),
        imgsz=160,
        batch=4,
        device="cpu",
        plots=False,
        verbose=False,
        project=str(tmp_path / "runs"),
        name="v",
    )
    assert model.names == {0: "RBC", 1: "WBC", 2: "Platelets"}
    assert 0.0 <= metrics.box.map50 <= 1.0
