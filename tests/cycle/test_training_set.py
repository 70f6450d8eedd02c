"""The training set the recipe writes for ultralytics: answers for training frames, ground truth for
val frames, each box once (also when val falls back to the training frames), weights in box mode."""

from __future__ import annotations

import pandas as pd

from pipelines.cycle.recipe import Recipe, write_training_data
from pipelines.cycle.yolo_ops import validation_frames
from pipelines.datasets.labelmap import LabelMap
from pipelines.datasets.manifest import BOX_COLUMNS, FRAME_COLUMNS, Manifest


def tiny_manifest(image) -> Manifest:
    frames = pd.DataFrame(
        [[f"d/{i}", str(image), 640, 480, "", 0, "train", "{}"] for i in range(3)], columns=FRAME_COLUMNS
    )
    boxes = pd.DataFrame([[f"d/{i}", 10.0 + i, 20.0, 110.0, 120.0, "RBC", 0] for i in range(3)], columns=BOX_COLUMNS)
    return Manifest(frames, boxes, LabelMap(("RBC",)))


RECIPE = Recipe(epochs=1, imgsz=160, batch=2, device="cpu", val_split="val", val_limit=None)


def label_lines(data_yaml, split: str) -> dict[str, list[str]]:
    folder = data_yaml.parent / "labels" / split
    return {f.stem: f.read_text().splitlines() for f in sorted(folder.glob("*.txt"))}


def test_without_a_val_split_every_label_file_holds_each_box_once(tmp_path, shared):
    manifest = tiny_manifest(shared / "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg")
    train = manifest.frames.iloc[:2]
    val = validation_frames(manifest.frames, train, "val", None)
    assert val["frame_id"].tolist() == train["frame_id"].tolist()  # no val split: the training frames
    answers = manifest.boxes_of(train["frame_id"])
    data = write_training_data(RECIPE, manifest, list(train["frame_id"]), answers, tmp_path / "set", tmp_path)
    for split in ("train", "val"):
        files = label_lines(data, split)
        assert len(files) == 2
        assert all(len(lines) == 1 for lines in files.values()), files


def test_val_frames_that_are_not_training_frames_get_their_ground_truth(tmp_path, shared):
    manifest = tiny_manifest(shared / "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg")
    manifest.frames["split"] = ["train", "val", "val"]
    answers = manifest.boxes_of(["d/0"]).iloc[:0]  # the annotator drew nothing on d/0
    data = write_training_data(RECIPE, manifest, ["d/0"], answers, tmp_path / "set", tmp_path)
    assert [len(lines) for lines in label_lines(data, "train").values()] == [0]  # the answer, not the truth
    assert [len(lines) for lines in label_lines(data, "val").values()] == [1, 1]


def test_box_level_labels_carry_their_weight_and_val_boxes_weigh_one(tmp_path, shared):
    manifest = tiny_manifest(shared / "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg")
    manifest.frames["split"] = ["train", "train", "val"]
    noisy = manifest.boxes_of(["d/0"]).assign(weight=0.5)
    recipe = RECIPE.with_box_loss("per_group")
    data = write_training_data(recipe, manifest, ["d/0"], noisy, tmp_path / "set", tmp_path)
    (train_line,) = next(iter(label_lines(data, "train").values()))
    (val_line,) = next(iter(label_lines(data, "val").values()))
    assert float(train_line.split()[5]) == 0.5
    assert len(val_line.split()) == 5 or float(val_line.split()[5]) == 1.0


def test_the_stage_recipe_is_params_yaml_train_section_at_the_model_size(tmp_path):
    from core.settings import load_params

    params = load_params()
    recipe = Recipe.from_params(params)
    assert (recipe.epochs, recipe.imgsz, recipe.batch) == (
        params["train"]["epochs"],
        params["model"]["imgsz"],
        params["train"]["batch"],
    )
    assert recipe.box_loss is None


def test_evaluate_refuses_a_test_split_with_too_few_labeled_frames_and_says_what_to_label(tmp_path, shared):
    from types import SimpleNamespace

    import pytest

    from pipelines.cycle.layout import write_parquet
    from pipelines.stages.evaluate import TEST_BOXES, TEST_FRAMES, test_set

    manifest = tiny_manifest(shared / "data/bccd/BCCD/JPEGImages/BloodImage_00000.jpg")
    manifest.frames["split"] = ["test", "test", "train"]
    layout = SimpleNamespace(snapshot=tmp_path)
    params = {"evaluate": {"split": "test", "limit": None, "min_labeled_frames": 2}}
    frames, boxes = test_set(params, layout, manifest)  # the simulation: the dataset's ground truth
    assert len(frames) == 2 and len(boxes) == 2
    write_parquet(manifest.frames.iloc[:1], tmp_path / TEST_FRAMES)  # Label Studio: one test task labeled so far
    write_parquet(manifest.boxes.iloc[:1], tmp_path / TEST_BOXES)
    with pytest.raises(ValueError, match="1 labeled frames.*alod: test set"):
        test_set(params, layout, manifest)
