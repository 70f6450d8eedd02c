"""Properties every strategy keeps, on random pools (hypothesis): the contract of `select`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import Budget, CycleState, available, select
from strategies.budget import estimated_boxes
from strategies.testing import random_pool

VARIANTS: dict[str, list[dict]] = {
    "random": [{}],
    "balanced_video": [{}, {"key": "scene"}],
    "uncertainty": [
        {},
        {"measure": "margin", "aggregation": "sum", "include_empty": True},
        {"measure": "least_confidence", "aggregation": "mean", "class_weights": True, "min_conf": 0.3},
    ],
    "spatial_divergence": [{}, {"region": 1}],
    "tta_consistency": [{}, {"aggregation": "sum", "include_empty": True, "min_conf": 0.2}],
    "coreset": [{}, {"metric": "cosine"}],
    "object_diversity": [{}, {"min_conf": 0.0}],
    "hybrid": [{}, {"score": "tta_consistency", "candidates": 1.0}],
    "box_level": [{}, {"measure": "margin"}, {"measure": "coreset", "min_conf": 0.0}],
}


def test_every_registered_built_in_is_covered():
    assert set(VARIANTS) <= set(available())


@st.composite
def cases(draw):
    n = draw(st.integers(0, 12))
    pool = random_pool(
        np.random.default_rng(draw(st.integers(0, 2**16))),
        n,
        max_boxes=draw(st.integers(0, 3)),
        num_classes=draw(st.integers(1, 3)),
    )
    frames = draw(st.none() | st.integers(0, 15))
    boxes = draw(st.none() | st.integers(0, 12))
    cost = draw(st.none() | st.floats(0, 20))
    if frames is None and boxes is None and cost is None:
        frames = 3
    budget = Budget(frames=frames, boxes=boxes, cost=cost, frame_cost=draw(st.sampled_from([0.0, 1.0, 2.5])))
    ids = pool.frame_ids.tolist()
    labeled = draw(st.sets(st.sampled_from(ids))) if ids else set()
    blocked = draw(st.sets(st.sampled_from(ids))) if ids else set()
    counts = draw(st.none() | st.just(np.arange(pool.num_classes)))
    state = CycleState(labeled=frozenset(labeled), blocked=frozenset(blocked), labeled_class_counts=counts)
    temporal = draw(st.sampled_from([None, {"dt1": 2, "dt2": 1}]))
    return pool, budget, state, temporal


def check_contract(name: str, params: dict, pool, budget: Budget, state: CycleState, temporal, seed: int) -> None:
    if temporal is not None:
        params = {**params, "temporal": temporal}
    sel = select(name, pool, budget, state, seed=seed, **params)
    again = select(name, pool, budget, state, seed=seed, **params)
    # deterministic under a seed
    assert np.array_equal(sel.indices, again.indices)
    assert np.array_equal(sel.values, again.values, equal_nan=True)
    assert np.array_equal(sel.priority, again.priority)
    # unique frames from the selectable pool, within every limit of the budget
    idx = sel.indices
    assert idx.dtype.kind == "i" and len(set(idx.tolist())) == len(idx)
    assert state.selectable_mask(pool)[idx].all()
    assert len(sel.values) == len(idx)
    if budget.frames is not None:
        assert len(idx) <= budget.frames
    if sel.box_indices is None:
        boxes = int(estimated_boxes(pool, budget.box_conf_threshold)[idx].sum())
    else:
        boxes = len(sel.box_indices)
        assert len(set(sel.box_indices.tolist())) == boxes
        assert set(pool.box_image_index[sel.box_indices].tolist()) == set(idx.tolist())
    if budget.boxes is not None:
        assert boxes <= budget.boxes
    if budget.cost is not None:
        assert budget.spent(len(idx), boxes) <= budget.cost + 1e-9
    # priority: a finite score for every frame, the picks first and in rank order
    p = sel.priority
    assert p.shape == (pool.num_images,) and np.isfinite(p).all()
    assert np.all(np.diff(p[idx]) < 0)
    others = np.setdiff1d(np.arange(pool.num_images), idx)
    if len(idx) and len(others):
        assert p[idx].min() > p[others].max()
    assert (p[~state.selectable_mask(pool)] == 0).all()


@pytest.mark.parametrize("name", sorted(VARIANTS))
@settings(max_examples=25, deadline=None)
@given(case=cases(), variant=st.integers(0, 2), seed=st.integers(0, 3))
def test_select_contract(name, case, variant, seed):
    pool, budget, state, temporal = case
    params = VARIANTS[name][variant % len(VARIANTS[name])]
    if name == "box_level" and budget.boxes is None and budget.cost is None:
        with pytest.raises(ValueError, match="box budget"):
            select(name, pool, budget, state, seed=seed, **params)
        return
    check_contract(name, params, pool, budget, state, temporal, seed)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_empty_pool_and_oversized_budget(name):
    empty = random_pool(np.random.default_rng(0), 0)
    check_contract(name, {}, empty, Budget(frames=5, boxes=5), CycleState(), None, 0)
    small = random_pool(np.random.default_rng(1), 4, max_boxes=1)
    sel = select(name, small, Budget(frames=100, boxes=100, box_conf_threshold=0.0), CycleState())
    assert len(sel.indices) <= 4
    no_boxes = random_pool(np.random.default_rng(2), 5, max_boxes=0)
    check_contract(name, {}, no_boxes, Budget(frames=3, boxes=3), CycleState(), None, 0)


@pytest.mark.parametrize("name", ["random", "coreset", "balanced_video", "spatial_divergence"])
def test_oversized_frame_budget_takes_every_selectable_frame(name):
    pool = random_pool(np.random.default_rng(3), 6)
    state = CycleState(labeled=frozenset({"f1"}))
    assert sorted(select(name, pool, Budget(frames=50), state).indices.tolist()) == [0, 2, 3, 4, 5]
