"""random and balanced_video: the baselines."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import CycleState
from strategies.testing import make_pool, pick


def test_random_is_seeded():
    pool = make_pool([[]] * 50)
    a, b, c = (pick("random", pool, 10, seed=s).indices.tolist() for s in (1, 1, 2))
    assert a == b and a != c and len(set(a)) == 10


def video_pool(sizes: dict[str, int], metadata: dict | None = None):
    videos = [v for v, k in sizes.items() for _ in range(k)]
    frames = [i for k in sizes.values() for i in range(k)]
    return make_pool([[]] * len(videos), videos=videos, frame_index=frames, metadata=metadata)


def counts(pool, sel) -> dict[str, int]:
    out = dict.fromkeys(pool.video_ids(), 0)
    for v in pool.video_ids()[sel.indices]:
        out[v] += 1
    return out


def test_balanced_video_spreads_the_budget_evenly():
    pool = video_pool({"a": 10, "b": 7, "c": 3})
    assert counts(pool, pick("balanced_video", pool, 9)) == {"a": 3, "b": 3, "c": 3}
    got = counts(pool, pick("balanced_video", pool, 14))
    assert got["c"] == 3 and sorted([got["a"], got["b"]]) == [5, 6]  # c runs out after 3 rounds


def test_balanced_video_counts_only_selectable_frames():
    pool = video_pool({"a": 4, "b": 4})
    state = CycleState(labeled=frozenset({"f0", "f1", "f2"}))  # three of a's frames
    got = counts(pool, pick("balanced_video", pool, 4, state))
    assert got == {"a": 1, "b": 3}


def test_balanced_over_a_metadata_key():
    scenes = np.array(["day"] * 8 + ["night"] * 2)
    pool = video_pool({"a": 5, "b": 5}, metadata={"scene": scenes})
    sel = pick("balanced_video", pool, 4, key="scene")
    assert sorted(scenes[sel.indices].tolist()) == ["day", "day", "night", "night"]


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    budget=st.integers(0, 30),
    seed=st.integers(0, 100),
)
def test_balanced_video_differs_by_at_most_one_between_videos_with_frames_left(sizes, budget, seed):
    pool = video_pool({f"v{i}": k for i, k in enumerate(sizes)})
    got = counts(pool, pick("balanced_video", pool, budget, seed=seed))
    size = dict(zip(got, sizes, strict=True))
    assert sum(got.values()) == min(budget, sum(sizes))
    for a in got:
        for b in got:
            if got[a] > got[b] + 1:
                assert got[b] == size[b]  # only a video that ran out can fall behind
