"""The initial labeled set: random, or class-balanced (the uncertainty-aggregation paper's)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.cycle.oracle import initial_frames
from pipelines.datasets.manifest import Manifest


def manifest(classes_per_frame: list[list[int]]) -> Manifest:
    frames = pd.DataFrame(
        {
            "frame_id": [f"f{i}" for i in range(len(classes_per_frame))],
            "image": "x.jpg",
            "width": 100,
            "height": 100,
            "video": "",
            "frame": 0,
            "split": "train",
            "meta": "{}",
        }
    )
    boxes = pd.DataFrame(
        [
            {"frame_id": f"f{i}", "x1": 0.0, "y1": 0.0, "x2": 9.0, "y2": 9.0, "label": f"c{c}", "class_id": c}
            for i, cs in enumerate(classes_per_frame)
            for c in cs
        ]
    )
    return Manifest(frames, boxes, labels=None)  # type: ignore[arg-type]


# 12 frames of the common class 0, 2 frames of the rare class 1, 2 frames without boxes
POOL = manifest([[0]] * 12 + [[1], [1, 0]] + [[]] * 2)


def test_class_balanced_takes_the_rare_class_first_whenever_it_is_behind():
    for seed in range(10):
        picked = initial_frames(POOL, 4, seed, selection="class_balanced")
        assert len(picked) == 4 == len(set(picked))
        assert {"f12", "f13"} <= set(picked)  # both frames of the rare class: it is always the one behind


def test_class_balanced_fills_up_randomly_when_the_classes_run_out():
    picked = initial_frames(POOL, 16, 0, selection="class_balanced")
    assert sorted(picked) == sorted(f"f{i}" for i in range(16))


def test_random_stays_the_default_and_an_unknown_selection_is_refused():
    assert initial_frames(POOL, 4, 3) == initial_frames(POOL, 4, 3, selection="random")
    rare = [sum(f in ("f12", "f13") for f in initial_frames(POOL, 2, s)) for s in range(20)]
    assert min(rare) == 0  # random often misses the rare class at this size
    with pytest.raises(ValueError, match="initial selection"):
        initial_frames(POOL, 4, 0, selection="stratified")
