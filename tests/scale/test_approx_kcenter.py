"""Greedy k-center in certified rounds: the exact greedy's picks at eps = 0, a bounded departure above."""

from __future__ import annotations

import numpy as np
import pytest

from strategies import Budget, CycleState
from strategies.approx_kcenter import BatchedKCenter, certified_cover
from strategies.budget import Picker
from strategies.diversity import KCenter, greedy_cover
from strategies.testing import make_pool, pick, random_pool


def clustered(n: int, d: int = 16, clusters: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (clusters, d))
    return (centres[rng.integers(0, clusters, n)] + rng.normal(0, 1, (n, d))).astype(np.float32)


def run_exact(x: np.ndarray, picks: int, seeds: np.ndarray, rng_seed: int = 0) -> tuple[list[int], list[float]]:
    n = len(x)
    picker = Picker(make_pool([[]] * n, image_embeddings=x), Budget(frames=picks), np.ones(n, bool))
    kc = KCenter(x)
    if len(seeds):
        kc.add_rows(seeds)
    greedy_cover(kc, picker, np.arange(n), lambda f: np.array([f]), np.random.default_rng(rng_seed))
    return picker.picked, picker.values


def run_rounds(
    x: np.ndarray, picks: int, seeds: np.ndarray, eps: float = 0.0, candidates: int = 64, rng_seed: int = 0
) -> tuple[list[int], list[float], dict[str, int], BatchedKCenter]:
    n = len(x)
    picker = Picker(make_pool([[]] * n, image_embeddings=x), Budget(frames=picks), np.ones(n, bool))
    kc = BatchedKCenter(x)
    if len(seeds):
        kc.add_rows(seeds)
    rng = np.random.default_rng(rng_seed)
    counts = certified_cover(kc, picker, np.arange(n), lambda f: np.array([f]), rng, eps=eps, candidates=candidates)
    return picker.picked, picker.values, counts, kc


@pytest.mark.parametrize("seeded", [False, True])
def test_certified_rounds_make_the_exact_greedy_picks(seeded):
    x = clustered(3000)
    seeds = np.arange(0, 3000, 500) if seeded else np.array([], np.int64)
    exact, exact_values = run_exact(x, 120, seeds)
    got, values, counts, kc = run_rounds(x, 120, seeds, candidates=64)  # small candidate sets: many rounds
    assert got == exact
    assert values == pytest.approx(exact_values, rel=1e-4, nan_ok=True)
    assert counts == {"picks": 120, "relaxed_picks": 0}
    assert 3 < kc.rounds < 120  # several picks per full pass


def test_ties_wider_than_the_candidate_set_are_broken_as_the_exact_greedy_does():
    points = np.random.default_rng(9).integers(-5, 6, (6, 4)).astype(np.float32)  # exact float32 arithmetic
    x = np.repeat(points, 500, axis=0)  # 6 distinct points, each 500 times
    exact, _ = run_exact(x, 20, np.array([], np.int64))
    got, _, counts, _ = run_rounds(x, 20, np.array([], np.int64), candidates=64)
    assert got == exact and counts["picks"] == 20  # after 6 picks every distance is 0: a 2,994-way tie


def test_flush_distances_are_the_brute_force_nearest_center_distances():
    x = clustered(2000, seed=3)
    _, _, _, kc = run_rounds(x, 80, np.array([], np.int64))
    centers = kc.centers
    brute2 = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1).min(axis=1)
    # float32 |x|^2 - 2 x.c + |c|^2: rounding relative to |x|^2, as in the exact version
    np.testing.assert_allclose(kc.mind2, brute2, rtol=1e-4, atol=1e-5 * float(kc.sq.max()))


def test_a_flush_computes_only_the_points_its_centers_can_reach():
    rng = np.random.default_rng(4)
    near, far = rng.normal(0, 1, (100, 8)), rng.normal(100, 1, (2000, 8))
    kc = BatchedKCenter(np.concatenate([near, far]))
    kc.add_rows([0, 100])  # one center in each group
    kc.flush()
    before = kc.rows_computed
    kc.add_rows([1, 2])  # two more in the small group: the far points are 2 x their distance away
    kc.flush()
    assert 0 < kc.rows_computed - before <= 100 * 2  # the 2,000 far points were skipped
    brute2 = ((kc.x[:, None, :] - kc.centers[None]) ** 2).sum(-1).min(axis=1)
    np.testing.assert_allclose(kc.mind2, brute2, rtol=1e-4, atol=1e-5 * float(kc.sq.max()))


def test_a_relaxed_pick_is_within_eps_of_the_farthest_point():
    eps = 0.1
    x = np.random.default_rng(5).normal(0, 1, (1500, 12)).astype(np.float32)  # no structure: many near ties
    got, values, counts, _ = run_rounds(x, 60, np.array([], np.int64), eps=eps, candidates=32)
    assert counts["relaxed_picks"] > 0  # the relaxation was used
    for t in range(1, len(got)):
        centers = x[got[:t]]
        alive = np.ones(len(x), bool)
        alive[got[:t]] = False
        farthest = np.sqrt(((x[alive, None, :] - centers[None]) ** 2).sum(-1).min(axis=1)).max()
        assert values[t] >= (1 - eps) * farthest - 1e-4


def radius(x: np.ndarray, picks: list[int]) -> float:
    return float(np.sqrt(((x[:, None, :] - x[picks][None]) ** 2).sum(-1).min(axis=1)).max())


def test_the_relaxed_cover_stays_within_gonzalez_bound_of_the_exact_one():
    eps = 0.2
    x = clustered(2000, clusters=60, seed=7)
    exact, _ = run_exact(x, 40, np.array([], np.int64))
    relaxed, _, _, _ = run_rounds(x, 40, np.array([], np.int64), eps=eps, candidates=32)
    # greedy radius >= optimal radius, and the relaxed greedy's is <= 2 / (1 - eps) x optimal
    assert radius(x, relaxed) <= 2 / (1 - eps) * radius(x, exact) + 1e-4


def test_strategies_switch_to_certified_rounds_at_the_threshold_with_the_same_selection():
    rng = np.random.default_rng(11)
    pool = random_pool(rng, 400, max_boxes=5, box_embedding_dim=8, embedding_dim=8)
    state = CycleState(labeled=frozenset({"f3", "f17"}))
    for name in ("coreset", "object_diversity"):
        for budget in (Budget(frames=25), Budget(boxes=40), Budget(cost=60.0, box_cost=0.5)):
            exact = pick(name, pool, budget, state, approx_above=None)
            rounds = pick(name, pool, budget, state, approx_above=1)
            assert rounds.indices.tolist() == exact.indices.tolist(), (name, budget)
            np.testing.assert_allclose(rounds.values, exact.values, rtol=1e-4)


def test_temporal_rule_dt1_is_kept_in_certified_rounds():
    rng = np.random.default_rng(12)
    pool = random_pool(rng, 300, box_embedding_dim=6)
    temporal = {"dt1": 3}
    exact = pick("object_diversity", pool, 20, approx_above=None, temporal=temporal)
    rounds = pick("object_diversity", pool, 20, approx_above=1, temporal=temporal)
    assert rounds.indices.tolist() == exact.indices.tolist()


def test_below_the_threshold_the_exact_version_runs(monkeypatch):
    import strategies.diversity as diversity

    def fail(*args, **kwargs):
        raise AssertionError("certified rounds ran below the threshold")

    monkeypatch.setattr(diversity, "certified_cover", fail)
    pool = make_pool([[]] * 50, image_embeddings=clustered(50, d=4))
    assert len(pick("coreset", pool, 5, approx_above=51).indices) == 5
    with pytest.raises(AssertionError, match="certified rounds ran"):
        pick("coreset", pool, 5, approx_above=50)
