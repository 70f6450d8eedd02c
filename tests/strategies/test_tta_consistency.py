"""tta_consistency: original vs flipped pass, matched by IoU, with known disagreements."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.localization import flip_disagreement, greedy_match, pairwise_iou
from strategies.testing import make_pool, pick

BOX = [0.0, 0.0, 10.0, 10.0]


def test_iou_by_hand():
    iou = pairwise_iou(np.array([BOX]), np.array([[5.0, 0.0, 15.0, 10.0], [20, 20, 30, 30], BOX]))
    assert iou[0].tolist() == pytest.approx([50 / 150, 0.0, 1.0])


def test_greedy_match_takes_the_best_pairs_once():
    iou = np.array([[0.9, 0.8], [0.85, 0.1]])
    rows, cols = greedy_match(iou, 0.5)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0)]  # (1, 0) lost to (0, 0)
    rows, cols = greedy_match(iou, 0.05)
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0), (1, 1)]


def test_identical_passes_agree_completely():
    p = np.array([[0.8, 0.1]])
    assert flip_disagreement(np.array([BOX]), p, np.array([BOX]), p, 0.5).tolist() == [0.0]


def test_matched_pair_disagreement_combines_iou_and_class_gap():
    shifted = np.array([[2.0, 0.0, 12.0, 10.0]])  # IoU 80/120
    d = flip_disagreement(np.array([BOX]), np.array([[0.8, 0.1]]), shifted, np.array([[0.6, 0.3]]), 0.5)
    iou = 80 / 120
    assert d.tolist() == pytest.approx([(1 - iou * (1 - 0.2)) * 0.8])


def test_a_box_that_vanishes_under_the_flip_counts_fully_weighted_by_confidence():
    d = flip_disagreement(np.array([BOX]), np.array([[0.9, 0.05]]), np.zeros((0, 4)), np.zeros((0, 2)), 0.5)
    assert d.tolist() == pytest.approx([0.9])
    far = np.array([[100.0, 100, 110, 110]])
    d = flip_disagreement(np.array([BOX]), np.array([[0.9, 0.05]]), far, np.array([[0.3, 0.1]]), 0.5)
    assert sorted(d.tolist()) == pytest.approx([0.3, 0.9])


def test_strategy_prefers_the_unstable_frame():
    stable = [[0.9, 0.1]]
    pool = make_pool(
        [stable, [[0.9, 0.1]], [[0.7, 0.2]], []],
        flip_probs=[stable, [], [[0.2, 0.7]], []],  # 1: box vanished; 2: class flipped
    )
    sel = pick("tta_consistency", pool, 4)
    assert sel.indices.tolist() == [1, 2, 0]  # the empty frame is never picked by default
    assert sel.values.tolist() == pytest.approx([0.9, 0.5 * 0.7, 0.0])
    sel = pick("tta_consistency", pool, 4, include_empty=True)
    assert sel.indices.tolist()[-1] == 3


def test_boxes_below_min_conf_are_ignored_in_both_passes():
    # Image 0: a faint box that vanishes (0.1 x 1). Image 1: a confident pair, class gap 0.1 ((1 - 0.9) x 0.9).
    pool = make_pool([[[0.1, 0.0]], [[0.9, 0.0]]], flip_probs=[[], [[0.8, 0.0]]])
    sel = pick("tta_consistency", pool, 2)
    assert sel.indices.tolist() == [0, 1] and sel.values.tolist() == pytest.approx([0.1, 0.09])
    assert pick("tta_consistency", pool, 2, min_conf=0.25).indices.tolist() == [1]
