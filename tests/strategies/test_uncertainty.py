"""Uncertainty: per-box measure -> class weight -> per-image reduction, on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import CycleState
from strategies.testing import make_pool, pick
from strategies.uncertainty import box_uncertainty, inverse_frequency_weights, reduce_per_image


def test_margin_picks_the_near_tie_over_the_confident_box():
    pool = make_pool([[[0.9, 0.1]], [[0.51, 0.49]]])
    sel = pick("uncertainty", pool, 1, measure="margin")
    assert sel.indices.tolist() == [1]
    assert sel.values[0] == pytest.approx(0.98, abs=1e-6)


@pytest.mark.parametrize(
    "measure, expected",
    [
        ("least_confidence", [0.1, 0.5, 0.4]),
        ("margin", [0.2, 1.0, 1.0]),
        ("entropy", [-(0.9 * np.log(0.9) + 0.1 * np.log(0.1)), np.log(2), np.log(2)]),
    ],
)
def test_box_measures_by_hand(measure, expected):
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.6]], np.float32)  # sigmoids need not sum to 1
    assert box_uncertainty(probs, measure) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "measure, expected",
    [("least_confidence", [0.1, 0.5, 0.3]), ("margin", [0.2, 1.0, 0.6]), ("entropy", None)],
)
def test_a_single_class_is_weighed_against_not_that_class(measure, expected):
    probs = np.array([[0.9], [0.5], [0.3]], np.float32)
    got = box_uncertainty(probs, measure)
    if expected is None:
        expected = [-(p * np.log(p) + (1 - p) * np.log(1 - p)) for p in (0.9, 0.5, 0.3)]
    assert got == pytest.approx(expected, abs=1e-6)


def test_reductions_over_csr_rows_with_empty_images():
    values = np.array([1.0, 3.0, 2.0, 5.0])
    offsets = np.array([0, 0, 3, 3, 4])  # images: [], [1, 3, 2], [], [5]
    assert reduce_per_image(values, offsets, "max").tolist() == [0, 3, 0, 5]
    assert reduce_per_image(values, offsets, "sum").tolist() == [0, 6, 0, 5]
    assert reduce_per_image(values, offsets, "mean").tolist() == [0, 2, 0, 5]
    keep = np.array([True, False, True, False])
    assert reduce_per_image(values, offsets, "mean", keep).tolist() == [0, 1.5, 0, 0]
    assert reduce_per_image(values, offsets, "max", keep).tolist() == [0, 2, 0, 0]


def test_aggregation_changes_the_pick():
    # Image 0: one very uncertain box. Image 1: three fairly uncertain boxes.
    pool = make_pool([[[0.5, 0.5]], [[0.7, 0.3]] * 3])
    assert pick("uncertainty", pool, 1, measure="margin", aggregation="max").indices.tolist() == [0]
    assert pick("uncertainty", pool, 1, measure="margin", aggregation="sum").indices.tolist() == [1]


def test_empty_images_score_zero_and_are_picked_only_when_allowed():
    pool = make_pool([[], [[0.9, 0.1]], []])
    never = pick("uncertainty", pool, 3)
    assert never.indices.tolist() == [1]
    allowed = pick("uncertainty", pool, 3, include_empty=True)
    assert allowed.indices[0] == 1 and sorted(allowed.indices.tolist()) == [0, 1, 2]
    assert allowed.values[1:].tolist() == [0.0, 0.0]


def test_min_conf_ignores_low_confidence_boxes():
    pool = make_pool([[[0.06, 0.02]], [[0.7, 0.3]]])
    assert pick("uncertainty", pool, 1, measure="least_confidence").indices.tolist() == [0]
    assert pick("uncertainty", pool, 1, measure="least_confidence", min_conf=0.25).indices.tolist() == [1]


def test_class_weights_lift_a_rare_class_above_a_more_uncertain_common_one():
    # Image 0: a common-class box with a near tie; image 1: a rare-class box, less uncertain.
    pool = make_pool([[[0.55, 0.45, 0.0]], [[0.1, 0.0, 0.8]]])
    state = CycleState(labeled_class_counts=np.array([90, 10, 0]))
    assert pick("uncertainty", pool, 1, state, measure="margin").indices.tolist() == [0]
    weighted = pick("uncertainty", pool, 1, state, measure="margin", class_weights=True)
    assert weighted.indices.tolist() == [1]


def test_inverse_frequency_weights():
    w = inverse_frequency_weights(np.array([10, 10, 10]), 3)
    assert w == pytest.approx([1, 1, 1])
    w = inverse_frequency_weights(np.array([8, 0]), 2, smoothing=1.0)
    assert w == pytest.approx([10 / (2 * 9), 10 / (2 * 1)])
    assert inverse_frequency_weights(None, 4).tolist() == [1, 1, 1, 1]  # before any label
    with pytest.raises(ValueError, match="shape"):
        inverse_frequency_weights(np.array([1, 2]), 3)


def test_class_weights_use_the_most_likely_class_of_each_box():
    pool = make_pool([[[0.6, 0.4]], [[0.4, 0.6]]])  # same margin, different top class
    state = CycleState(labeled_class_counts=np.array([1, 100]))
    assert pick("uncertainty", pool, 1, state, measure="margin", class_weights=True).indices.tolist() == [0]
    state = CycleState(labeled_class_counts=np.array([100, 1]))
    assert pick("uncertainty", pool, 1, state, measure="margin", class_weights=True).indices.tolist() == [1]
