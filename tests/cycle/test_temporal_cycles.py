"""Temporal rules through two real `dvc repro` cycles on pedestrian video: no two picks of a cycle
within dt1 frames of each other, and no frame within dt2 of an earlier cycle's pick picked later."""

from __future__ import annotations

import pytest

from tests.cycle.scratch import Repo, small_params

pytestmark = pytest.mark.slow

DT1, DT2 = 3, 2


@pytest.fixture(scope="module")
def video_cycles(tmp_path_factory, shared):
    params = small_params(shared, seed_frames=6, budget=6)
    params["dataset"]["name"] = "pedestrians"
    params["datasets"] = {
        "pedestrians": {
            "format": "multi",
            "labels": ["pedestrian"],
            "sources": [
                {"format": "mot", "root": str(shared / "data/mot/TUD-Campus"), "split": "train"},
                {"format": "mot", "root": str(shared / "data/mot/PETS09-S3MF1"), "split": "test"},
            ],
        }
    }
    params["strategy"] = {
        "name": "uncertainty",
        "params": {"measure": "entropy", "aggregation": "sum", "temporal": {"smoothing": None, "dt1": DT1, "dt2": DT2}},
    }
    repo = Repo(tmp_path_factory.mktemp("video"), params)
    repo.run("dvc repro -q import && alod seed && dvc repro && dvc repro")
    return repo


def test_picks_of_one_cycle_are_more_than_dt1_frames_apart(video_cycles):
    store = video_cycles.read("data/annotations/frames.parquet")
    frames = video_cycles.read("data/manifest/frames.parquet").set_index("frame_id")
    for cycle in (1, 2):
        picked = frames.loc[store.loc[store["cycle"] == cycle, "frame_id"]]
        assert len(picked) == 6
        numbers = sorted(picked["frame"])
        assert min(b - a for a, b in zip(numbers, numbers[1:], strict=False)) > DT1, numbers


def test_a_frame_blocked_in_cycle_1_is_never_selected_in_cycle_2(video_cycles):
    blocked = set(video_cycles.json("data/selection/blocked.json")["1"])
    store = video_cycles.read("data/annotations/frames.parquet")
    cycle1 = store.loc[store["cycle"] == 1, "frame_id"]
    cycle2 = set(store.loc[store["cycle"] == 2, "frame_id"])
    assert blocked and not (blocked & cycle2)
    frames = video_cycles.read("data/manifest/frames.parquet").set_index("frame_id")
    # every frame within dt2 of a cycle-1 pick is blocked, and no cycle-2 pick is that close
    for pick in cycle1:
        n = frames.loc[pick, "frame"]
        near = {f"pedestrians/TUD-Campus/{m:06d}" for m in range(n - DT2, n + DT2 + 1) if m != n and 1 <= m <= 71}
        assert near <= blocked | set(store["frame_id"])
        assert all(abs(frames.loc[p, "frame"] - n) > DT2 for p in cycle2)


def test_the_summary_reports_no_picks_within_dt1_of_each_other(video_cycles):
    assert video_cycles.json("data/selection/selection.json")["close_pairs"] == 0
    assert video_cycles.json("data/selection/selection.json")["close_window"] == DT1
    out = video_cycles.run("alod summary").stdout
    assert f"0 pairs of frames within {DT1} frames of each other" in out
