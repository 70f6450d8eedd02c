"""Budgets in frames, boxes or cost, filled greedily in rank order; priorities for every frame."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import Budget, CycleState
from strategies.budget import estimated_boxes, expected_frames
from strategies.testing import make_pool, pick


def ranked_pool(boxes: list[int], conf: float = 0.9):
    """Frame k has boxes[k] boxes; least-confidence scores fall with k (frame 0 ranks first)."""
    probs = [[[conf + 0.01 * k, 0.0]] * b for k, b in enumerate(boxes)]
    return make_pool(probs, num_classes=2)


def by_rank(pool, budget, **params):
    params = {"measure": "least_confidence", "aggregation": "max", "include_empty": True, **params}
    return pick("uncertainty", pool, budget, **params)


def test_estimated_boxes_count_only_confident_predictions():
    pool = make_pool([[[0.9], [0.2], [0.3]], [], [[0.1]]])
    assert estimated_boxes(pool, 0.25).tolist() == [2, 0, 0]
    assert estimated_boxes(pool, 0.05).tolist() == [3, 0, 1]


def test_frame_budget_takes_the_top_frames():
    pool = ranked_pool([1, 1, 1, 1])
    assert by_rank(pool, Budget(frames=2)).indices.tolist() == [0, 1]
    assert by_rank(pool, Budget(frames=10)).indices.tolist() == [0, 1, 2, 3]
    assert by_rank(pool, Budget(frames=0)).indices.tolist() == []


def test_box_budget_skips_a_frame_that_does_not_fit_and_goes_on():
    pool = ranked_pool([5, 1, 3, 2])
    sel = by_rank(pool, Budget(boxes=4))
    assert sel.indices.tolist() == [1, 2]
    assert by_rank(pool, Budget(boxes=4, frames=1)).indices.tolist() == [1]


def test_cost_model_counts_frames_and_boxes():
    pool = ranked_pool([1, 1, 1, 0])
    sel = by_rank(pool, Budget(cost=7, frame_cost=2, box_cost=1))
    assert sel.indices.tolist() == [0, 1]  # 3 + 3; frame 2 (3 more) and frame 3 (2 more) would pass 7
    sel = by_rank(pool, Budget(cost=8, frame_cost=2, box_cost=1))
    assert sel.indices.tolist() == [0, 1, 3]


def test_box_conf_threshold_decides_which_boxes_cost():
    pool = ranked_pool([2, 2], conf=0.2)  # every box below 0.25: free under the default threshold
    assert by_rank(pool, Budget(boxes=0)).indices.tolist() == [0, 1]
    assert by_rank(pool, Budget(boxes=3, box_conf_threshold=0.1)).indices.tolist() == [0]


def test_priority_puts_the_picks_first_in_rank_order_and_labeled_frames_last():
    pool = ranked_pool([1, 1, 1, 1, 1])
    state = CycleState(labeled=frozenset({"f0"}), blocked=frozenset({"f4"}))
    sel = by_rank(pool, Budget(frames=2), state=state)
    assert sel.indices.tolist() == [1, 2]
    p = sel.priority
    assert p[1] > p[2] > p[3] > 0 and p[0] == 0 and p[4] == 0


def test_expected_frames_for_box_and_cost_budgets():
    pool = ranked_pool([2, 2, 2, 2])
    every = np.ones(4, bool)
    assert expected_frames(pool, Budget(frames=3), every) == 3
    assert expected_frames(pool, Budget(boxes=3), every) == 2
    assert expected_frames(pool, Budget(cost=9, frame_cost=1, box_cost=1), every) == 3
    assert expected_frames(pool, Budget(frames=30), every) == 4


def test_advance_carries_labels_blocks_and_class_counts():
    pool = ranked_pool([1, 1])
    sel = by_rank(pool, Budget(frames=1))
    state = CycleState().advance(pool, sel, labeled_class_counts=np.array([1, 0]))
    assert state.cycle == 1 and state.labeled == {"f0"} and state.labeled_class_counts.tolist() == [1, 0]
    assert CycleState(labeled_class_counts=np.array([3])).advance(pool, sel).labeled_class_counts.tolist() == [3]


@pytest.mark.parametrize("frames", [0, 1, 3])
def test_frames_with_zero_boxes_are_free_under_a_box_budget(frames):
    pool = ranked_pool([0, 0, 0])
    assert len(by_rank(pool, Budget(boxes=0, frames=frames)).indices) == frames
