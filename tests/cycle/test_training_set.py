"""The training set written for ultralytics: each box once, also when val falls back to the training frames."""

from __future__ import annotations

import pandas as pd

from pipelines.cycle.yolo_ops import validation_frames
from pipelines.datasets.labelmap import LabelMap
from pipelines.datasets.manifest import BOX_COLUMNS, FRAME_COLUMNS, Manifest
from pipelines.datasets.yolo_writer import write_yolo_dataset
from pipelines.stages.train import training_boxes


def tiny_manifest(image) -> Manifest:
    frames = pd.DataFrame(
        [[f"d/{i}", str(image), 640, 480, "", 0, "train", "{}"] for i in range(3)], columns=FRAME_COLUMNS
    )
    boxes = pd.DataFrame([[f"d/{i}", 10.0 + i, 20.0, 110.0, 120.0, "RBC", 0] for i in range(3)], columns=BOX_COLUMNS)
    return Manifest(frames, boxes, LabelMap(("RBC",)))


def test_without_a_val_split_every_label_file_holds_each_box_once(tmp_path, shared):
    manifest = tiny_manifest(shared / "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg")
    train = manifest.frames.iloc[:2]
    labeled_boxes = manifest.boxes_of(train["frame_id"])  # the answers so far
    val = validation_frames(manifest.frames, train, "val", None)
    assert val["frame_id"].tolist() == train["frame_id"].tolist()  # no val split: the training frames
    boxes = training_boxes(labeled_boxes, manifest, train, val)
    data = write_yolo_dataset(tmp_path / "set", ["RBC"], {"train": train, "val": val}, boxes, tmp_path)
    for split in ("train", "val"):
        for label_file in (data.parent / "labels" / split).glob("*.txt"):
            lines = label_file.read_text().splitlines()
            assert len(lines) == 1 and len(set(lines)) == len(lines), f"{label_file}: {lines}"
    assert len(boxes) == 2


def test_val_frames_that_are_not_training_frames_get_their_ground_truth(shared):
    manifest = tiny_manifest(shared / "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg")
    train, val = manifest.frames.iloc[:1], manifest.frames.iloc[1:]
    boxes = training_boxes(manifest.boxes_of(train["frame_id"]), manifest, train, val)
    assert sorted(boxes["frame_id"]) == ["d/0", "d/1", "d/2"]


def test_evaluate_refuses_a_test_split_with_too_few_labeled_frames_and_says_what_to_label(tmp_path, shared):
    from types import SimpleNamespace

    import pytest

    from pipelines.cycle.layout import write_parquet
    from pipelines.stages.evaluate import TEST_BOXES, TEST_FRAMES, test_set

    manifest = tiny_manifest(shared / "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg")
    manifest.frames["split"] = ["test", "test", "train"]
    layout = SimpleNamespace(snapshot=tmp_path)
    params = {"evaluate": {"split": "test", "min_labeled_frames": 2}}
    frames, boxes = test_set(params, layout, manifest)  # the simulation: the dataset's ground truth
    assert len(frames) == 2 and len(boxes) == 2
    write_parquet(manifest.frames.iloc[:1], tmp_path / TEST_FRAMES)  # Label Studio: one test task labeled so far
    write_parquet(manifest.boxes.iloc[:1], tmp_path / TEST_BOXES)
    with pytest.raises(ValueError, match="1 labeled frames.*alod: test set"):
        test_set(params, layout, manifest)
