"""The simulation oracle for box queries: snap to ground truth at IoU >= 0.5, else background."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.boxlevel.oracle import answer_queries
from pipelines.boxlevel.partial_labels import labeling_cost

# One image, two objects: a WBC (class 1) and a platelet (class 2).
TRUTH = pd.DataFrame(
    {
        "frame_id": ["img", "img"],
        "x1": [100.0, 300.0],
        "y1": [100.0, 50.0],
        "x2": [200.0, 330.0],
        "y2": [200.0, 80.0],
        "label": ["WBC", "Platelets"],
        "class_id": [1, 2],
    }
)


def queries(*boxes: tuple[float, float, float, float, int], frame: str = "img") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query_id": [f"0-{k}" for k in range(len(boxes))],
            "frame_id": frame,
            "x1": [b[0] for b in boxes],
            "y1": [b[1] for b in boxes],
            "x2": [b[2] for b in boxes],
            "y2": [b[3] for b in boxes],
            "class_id": [b[4] for b in boxes],
            "conf": 0.4,
            "cycle": 0,
        }
    )


def test_a_query_on_a_false_positive_becomes_background():
    answers = answer_queries(queries((500, 400, 560, 460, 0)), TRUTH)
    assert answers.loc[0, "outcome"] == "rejected"
    assert answers.loc[0, "class_id"] == -1
    # the rejected region is kept, so later cycles neither ask about it again nor train on it
    assert answers.loc[0, ["x1", "y1", "x2", "y2"]].tolist() == [500, 400, 560, 460]


def test_a_query_on_a_shifted_box_snaps_to_the_ground_truth_box_and_class():
    shifted = (120, 110, 220, 210, 0)  # IoU 0.56 with the WBC, predicted as class 0
    answers = answer_queries(queries(shifted), TRUTH)
    assert answers.loc[0, "outcome"] == "corrected"
    assert answers.loc[0, ["x1", "y1", "x2", "y2"]].tolist() == [100, 100, 200, 200]
    assert answers.loc[0, "class_id"] == 1
    assert answers.loc[0, "iou"] == pytest.approx(7200 / 12800)


def test_below_the_snap_threshold_is_background_and_the_threshold_is_a_setting():
    far = (150, 150, 250, 250, 1)  # IoU 2500 / 17500 = 0.14
    assert answer_queries(queries(far), TRUTH).loc[0, "outcome"] == "rejected"
    assert answer_queries(queries(far), TRUTH, iou_snap=0.1).loc[0, "outcome"] == "corrected"


def test_a_box_the_annotator_would_leave_alone_counts_as_accepted():
    nearly = (101, 100, 201, 200, 1)  # right class, IoU 0.98
    assert answer_queries(queries(nearly), TRUTH).loc[0, "outcome"] == "accepted"
    wrong_class = (101, 100, 201, 200, 0)
    assert answer_queries(queries(wrong_class), TRUTH).loc[0, "outcome"] == "corrected"
    assert answer_queries(queries(nearly), TRUTH, accept_iou=0.99).loc[0, "outcome"] == "corrected"


def test_two_queries_on_one_object_the_best_iou_wins_the_other_is_a_duplicate():
    loose, tight = (110, 110, 210, 210, 1), (105, 105, 205, 205, 1)  # IoU 0.68 and 0.82 with the WBC
    answers = answer_queries(queries(loose, tight), TRUTH)
    assert answers["query_id"].tolist() == ["0-0", "0-1"]  # the queries' order
    assert answers["outcome"].tolist() == ["rejected", "corrected"]


def test_an_object_answered_in_an_earlier_cycle_is_not_given_twice():
    earlier = answer_queries(queries((100, 100, 200, 200, 1)), TRUTH)
    again = answer_queries(queries((110, 110, 210, 210, 1)), TRUTH, earlier=earlier)
    assert again.loc[0, "outcome"] == "rejected"


def test_a_query_in_an_image_without_objects_is_background():
    answers = answer_queries(queries((0, 0, 10, 10, 0), frame="empty"), TRUTH)
    assert answers.loc[0, "outcome"] == "rejected"


def test_every_query_costs_one_box_whatever_the_answer():
    answers = answer_queries(queries((500, 400, 560, 460, 0), (120, 110, 220, 210, 0), (300, 50, 330, 80, 2)), TRUTH)
    assert labeling_cost(answers) == {
        "boxes_queried": 3,
        "boxes_accepted": 1,
        "boxes_corrected": 1,
        "boxes_rejected": 1,
        "boxes_drawn": 0,
        "boxes_cost": 3,
    }
