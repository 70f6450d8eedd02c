"""The box mode's bookkeeping between stages, on constructed tables with answers worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from core.settings import load_params
from pipelines.boxlevel import cycle_mode
from pipelines.boxlevel.partial_labels import ANSWER_COLUMNS

CANDIDATES = pd.DataFrame(
    {
        "frame_id": ["a", "a", "a", "b"],
        "x1": [0.0, 100.0, 300.0, 0.0],
        "y1": [0.0, 100.0, 300.0, 0.0],
        "x2": [50.0, 150.0, 350.0, 50.0],
        "y2": [50.0, 150.0, 350.0, 50.0],
        "class_id": [0, 1, 2, 0],
        "conf": [0.9, 0.6, 0.4, 0.8],
    }
)


def answer(query_id: str, frame: str, outcome: str, box: tuple[float, ...], cls: int, cycle: int = 1) -> dict:
    return {
        "query_id": query_id,
        "frame_id": frame,
        "outcome": outcome,
        "x1": box[0],
        "y1": box[1],
        "x2": box[2],
        "y2": box[3],
        "class_id": cls,
        "iou": 1.0,
        "cycle": cycle,
    }


def test_noisy_labels_are_the_candidates_of_answered_frames_that_no_answer_covers():
    answers = pd.DataFrame(
        [
            answer("1-0", "a", "corrected", (2, 2, 52, 52), 1),  # IoU with candidate 0: 48*48/(2500+2500-2304) = 0.85
            answer("1-1", "a", "rejected", (100, 100, 150, 150), -1),  # background: covers candidate 1
            answer("1-2", "b", "rejected", (0, 0, 50, 50), -1),  # b has no answered box: never trains
        ],
        columns=ANSWER_COLUMNS,
    )
    noisy = cycle_mode.uncovered(CANDIDATES, answers, cover_iou=0.5)
    assert noisy[["frame_id", "x1"]].values.tolist() == [["a", 300.0]]
    assert len(cycle_mode.uncovered(CANDIDATES, answers, cover_iou=0.9)) == 2  # 0.85 < 0.9: candidate 0 stays


def test_train_record_counts_boxes_touched_not_noisy_boxes():
    snapshot = {
        "frames": 8,
        "boxes": 40,
        "boxes_queried": 10,
        "boxes_accepted": 3,
        "boxes_corrected": 5,
        "boxes_rejected": 2,
        "boxes_drawn": 1,
        "boxes_cost": 11,
        "boxes_noisy": 7,
    }
    boxes = pd.DataFrame({"weight": [1.0] * 49 + [0.5] * 7})
    record = cycle_mode.train_record(snapshot, frames=14, boxes=boxes)
    assert record["boxes"] == 40 + 11 and record["frames"] == 14 and record["labeled_frames"] == 8
    assert record["noisy_weighted"] == 7
    cost = cycle_mode.cost_metrics(record, {"frame_cost": 2.0, "box_cost": 0.5})
    assert cost["boxes_labeled"] == cost["boxes_touched"] == 51
    assert cost["cumulative_cost"] == pytest.approx(2.0 * 8 + 0.5 * 51)  # answered frames cost no frame
    assert (cost["boxes_queried"], cost["boxes_drawn"], cost["boxes_noisy"]) == (10, 1, 7)


def test_the_next_simulated_cycle_follows_the_latest_answer():
    seeds = pd.DataFrame({"frame_id": ["s1", "s2"], "cycle": [0, 0]})
    none = pd.DataFrame(columns=ANSWER_COLUMNS)
    assert cycle_mode.next_cycle(seeds, none) == 1
    answers = pd.DataFrame(
        [
            answer("1-0", "a", "accepted", (0, 0, 1, 1), 0, cycle=1),
            answer("2-0", "a", "accepted", (5, 5, 9, 9), 0, cycle=2),
        ]
    )
    assert cycle_mode.next_cycle(seeds, answers) == 3


def test_box_mode_is_the_box_level_strategy():
    assert cycle_mode.enabled({"strategy": {"name": "box_level"}})
    assert not cycle_mode.enabled({"strategy": {"name": "uncertainty"}})
    params = load_params()
    params["budget"]["box_conf_threshold"] = 0.3
    params["box_level"]["noisy_conf"] = None
    assert cycle_mode.noisy_conf(params) == 0.3  # null: the budget's threshold
    params["box_level"]["noisy_conf"] = 0.1
    assert cycle_mode.noisy_conf(params) == 0.1
