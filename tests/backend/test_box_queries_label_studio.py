"""Box-level queries through a real Label Studio: three queried boxes pushed as review regions, an
annotator keeps one, moves one and deletes one through the API, and the answers read back become the
next cycle's labeled boxes (the deleted one is background; every query costs one box)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.boxlevel.partial_labels import QUERY_COLUMNS, XYXY, empty, labeling_cost, training_boxes
from pipelines.labelstudio.box_queries import REVIEW_NOTE, RegionSchema, region_id
from pipelines.labelstudio.box_sync import fetch_box_answers, push_box_queries

pytestmark = pytest.mark.slow

CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image">
<Label value="RBC"/><Label value="WBC"/><Label value="Platelets"/>
</RectangleLabels></View>"""
SCHEMA = RegionSchema(from_name="label", to_name="image", labels=("RBC", "WBC", "Platelets"))
W, H = 640, 480
FRAME = "bccd/BloodImage_00000"
IMAGE = "/data/local-files/?d=bccd/BCCD/JPEGImages/BloodImage_00000.jpg"
QUERIES = pd.DataFrame(
    {
        "query_id": ["1-0", "1-1", "1-2"],
        "frame_id": FRAME,
        "x1": [64.0, 320.0, 500.0],
        "y1": [48.0, 240.0, 400.0],
        "x2": [128.0, 384.0, 540.0],
        "y2": [96.0, 288.0, 440.0],
        "class_id": [0, 1, 2],
        "conf": [0.41, 0.55, 0.30],
        "cycle": 1,
    }
)[QUERY_COLUMNS]
MOVED_X_PCT = 5.0  # the annotator drags query 1-1 right by 5 % of the width: 32 px


@pytest.fixture(scope="module")
def answered(label_studio):
    ls = label_studio.client()
    project = ls.projects.create(title="alod box queries", label_config=CONFIG)
    ls.projects.import_tasks(project.id, request=[{"data": {"image": IMAGE, "frame_id": FRAME}}])
    push_box_queries(ls, project.id, QUERIES, {FRAME: (W, H)}, SCHEMA, model_version="cycle-1")

    task = next(iter(ls.tasks.list(project=project.id)))
    [prediction] = ls.predictions.list(task=task.id)
    regions = {r["id"]: r for r in prediction.result}
    kept = regions[region_id("1-0")]
    moved = {**regions[region_id("1-1")]}
    moved["value"] = {**moved["value"], "x": moved["value"]["x"] + MOVED_X_PCT}
    # 1-2 is deleted: not an object
    ls.annotations.create(id=task.id, result=[kept, moved], lead_time=4.0)
    answers = fetch_box_answers(ls, project.id, QUERIES, SCHEMA, cycle=1)
    return prediction, answers.set_index("query_id")


def test_the_pushed_prediction_holds_exactly_the_queried_boxes_flagged_for_review(answered):
    prediction, _ = answered
    assert sorted(r["id"] for r in prediction.result) == [region_id(q) for q in ("1-0", "1-1", "1-2")]
    assert all(r["meta"]["text"] == [REVIEW_NOTE] for r in prediction.result)
    assert prediction.model_version == "cycle-1" and prediction.score == pytest.approx(0.30)


def test_kept_moved_and_deleted_boxes_read_back_as_accepted_corrected_rejected(answered):
    _, answers = answered
    assert answers.loc["1-0", "outcome"] == "accepted"
    assert answers.loc["1-1", "outcome"] == "corrected"
    assert answers.loc["1-2", "outcome"] == "rejected"
    assert answers.loc["1-1", "x1"] == pytest.approx(320.0 + MOVED_X_PCT / 100 * W, abs=1e-3)
    assert answers.loc["1-1", "y1"] == pytest.approx(240.0, abs=1e-3)


def test_the_next_cycles_labeled_set_has_the_two_answered_boxes_and_costs_three_queries(answered):
    _, answers = answered
    noisy = pd.DataFrame({"frame_id": [FRAME], "x1": [10.0], "y1": [10.0], "x2": [40.0], "y2": [40.0], "class_id": [0]})
    labels = training_boxes(empty(["frame_id", *XYXY, "class_id"]), answers.reset_index(), noisy, noisy_weight=0.5)
    exact = labels[labels["weight"] == 1.0].sort_values("x1")
    np.testing.assert_allclose(exact[XYXY].to_numpy(), [[64, 48, 128, 96], [352, 240, 416, 288]], atol=1e-3)
    assert exact["class_id"].tolist() == [0, 1]
    assert labels.loc[labels["weight"] == 0.5, "x1"].tolist() == [10.0]  # the frame's other box: noisy
    cost = labeling_cost(answers.reset_index())
    assert (cost["boxes_queried"], cost["boxes_accepted"], cost["boxes_corrected"], cost["boxes_rejected"]) == (
        3,
        1,
        1,
        1,
    )
    assert cost["boxes_cost"] == 3  # the noisy box never counts
