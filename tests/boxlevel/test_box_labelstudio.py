"""Label Studio JSON for box queries: regions flagged for review out, answered boxes back."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from pipelines.labelstudio.box_queries import (
    REVIEW_NOTE,
    RegionSchema,
    answers_from_annotation,
    query_prediction,
    region_xyxy,
)

SCHEMA = RegionSchema(from_name="label", to_name="image", labels=("RBC", "WBC", "Platelets"))
W, H = 640, 480
QUERIES = pd.DataFrame(
    {
        "query_id": ["2-0", "2-1", "2-2"],
        "frame_id": "img",
        "x1": [64.0, 320.0, 0.0],
        "y1": [48.0, 240.0, 0.0],
        "x2": [128.0, 384.0, 32.0],
        "y2": [96.0, 288.0, 24.0],
        "class_id": [0, 1, 2],
        "conf": [0.41, 0.55, 0.3],
        "cycle": 2,
    }
)


def prediction() -> dict:
    return query_prediction(QUERIES, W, H, SCHEMA, model_version="cycle-2")


def annotate(result: list[dict], **extra) -> dict:
    return {"id": 7, "result": result, "was_cancelled": False, "lead_time": 12.5, **extra}


def test_queried_boxes_become_regions_flagged_for_review():
    pred = prediction()
    assert pred["model_version"] == "cycle-2"
    assert pred["score"] == pytest.approx(0.3)  # the least confident query: the Data Manager shows it first
    first = pred["result"][0]
    assert first["id"] == "alod-q-2-0"
    assert (first["from_name"], first["to_name"], first["type"]) == ("label", "image", "rectanglelabels")
    assert first["value"] == {
        "x": 10.0,
        "y": 10.0,
        "width": 10.0,
        "height": 10.0,
        "rotation": 0,
        "rectanglelabels": ["RBC"],
    }
    assert first["meta"] == {"text": [REVIEW_NOTE]}
    assert first["score"] == pytest.approx(0.41)
    assert [r["value"]["rectanglelabels"] for r in pred["result"]] == [["RBC"], ["WBC"], ["Platelets"]]


def test_kept_moved_relabeled_deleted_and_drawn_boxes_read_back_as_answers():
    regions = copy.deepcopy(prediction()["result"])
    untouched, moved = regions[0], regions[1]
    untouched["origin"] = "prediction"
    moved["origin"] = "prediction-changed"
    moved["value"].update(x=52.5, width=12.5, rectanglelabels=["Platelets"])  # 336..416 px, relabeled
    drawn = {
        "id": "Xk3",
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "origin": "manual",
        "original_width": W,
        "original_height": H,
        "value": {"x": 75, "y": 75, "width": 5, "height": 5, "rotation": 0, "rectanglelabels": ["WBC"]},
    }
    # query 2-2 was deleted
    answers = answers_from_annotation(annotate([untouched, moved, drawn]), QUERIES, SCHEMA, cycle=2, frame_id="img")
    by_query = answers.set_index("query_id")
    assert by_query["outcome"].to_dict() == {
        "2-0": "accepted",
        "2-1": "corrected",
        "drawn-Xk3": "drawn",
        "2-2": "rejected",
    }
    assert by_query.loc["2-1", ["x1", "y1", "x2", "y2"]].tolist() == pytest.approx([336, 240, 416, 288])
    assert by_query.loc["2-1", "class_id"] == 2
    assert by_query.loc["drawn-Xk3", ["x1", "y1", "x2", "y2"]].tolist() == pytest.approx([480, 360, 512, 384])
    assert by_query.loc["2-2", "class_id"] == -1  # the region it declared background
    assert (answers["cycle"] == 2).all() and (answers["frame_id"] == "img").all()


def test_a_box_moved_within_the_tolerance_with_its_label_is_accepted():
    regions = copy.deepcopy(prediction()["result"])
    regions[0]["value"]["x"] += 0.1  # 0.64 px
    answers = answers_from_annotation(annotate(regions), QUERIES, SCHEMA, cycle=2, frame_id="img")
    assert answers["outcome"].tolist() == ["accepted"] * 3


def test_without_the_region_ids_queries_are_matched_by_overlap():
    regions = copy.deepcopy(prediction()["result"])[:2]
    for r in regions:
        r["id"] = f"ls-{r['id'][-1]}"
    regions[1]["value"]["x"] += 1  # 6.4 px: IoU 0.82 with query 2-1
    answers = answers_from_annotation(annotate(regions), QUERIES, SCHEMA, cycle=2, frame_id="img")
    assert answers.set_index("query_id")["outcome"].to_dict() == {
        "2-0": "accepted",
        "2-1": "corrected",
        "2-2": "rejected",
    }


def test_a_skipped_task_answers_nothing():
    assert answers_from_annotation(annotate([], was_cancelled=True), QUERIES, SCHEMA, cycle=2, frame_id="img").empty


def test_a_label_the_model_does_not_know_is_an_error():
    regions = copy.deepcopy(prediction()["result"])
    regions[0]["value"]["rectanglelabels"] = ["Neutrophil"]
    with pytest.raises(ValueError, match="Neutrophil"):
        answers_from_annotation(annotate(regions), QUERIES, SCHEMA, cycle=2, frame_id="img")


def test_a_rotated_rectangle_reads_as_its_bounding_box():
    region = {
        "original_width": 100,
        "original_height": 100,
        "value": {"x": 50, "y": 10, "width": 20, "height": 10, "rotation": 90},
    }
    assert region_xyxy(region).tolist() == pytest.approx([40, 10, 50, 30])
