"""The per-cycle box dataset: which boxes are asked about, which train as labels and which as noisy labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.boxlevel.partial_labels import (
    ANSWER_COLUMNS,
    answered_frames,
    covered_boxes,
    labeling_cost,
    noisy_boxes,
    queries_from_selection,
    restrict,
    training_boxes,
    write_weighted_yolo_dataset,
)
from strategies import Budget, CycleState, select
from strategies.testing import make_pool

# f0: an answered box (row 0), an uncertain box (row 1), a confident box (row 2)
# f1: a rejected region (row 3) and an uncertain box (row 4); f2: one uncertain box (row 5)
POOL = make_pool(
    [[[0.9, 0.1], [0.5, 0.4], [0.1, 0.95]], [[0.45, 0.1], [0.1, 0.55]], [[0.6, 0.1]]],
    xyxy=[
        [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]],
        [[0, 0, 10, 10], [20, 0, 30, 10]],
        [[0, 0, 10, 10]],
    ],
)


def answer(frame: str, outcome: str, box: list[float], cls: int, cycle: int = 0, qid: str = "0-0") -> dict:
    return dict(zip(ANSWER_COLUMNS, [qid, frame, outcome, *box, cls, 1.0, cycle], strict=True))


ANSWERS = pd.DataFrame(
    [
        answer("f0", "corrected", [0, 0, 10, 11], 0, qid="0-0"),
        answer("f1", "rejected", [1, 0, 11, 10], -1, qid="0-1"),
    ]
)


def test_boxes_an_earlier_answer_covers_are_not_asked_again():
    assert covered_boxes(POOL, ANSWERS).tolist() == [True, False, False, True, False, False]


def test_a_box_level_query_on_the_open_boxes_maps_back_to_the_pool():
    open_pool, rows = restrict(POOL, ~covered_boxes(POOL, ANSWERS))
    assert open_pool.num_boxes == 4 and rows.tolist() == [1, 2, 4, 5]
    # f0 has an answered box but is not fully labeled: its other boxes can still be queried
    sel = select("box_level", open_pool, Budget(boxes=2), CycleState(labeled=frozenset({"f2"})))
    queries = queries_from_selection(open_pool, sel, cycle=1)
    assert queries["frame_id"].tolist() == ["f0", "f1"]  # 0.5 and 0.55 are the least confident
    assert queries[["x1", "x2"]].to_numpy().tolist() == [[20, 30], [20, 30]]
    assert queries["class_id"].tolist() == [0, 1] and queries["query_id"].tolist() == ["1-0", "1-1"]


def test_noisy_labels_are_the_confident_uncovered_boxes_of_answered_frames_one_per_object():
    pool = make_pool(
        [[[0.9, 0.1], [0.1, 0.8], [0.3, 0.7], [0.1, 0.2]], [[0.9, 0.1]]],
        xyxy=[[[0, 0, 10, 10], [20, 0, 30, 10], [20, 0, 30, 11], [40, 0, 50, 10]], [[0, 0, 10, 10]]],
    )
    candidates = ~covered_boxes(pool, ANSWERS)  # row 0 is the answered box of f0
    noisy = noisy_boxes(pool, ["f0"], candidates, min_conf=0.25)
    # rows 1 and 2 claim one object with two classes: the more confident stays; row 3 is below 0.25
    assert noisy[["x1", "class_id"]].to_numpy().tolist() == [[20, 1]]
    assert noisy["conf"].tolist() == pytest.approx([0.8])


def test_an_image_trains_once_it_has_an_answered_box_with_its_other_boxes_dampened_earlier_rule():
    labeled = pd.DataFrame({"frame_id": ["init"], "x1": [0.0], "y1": [0.0], "x2": [5.0], "y2": [5.0], "class_id": [2]})
    answers = pd.concat([ANSWERS, pd.DataFrame([answer("f3", "rejected", [0, 0, 9, 9], -1, qid="0-2")])])
    noisy = pd.DataFrame(
        {
            "frame_id": ["f0", "f1", "f3"],
            "x1": [20.0] * 3,
            "y1": [0.0] * 3,
            "x2": [30.0] * 3,
            "y2": [10.0] * 3,
            "class_id": [1, 1, 1],
            "conf": [0.8] * 3,
        }
    )
    assert answered_frames(answers, include_background=False) == ["f0"]  # f1 and f3 only have rejections
    boxes = training_boxes(labeled, answers, noisy, noisy_weight=0.5, include_background=False)
    assert boxes[["frame_id", "x2", "class_id", "weight"]].values.tolist() == [
        ["init", 5.0, 2, 1.0],  # ground truth of the initial, fully labeled frame
        ["f0", 10.0, 0, 1.0],  # the answered box
        ["f0", 30.0, 1, 0.5],  # a noisy label of an answered frame, weighing lambda_d
    ]


def test_background_only_answers_reach_the_training_set():
    # the paper's rule: f1 and f3 were answered only with rejections (background); they train too,
    # f1 and f3 with their noisy box, f3's rejected region as background (no label on it)
    answers = pd.concat([ANSWERS, pd.DataFrame([answer("f3", "rejected", [0, 0, 9, 9], -1, qid="0-2")])])
    assert sorted(answered_frames(answers)) == ["f0", "f1", "f3"]
    noisy = pd.DataFrame(
        {
            "frame_id": ["f0", "f1", "f3", "f9"],
            "x1": [20.0] * 4,
            "y1": [0.0] * 4,
            "x2": [30.0] * 4,
            "y2": [10.0] * 4,
            "class_id": [1] * 4,
            "conf": [0.8] * 4,
        }
    )
    boxes = training_boxes(ANSWERS.iloc[:0], answers, noisy, noisy_weight=0.5)
    assert sorted(map(tuple, boxes[["frame_id", "weight"]].values.tolist())) == [
        ("f0", 0.5),
        ("f0", 1.0),
        ("f1", 0.5),
        ("f3", 0.5),
    ]  # f9 has no answer: not in training
    assert (boxes["class_id"] >= 0).all()  # a rejection never becomes a label


def test_a_frame_with_only_a_rejection_and_no_noisy_box_trains_as_pure_background(tmp_path):
    from pipelines.boxlevel.partial_labels import write_weighted_yolo_dataset

    answers = pd.DataFrame([answer("f3", "rejected", [0, 0, 9, 9], -1, qid="0-2")])
    frames = answered_frames(answers)
    assert frames == ["f3"]
    boxes = training_boxes(ANSWERS.iloc[:0], answers, ANSWERS.iloc[:0].assign(conf=0.0), noisy_weight=0.5)
    assert boxes.empty
    img = tmp_path / "f3.jpg"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(img)
    train = pd.DataFrame({"frame_id": frames, "image": [str(img)], "width": [32], "height": [32]})
    data = write_weighted_yolo_dataset(tmp_path / "ds", ["a", "b"], {"train": train}, boxes, tmp_path)
    images = list((data.parent / "images" / "train").iterdir())
    assert len(images) == 1  # the image is in the training split, with no box: pure background
    assert (data.parent / "labels" / "train" / "f3.txt").read_text() == ""


def test_noisy_boxes_never_count_as_labeling_cost():
    noisy = pd.DataFrame(
        {
            "frame_id": ["f0"] * 5,
            "x1": np.arange(5.0) * 20,
            "y1": 0.0,
            "x2": np.arange(5.0) * 20 + 9,
            "y2": 9.0,
            "class_id": 0,
            "conf": 0.9,
        }
    )
    boxes = training_boxes(ANSWERS.iloc[:0], ANSWERS, noisy, noisy_weight=0.5)
    assert (boxes["weight"] == 0.5).sum() == 5
    cost = labeling_cost(ANSWERS)
    assert cost["boxes_cost"] == cost["boxes_queried"] == 2  # the two queries, nothing for the noisy boxes


def test_lambda_d_must_be_a_weight():
    with pytest.raises(ValueError, match="noisy_weight"):
        training_boxes(ANSWERS.iloc[:0], ANSWERS, ANSWERS.iloc[:0], noisy_weight=1.5)


def test_label_files_carry_the_weight_as_a_sixth_column_only_where_a_box_is_dampened(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        Image.new("RGB", (100, 50)).save(tmp_path / f"{name}.jpg")
    frames = pd.DataFrame(
        {
            "frame_id": ["a", "b"],
            "image": [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")],
            "width": 100,
            "height": 50,
        }
    )
    boxes = pd.DataFrame(
        {
            "frame_id": ["a", "a", "b"],
            "x1": [0.0, 50.0, 0.0],
            "y1": 0.0,
            "x2": [10.0, 60.0, 20.0],
            "y2": 10.0,
            "class_id": [0, 1, 0],
            "weight": [1.0, 0.5, 1.0],
        }
    )
    data = write_weighted_yolo_dataset(tmp_path / "yolo", ["x", "y"], {"train": frames}, boxes, tmp_path)
    labels = data.parent / "labels" / "train"
    assert (labels / "a.txt").read_text().splitlines() == [
        "0 0.050000 0.100000 0.100000 0.200000 1.0000",
        "1 0.550000 0.100000 0.100000 0.200000 0.5000",
    ]
    assert (labels / "b.txt").read_text().splitlines() == ["0 0.100000 0.100000 0.200000 0.200000"]  # standard
    assert yaml.safe_load(data.read_text())["names"] == {0: "x", 1: "y"}
