"""The automatic split: deterministic, in the configured proportions, whole videos on one side."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.datasets.splits import hash_split, needs_split, unit_interval


def frames(n: int, videos: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {"frame_id": [f"d/{i:05d}" for i in range(n)], "video": videos or [""] * n, "split": ["train"] * n}
    )


def test_the_split_is_the_same_on_every_run_and_does_not_depend_on_order():
    pool = frames(500)
    first = hash_split(pool, 0.1, 0.2, seed=3)
    shuffled = pool.sample(frac=1.0, random_state=0)
    assert first.equals(hash_split(pool, 0.1, 0.2, seed=3))
    assert hash_split(shuffled, 0.1, 0.2, seed=3).sort_index().equals(first)
    assert not first.equals(hash_split(pool, 0.1, 0.2, seed=4))  # the seed chooses another split


def test_the_hash_is_not_pythons_salted_hash():
    assert unit_interval("d/00001", 0) == pytest.approx(0.98995, abs=1e-5)  # sha256-based: fixed across machines


def test_fractions_are_met_on_a_large_pool():
    counts = hash_split(frames(20_000), 0.1, 0.2).value_counts(normalize=True)
    assert counts["test"] == pytest.approx(0.2, abs=0.01) and counts["val"] == pytest.approx(0.1, abs=0.01)


def test_frames_of_one_video_stay_on_one_side():
    videos = [f"cam{i % 40}" for i in range(400)]
    split = hash_split(frames(400, videos), 0.1, 0.3)
    sides = pd.DataFrame({"video": videos, "split": split}).groupby("video")["split"].nunique()
    assert (sides == 1).all() and split.nunique() > 1


def test_only_datasets_without_a_split_get_one():
    assert needs_split(frames(3))
    assert not needs_split(frames(3).assign(split=["train", "test", "train"]))


def test_impossible_fractions_are_refused():
    with pytest.raises(ValueError, match="val \\+ test < 1"):
        hash_split(frames(3), 0.5, 0.5)
