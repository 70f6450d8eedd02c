"""Greedy k-center: coreset on image embeddings, object diversity on box embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import Budget, CycleState
from strategies.diversity import KCenter
from strategies.testing import make_pool, pick

CENTRES = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], np.float32)


def clustered(per_cluster: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c + rng.normal(0, 0.1, (per_cluster, 2)) for c in CENTRES]).astype(np.float32)


def test_coreset_covers_every_cluster_before_repeating_one():
    emb = clustered()
    pool = make_pool([[]] * len(emb), image_embeddings=emb)
    for seed in range(5):
        sel = pick("coreset", pool, 4, seed=seed)
        assert sorted(sel.indices // 5) == [0, 1, 2, 3]
        assert np.all(np.diff(sel.values) <= 1e-6)  # farthest-first: distances never grow


def test_coreset_is_seeded_with_the_labeled_frames():
    emb = clustered()
    pool = make_pool([[]] * len(emb), image_embeddings=emb)
    state = CycleState(labeled=frozenset({"f0", "f5"}))  # clusters 0 and 1 are labeled
    sel = pick("coreset", pool, 2, state)
    assert sorted(sel.indices // 5) == [2, 3]
    assert sel.values.min() > 5  # both far from every labeled frame


def test_cosine_metric_ignores_the_norm():
    emb = np.array([[1, 0], [100, 0], [0, 1], [0, 50]], np.float32)
    pool = make_pool([[]] * 4, image_embeddings=emb)
    state = CycleState(labeled=frozenset({"f0"}))
    assert pick("coreset", pool, 1, state, metric="cosine").indices[0] in (2, 3)
    assert pick("coreset", pool, 1, state).indices.tolist() == [1]


@pytest.mark.parametrize("spread", ["clustered", "isotropic"])
def test_triangle_pruning_gives_the_same_picks_as_the_plain_pass(spread):
    rng = np.random.default_rng(1)
    if spread == "clustered":
        x = rng.normal(0, 10, (30, 16))[rng.integers(0, 30, 3000)] + rng.normal(0, 1, (3000, 16))
    else:
        x = rng.normal(0, 1, (3000, 16))
    fast, slow = KCenter(x, prune=True), KCenter(x, prune=False)
    alive = np.ones(len(x), bool)
    for kc in (fast, slow):
        kc.add_rows([0], alive)
    for _ in range(150):
        i, _ = fast.farthest(alive)
        j, _ = slow.farthest(alive)
        assert i == j
        alive[i] = False
        fast.add_rows([i], alive)
        slow.add_rows([i], alive)
    assert np.allclose(fast.mind[alive], slow.mind[alive], rtol=1e-5, atol=1e-5)


def test_batch_seeding_matches_one_at_a_time():
    x = np.random.default_rng(2).normal(0, 1, (500, 8))
    one, batch = KCenter(x), KCenter(x)
    for r in range(100):
        one.add_rows([r])
    batch.add_rows(np.arange(100))
    # float32 |x|^2 - 2x.c + |c|^2 leaves ~1e-3 of rounding on a point's distance to itself
    assert np.allclose(one.mind, batch.mind, atol=5e-3)
    assert (one.mind[:100] < 5e-3).all()


def object_pool() -> tuple:
    """Labeled L: an object at (0,0); F1 repeats it; F2 adds (10,0) and (0,12); F3 repeats (10,0); F4 adds (-6,0)."""
    boxes = [[(0, 0)], [(0.1, 0)], [(10, 0), (0, 12)], [(10, 0.2)], [(-6, 0)]]
    probs = [[[0.9]] * len(b) for b in boxes]
    emb = [[list(e) for e in b] for b in boxes]
    return make_pool(probs, box_embeddings=emb), CycleState(labeled=frozenset({"f0"}))


def test_object_diversity_picks_frames_for_the_objects_they_add():
    pool, state = object_pool()
    sel = pick("object_diversity", pool, 3, state)
    assert sel.indices.tolist() == [2, 4, 3]  # F3 only repeats F2's object: after F4's new one
    assert sel.values.tolist() == pytest.approx([12.0, 6.0, 0.2], abs=1e-4)


def test_object_diversity_budget_in_boxes():
    pool, state = object_pool()
    assert pick("object_diversity", pool, Budget(boxes=2), state).indices.tolist() == [2]
    assert pick("object_diversity", pool, Budget(boxes=3), state).indices.tolist() == [2, 4]
    # F2 (2 boxes) does not fit one box: the fill skips it, and F3's object is then the farthest.
    assert pick("object_diversity", pool, Budget(boxes=1), state).indices.tolist() == [3]


def test_object_diversity_never_picks_frames_without_objects():
    pool = make_pool([[], [[0.9]], [[0.1]], []], box_embeddings=[[], [[1.0, 0.0]], [[5.0, 0.0]], []])
    sel = pick("object_diversity", pool, 4)
    assert sel.indices.tolist() == [1]  # frame 2's box is below box_conf_threshold=0.25
    assert pick("object_diversity", pool, 4, min_conf=0.05).indices.tolist() in ([1, 2], [2, 1])
