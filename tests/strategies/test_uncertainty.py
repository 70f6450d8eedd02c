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


def entropy(q: list[float]) -> float:
    return float(-sum(x * np.log(x) for x in q if x > 0))


@pytest.mark.parametrize(
    "measure, expected",
    [
        ("least_confidence", [0.1, 0.5, 0.4]),
        ("margin", [0.2, 1.0, 1.0]),
        # (P p / sum p, 1 - P): [0.81, 0.09, 0.1], [0.25, 0.25, 0.5], [0.3, 0.3, 0.4]
        ("entropy", [entropy([0.81, 0.09, 0.1]), entropy([0.25, 0.25, 0.5]), entropy([0.3, 0.3, 0.4])]),
        ("entropy_classes", [entropy([0.9, 0.1]), np.log(2), np.log(2)]),
        ("least_confidence_binary", [0.1, 0.5, 0.4]),
    ],
)
def test_box_measures_by_hand(measure, expected):
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.6, 0.6]], np.float32)  # sigmoids need not sum to 1
    assert box_uncertainty(probs, measure) == pytest.approx(expected, abs=1e-6)


def test_single_class_least_confidence_asks_about_the_least_probable_box_first():
    # the box-level paper's 1 - P: 0.1 before 0.3 before 0.5 before 0.9
    probs = np.array([[0.9], [0.5], [0.3], [0.1]], np.float32)
    assert box_uncertainty(probs, "least_confidence") == pytest.approx([0.1, 0.5, 0.7, 0.9], abs=1e-6)
    pool = make_pool([[[0.9]], [[0.5]], [[0.3]], [[0.1]]])
    assert pick("uncertainty", pool, 4, measure="least_confidence").indices.tolist() == [3, 2, 1, 0]
    # the earlier rule by name: 1 - max(p, 1 - p) puts the box nearest 0.5 first
    assert box_uncertainty(probs, "least_confidence_binary") == pytest.approx([0.1, 0.5, 0.3, 0.1], abs=1e-6)
    assert pick("uncertainty", pool, 1, measure="least_confidence_binary").indices.tolist() == [1]


@pytest.mark.parametrize(
    "measure, expected",
    [("margin", [0.2, 1.0, 0.6]), ("entropy", None), ("entropy_classes", None)],
)
def test_a_single_class_margin_and_entropy_weigh_it_against_not_that_class(measure, expected):
    probs = np.array([[0.9], [0.5], [0.3]], np.float32)
    got = box_uncertainty(probs, measure)
    if expected is None:
        expected = [-(p * np.log(p) + (1 - p) * np.log(1 - p)) for p in (0.9, 0.5, 0.3)]
    assert got == pytest.approx(expected, abs=1e-6)


def test_multi_class_entropy_accounts_for_the_box_confidence():
    # same class shape (an even split over two classes), confidence 0.05 vs 0.95 vs 0.5
    probs = np.array([[0.05, 0.05], [0.95, 0.95], [0.5, 0.5]], np.float32)
    got = box_uncertainty(probs, "entropy")
    assert got == pytest.approx(
        [entropy([0.025, 0.025, 0.95]), entropy([0.475, 0.475, 0.05]), entropy([0.25, 0.25, 0.5])], abs=1e-6
    )
    assert got[2] > got[1] > got[0]  # 0.05: nearly surely background; 0.5: unsure if there is an object
    # ignoring the confidence, all three were maximally uncertain (log 2)
    assert box_uncertainty(probs, "entropy_classes") == pytest.approx([np.log(2)] * 3, abs=1e-6)


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


def test_defaults_are_the_aggregation_papers_sum_and_empty_images_at_zero():
    from strategies import available

    assert available()["uncertainty"]["aggregation"] == "sum"
    assert available()["uncertainty"]["include_empty"] is True


def test_empty_images_score_zero_and_are_picked_only_when_allowed():
    pool = make_pool([[], [[0.9, 0.1]], []])
    never = pick("uncertainty", pool, 3, include_empty=False)
    assert never.indices.tolist() == [1]
    allowed = pick("uncertainty", pool, 3)
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


def test_pool_subset_ranks_only_a_seeded_random_subset_of_the_pool():
    pool = make_pool([[[0.5 + 0.04 * k, 0.1]] for k in range(10)])  # frame 0 is the most uncertain
    full = pick("uncertainty", pool, 1, measure="least_confidence")
    assert full.indices.tolist() == [0]
    subsets = [pick("uncertainty", pool, 10, measure="least_confidence", pool_subset=3, seed=s) for s in range(20)]
    assert all(len(sel.indices) == 3 for sel in subsets)  # only the drawn frames can be picked
    assert len({tuple(sorted(sel.indices.tolist())) for sel in subsets}) > 5  # the seed draws the subset
    for sel in subsets:  # within the subset, the uncertainty order holds
        assert sel.indices.tolist() == sorted(sel.indices.tolist())
    labeled = CycleState(labeled=frozenset(f"f{k}" for k in range(8)))
    assert sorted(pick("uncertainty", pool, 10, labeled, pool_subset=5).indices.tolist()) == [8, 9]
