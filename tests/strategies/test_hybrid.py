"""hybrid: the most uncertain frames are the candidates, k-center spreads the picks among them."""

from __future__ import annotations

import numpy as np

from strategies import Budget, CycleState
from strategies.testing import make_pool, pick

# Frames 0 and 1: the most uncertain, near duplicates. Frame 2: a bit less uncertain, elsewhere.
# Frames 3-5: confident and far away: never candidates with candidates=1.5 x 2 frames.
PROBS = [[[0.5, 0.5]], [[0.52, 0.48]], [[0.6, 0.4]], [[0.95, 0.0]], [[0.96, 0.0]], [[0.97, 0.0]]]
EMB = np.array([[0, 0], [0.1, 0], [5, 0], [50, 50], [-50, 50], [50, -50]], np.float32)
POOL = make_pool(PROBS, image_embeddings=EMB)


def test_uncertainty_alone_takes_both_duplicates():
    assert sorted(pick("uncertainty", POOL, 2, measure="margin").indices.tolist()) == [0, 1]


def test_diversity_among_the_candidates_skips_the_duplicate():
    for seed in range(4):
        sel = pick("hybrid", POOL, 2, seed=seed, candidates=1.5, score_params={"measure": "margin"})
        assert set(sel.indices.tolist()) in ({0, 2}, {1, 2})


def test_candidates_grow_with_the_multiple():
    sel = pick("hybrid", POOL, 2, candidates=3.0, score_params={"measure": "margin"})
    assert len(set(sel.indices.tolist()) & {3, 4, 5}) >= 1  # the far frames are now candidates


def test_seeding_with_labeled_frames_steers_away_from_them():
    state = CycleState(labeled=frozenset({"f3"}))
    sel = pick("hybrid", POOL, 1, state, candidates=2.0, score_params={"measure": "margin"})
    assert sel.indices.tolist()[0] in (0, 1, 2)


def test_any_registered_scorer_and_a_box_budget():
    maps = [np.full((2, 2), v) for v in (3.0, 2.9, 1.0, 0.0, 0.0, 0.0)]
    pool = make_pool(PROBS, image_embeddings=EMB, divergence_maps=maps)
    sel = pick("hybrid", pool, 2, score="spatial_divergence", score_params={"region": 1}, candidates=1.5)
    assert set(sel.indices.tolist()) in ({0, 2}, {1, 2})
    sel = pick("hybrid", pool, Budget(boxes=3), score="spatial_divergence", candidates=1.0)
    assert len(sel.indices) == 3  # candidates ran out: the next block joined
