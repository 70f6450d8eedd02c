"""The registry: names and parameters from params.yaml, validated with errors that list the valid ones."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import Budget, CycleState, available, register, select
from strategies.registry import get
from strategies.testing import make_pool, pick

POOL = make_pool([[[0.9, 0.1]], [[0.5, 0.5]], []])

BUILT_IN = {
    "random",
    "balanced_video",
    "uncertainty",
    "spatial_divergence",
    "tta_consistency",
    "coreset",
    "object_diversity",
    "hybrid",
    "box_level",
}


def test_available_lists_every_strategy_with_its_defaults():
    listing = available()
    assert BUILT_IN <= set(listing)
    assert listing["uncertainty"]["measure"] == "entropy"
    assert listing["spatial_divergence"] == {"region": 1}
    assert listing["random"] == {}


def test_unknown_strategy_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown strategy 'nope'") as err:
        pick("nope", POOL, 1)
    for name in BUILT_IN:
        assert name in str(err.value)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown parameters \['measur'\]") as err:
        pick("uncertainty", POOL, 1, measur="margin")
    assert "measure='entropy'" in str(err.value) and "'least_confidence'" in str(err.value)


@pytest.mark.parametrize(
    "name, params",
    [
        ("uncertainty", {"measure": "variance"}),
        ("uncertainty", {"aggregation": "median"}),
        ("uncertainty", {"class_weights": "yes"}),
        ("uncertainty", {"min_conf": "0.3"}),
        ("spatial_divergence", {"region": 2.5}),
        ("coreset", {"metric": "manhattan"}),
        ("hybrid", {"candidates": True}),
        ("balanced_video", {"key": 3}),
    ],
)
def test_bad_parameter_values_are_refused_with_the_valid_ones(name, params):
    with pytest.raises(ValueError, match=rf"{name}\.\w+ must be .*; parameters: {name}\("):
        pick(name, POOL, 1, **params)


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("spatial_divergence", {"region": 0}, "region must be >= 1"),
        ("hybrid", {"candidates": 0.5}, "candidates must be >= 1"),
        ("hybrid", {"score": "coreset"}, "not a frame scorer"),
        ("tta_consistency", {"iou_threshold": 0.0}, "iou_threshold"),
        ("balanced_video", {"key": "weather"}, r"valid: \['video'\]"),
    ],
)
def test_out_of_range_values_are_refused(name, params, message):
    pool = make_pool([[[0.9, 0.1]], [[0.5, 0.5]]], divergence_maps=[np.zeros((2, 2))] * 2, flip_probs=[[], []])
    with pytest.raises(ValueError, match=message):
        pick(name, pool, 1, **params)


@pytest.mark.parametrize(
    "temporal, message",
    [
        ({"dt3": 1}, "unknown temporal keys"),
        ({"dt1": -1}, "dt1 must be an integer >= 0"),
        ({"smoothing": {"window": 4}}, "odd integer"),
        ({"smoothing": {"sigma": 0}}, "sigma must be a number > 0"),
        ({"smoothing": {"width": 3}}, "unknown temporal.smoothing keys"),
        ("fast", "temporal must be a mapping"),
    ],
)
def test_bad_temporal_rules_are_refused(temporal, message):
    with pytest.raises(ValueError, match=message):
        pick("uncertainty", POOL, 1, temporal=temporal)


def test_smoothing_is_refused_where_a_frame_score_does_not_exist():
    with pytest.raises(ValueError, match="smoothing does not apply to 'coreset'"):
        pick("coreset", POOL, 1, temporal={"smoothing": {"window": 3, "sigma": 1.0}})


def test_missing_pool_fields_say_what_to_turn_on():
    with pytest.raises(ValueError, match="divergence maps"):
        pick("spatial_divergence", POOL, 1)
    with pytest.raises(ValueError, match="tta_flip"):
        pick("tta_consistency", POOL, 1)
    with pytest.raises(ValueError, match="box budget"):
        pick("box_level", POOL, 1)


def test_user_strategies_register_with_a_decorator():
    @register("test_widest_image", replace=True)
    def widest(pool, state, rng, *, scale: float = 1.0) -> np.ndarray:
        return scale * pool.image_sizes[:, 0].astype(float)

    pool = make_pool([[], [], []])
    pool.image_sizes[1, 0] = 2000
    sel = select("test_widest_image", pool, Budget(frames=1), CycleState(), scale=2.0)
    assert sel.indices.tolist() == [1] and sel.values.tolist() == [4000.0]
    assert available()["test_widest_image"] == {"scale": 1.0}
    with pytest.raises(ValueError, match="already registered"):
        register("test_widest_image")(widest)
    with pytest.raises(ValueError, match="need defaults"):
        register("test_no_default")(lambda pool, state, rng, *, x: pool)  # noqa: ARG005


def test_budget_needs_a_limit_and_refuses_negative_values():
    with pytest.raises(ValueError, match="frames, boxes or cost"):
        Budget()
    with pytest.raises(ValueError, match="cost must be >= 0"):
        Budget(cost=-1)
    assert Budget(cost=5.0, frame_cost=2.0, box_cost=0.5).spent(2, 4) == 6.0


def test_describe_shows_choices():
    assert "measure='entropy' (one of ['least_confidence', 'margin', 'entropy', " in get("uncertainty").describe()
