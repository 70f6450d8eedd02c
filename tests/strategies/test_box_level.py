"""box_level: the top-K predicted boxes with their frames, under box, frame and cost limits."""

from __future__ import annotations

import pytest

from strategies import Budget, CycleState
from strategies.testing import make_pool, pick

# Box rows: 0: 0.9 (f0), 1: 0.55 (f0), 2: 0.3 (f1), 3: 0.1 (f1, below the 0.25 threshold), 4: 0.6 (f2)
POOL = make_pool([[[0.9], [0.55]], [[0.3], [0.1]], [[0.6]]])


def test_top_k_boxes_by_least_confidence_with_their_frames():
    sel = pick("box_level", POOL, Budget(boxes=2), measure="least_confidence", min_conf=None)
    # 1 - P: row 2 (0.7), row 1 (0.45), row 4 (0.4), row 0 (0.1); row 3 is below box_conf_threshold
    assert sel.box_indices.tolist() == [2, 1]
    assert sel.indices.tolist() == [1, 0]
    assert sel.values.tolist() == pytest.approx([0.7, 0.45])
    # the earlier single-class rule by name, 1 - max(p, 1 - p): row 1 (0.45), row 4 (0.4), row 2 (0.3)
    sel = pick("box_level", POOL, Budget(boxes=2), measure="least_confidence_binary", min_conf=None)
    assert sel.box_indices.tolist() == [1, 4]


def test_t_d_defaults_low_for_recall_every_scored_box_is_a_candidate():
    # t_d = 0.05: row 3 (0.1) is a candidate too; single-class least confidence 1 - p puts it first
    sel = pick("box_level", POOL, Budget(boxes=10))
    assert sorted(sel.box_indices.tolist()) == [0, 1, 2, 3, 4]


def test_random_box_takes_random_candidates_within_the_box_budget():
    picks = [tuple(pick("random_box", POOL, Budget(boxes=2), seed=s).box_indices.tolist()) for s in range(30)]
    assert all(len(p) == 2 and len(set(p)) == 2 for p in picks)
    assert len(set(picks)) > 3  # the seed decides
    assert {b for p in picks for b in p} == {0, 1, 2, 3, 4}  # every box above t_d = 0.05, row 3 included
    only_confident = pick("random_box", POOL, Budget(boxes=10), min_conf=None)
    assert sorted(only_confident.box_indices.tolist()) == [0, 1, 2, 4]  # box_conf_threshold 0.25


def test_min_conf_admits_low_confidence_boxes():
    sel = pick("box_level", POOL, Budget(boxes=1), min_conf=0.05, measure="least_confidence")
    assert sel.box_indices.tolist() == [3]  # 0.1: the least probable box
    sel = pick("box_level", POOL, Budget(boxes=10), min_conf=0.05)
    assert sorted(sel.box_indices.tolist()) == [0, 1, 2, 3, 4]


def test_frame_limit_keeps_asking_about_boxes_of_frames_already_picked():
    sel = pick("box_level", POOL, Budget(boxes=3, frames=1), measure="least_confidence_binary", min_conf=None)
    assert sel.indices.tolist() == [0] and sel.box_indices.tolist() == [1, 0]


def test_cost_counts_a_frame_once_and_each_queried_box():
    budget = Budget(cost=5, frame_cost=2, box_cost=1)
    sel = pick("box_level", POOL, budget, measure="least_confidence_binary", min_conf=None)
    # row 1: new frame (3), row 4: new frame (+3 = 6 > 5, skipped), row 2: new frame (skipped), row 0: +1 = 4
    assert sel.box_indices.tolist() == [1, 0] and sel.indices.tolist() == [0]


def test_labeled_frames_are_not_queried():
    sel = pick("box_level", POOL, Budget(boxes=5), CycleState(labeled=frozenset({"f0"})), min_conf=None)
    assert set(sel.indices.tolist()) == {1, 2} and sorted(sel.box_indices.tolist()) == [2, 4]


def test_coreset_boxes_start_far_from_the_labeled_objects():
    pool = make_pool(
        [[[0.9]], [[0.9], [0.9]], [[0.9]]],
        box_embeddings=[[[0, 0]], [[0.5, 0], [9, 0]], [[5, 0]]],
    )
    sel = pick("box_level", pool, Budget(boxes=2), CycleState(labeled=frozenset({"f0"})), measure="coreset")
    assert sel.box_indices.tolist() == [2, 3]  # (9, 0) first, then (5, 0); (0.5, 0) repeats the labeled box
    assert sel.indices.tolist() == [1, 2] and sel.values.tolist() == pytest.approx([9, 4], abs=1e-3)
