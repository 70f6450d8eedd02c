"""Temporal rules around any strategy: Gaussian smoothing within a video, dt1 in a cycle, dt2 later."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import Budget, CycleState
from strategies.temporal import TemporalIndex
from strategies.testing import make_pool, pick


def video_pool(frames: list[int], videos: list[str] | None = None, scores: list[float] | None = None):
    """One box per frame whose least-confidence uncertainty equals the given score."""
    scores = scores if scores is not None else list(np.linspace(0.5, 0.0, len(frames), endpoint=False))
    probs = [[[1.0 - s]] if s <= 0.5 else [[s]] for s in scores]
    return make_pool(probs, videos=videos or ["v"] * len(frames), frame_index=frames)


def test_gaussian_smoothing_by_hand():
    pool = video_pool([0, 1, 2, 3, 4])
    w = np.exp(-0.5)
    smoothed = TemporalIndex(pool).smooth(np.array([0, 0, 10.0, 0, 0]), window=3, sigma=1.0)
    assert smoothed == pytest.approx([0, 10 * w / (1 + 2 * w), 10 / (1 + 2 * w), 10 * w / (1 + 2 * w), 0])


def test_smoothing_measures_distance_in_frame_numbers_and_keeps_constants():
    pool = video_pool([0, 10, 11, 12], videos=["v", "v", "v", ""])
    index = TemporalIndex(pool)
    out = index.smooth(np.array([5.0, 1.0, 3.0, 9.0]), window=3, sigma=1.0)
    assert out[0] == 5.0  # frame 0 has no frame within +-1
    w = np.exp(-0.5)  # frames 10 and 11 are each other's only neighbours
    assert out[1:3] == pytest.approx([(1 + 3 * w) / (1 + w), (3 + 1 * w) / (1 + w)])
    assert out[3] == 9.0  # a still image has no neighbours
    assert np.allclose(index.smooth(np.full(4, 2.5), window=7, sigma=3.0), 2.5)
    nan = index.smooth(np.array([np.nan, 1.0, 3.0, 9.0]), window=21, sigma=1.0)
    assert np.isnan(nan[0]) and nan[1] == pytest.approx(out[1])  # frame 0 drops out of the means


def test_smoothing_prefers_a_consistently_uncertain_stretch_over_a_single_spike():
    scores = [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.4, 0.4, 0.4, 0.0]
    pool = video_pool(list(range(10)), scores=scores)
    assert pick("uncertainty", pool, 1, measure="least_confidence").indices.tolist() == [2]
    smooth = {"smoothing": {"window": 5, "sigma": 1.0}}
    assert pick("uncertainty", pool, 1, measure="least_confidence", temporal=smooth).indices.tolist() == [7]


def test_dt1_spaces_the_picks_of_one_video():
    pool = video_pool(list(range(10)))  # scores fall with the frame number
    sel = pick("uncertainty", pool, 4, measure="least_confidence", temporal={"dt1": 2})
    assert sel.indices.tolist() == [0, 3, 6, 9]
    other = video_pool(list(range(4)) * 2, videos=["a"] * 4 + ["b"] * 4)
    sel = pick("uncertainty", other, 4, measure="least_confidence", temporal={"dt1": 5})
    assert sorted(sel.indices.tolist()) == [0, 4]  # one per video, videos do not block each other


def test_still_images_ignore_temporal_rules():
    pool = make_pool([[[0.5]]] * 3)
    sel = pick("uncertainty", pool, 3, temporal={"dt1": 100, "dt2": 100, "smoothing": {"window": 9, "sigma": 2.0}})
    assert len(sel.indices) == 3 and sel.blocked == frozenset()


def test_dt2_blocks_the_neighbours_in_later_cycles():
    pool = video_pool(list(range(10)))
    state = CycleState()
    sel = pick("uncertainty", pool, 1, state, measure="least_confidence", temporal={"dt2": 3})
    assert sel.indices.tolist() == [0] and sel.blocked == {"f1", "f2", "f3"}
    state = state.advance(pool, sel)
    assert state.cycle == 1 and state.labeled == {"f0"} and state.blocked == {"f1", "f2", "f3"}
    sel = pick("uncertainty", pool, 1, state, measure="least_confidence", temporal={"dt2": 3})
    assert sel.indices.tolist() == [4]
    assert state.advance(pool, sel).blocked == {"f1", "f2", "f3", "f5", "f6", "f7"}


@st.composite
def video_case(draw):
    n = draw(st.integers(0, 25))
    videos = draw(st.lists(st.sampled_from(["a", "b", ""]), min_size=n, max_size=n))
    frames = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n, unique=True))
    scores = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
    return video_pool(frames, videos, scores)


@settings(max_examples=40, deadline=None)
@given(
    pool=video_case(),
    name=st.sampled_from(["uncertainty", "random", "coreset", "balanced_video", "hybrid"]),
    dt1=st.integers(0, 6),
    dt2=st.integers(0, 6),
    budget=st.integers(0, 12),
    seed=st.integers(0, 3),
)
def test_no_two_picks_within_dt1_in_a_cycle_and_no_blocked_frame_later(pool, name, dt1, dt2, budget, seed):
    state = CycleState()
    seen_blocked: set[str] = set()
    for _ in range(3):
        sel = pick(name, pool, Budget(frames=budget), state, seed=seed, temporal={"dt1": dt1, "dt2": dt2})
        ids = set(sel.frame_ids(pool))
        assert not ids & seen_blocked and not ids & state.labeled
        for a in sel.indices:
            for b in sel.indices:
                if a != b and pool.videos[a] != "" and pool.videos[a] == pool.videos[b]:
                    assert abs(int(pool.frame_index[a]) - int(pool.frame_index[b])) > dt1
        for f in sel.blocked:
            i = int(f[1:])
            assert any(
                pool.videos[i] == pool.videos[j] and abs(int(pool.frame_index[i] - pool.frame_index[j])) <= dt2
                for j in sel.indices
            )
        state = state.advance(pool, sel)
        seen_blocked |= state.blocked


def test_guided_random_is_random_under_the_temporal_rules():
    # the video paper's "guided random" baseline: random frames, never two within +-dt1 in a cycle,
    # none within +-dt2 of an earlier cycle's pick
    pool = video_pool(list(range(60)))
    rules = {"dt1": 15, "dt2": 3}
    picks = [pick("random", pool, 10, seed=s, temporal=rules) for s in range(20)]
    for sel in picks:
        frames = np.sort(pool.frame_index[sel.indices])
        assert len(frames) >= 2 and (np.diff(frames) > 15).all()
    assert len({tuple(sel.indices.tolist()) for sel in picks}) > 10  # still random
    earlier = picks[0]
    later = pick(
        "random",
        pool,
        60,
        CycleState(cycle=1, labeled=frozenset(earlier.frame_ids(pool)), blocked=earlier.blocked),
        seed=1,
    )
    near = {i + d for i in earlier.indices.tolist() for d in range(-3, 4)}
    assert not near & set(later.indices.tolist())
    plain = [pick("random", pool, 10, seed=s) for s in range(20)]
    assert any((np.diff(np.sort(sel.indices)) <= 15).any() for sel in plain)  # plain random does not space them
