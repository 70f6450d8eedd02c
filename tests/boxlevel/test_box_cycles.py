"""The box-level arm's bookkeeping over cycles, with a fake detector and no training.

Every unlabeled frame holds three objects and the detector sees them the same way every cycle:
a false positive (conf 0.55, the most uncertain box), object A shifted by 5 px (0.6), object B
with the wrong class (0.7) and object D (0.95, confident). The budget is 3 boxes per cycle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipelines.benchmark.boxes as benchmark_boxes
from core.settings import load_params
from pipelines.benchmark.boxes import run_box_strategy
from pipelines.benchmark.harness import BenchmarkConfig
from pipelines.datasets import Manifest
from pipelines.datasets.labelmap import LabelMap
from strategies.pool import ScoredPool

NAMES = ("RBC", "WBC", "Platelets")
FRAMES = [f"f{i}" for i in range(5)]
OBJECTS = [((100, 100, 200, 200), 0), ((300, 300, 340, 340), 1), ((50, 300, 90, 340), 2)]  # A, B, D
# (box, class, conf) as the detector predicts them
DETECTIONS = [
    ((500, 50, 540, 90), 0, 0.55),
    ((105, 105, 205, 205), 0, 0.6),
    ((300, 300, 340, 340), 0, 0.7),
    ((50, 300, 90, 340), 2, 0.95),
]


def manifest() -> Manifest:
    frames = pd.DataFrame(
        {
            "frame_id": FRAMES,
            "image": "x.jpg",
            "width": 640,
            "height": 480,
            "video": "",
            "frame": 0,
            "split": "train",
            "meta": "{}",
        }
    )
    boxes = pd.DataFrame(
        [
            {"frame_id": f, "x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3], "label": NAMES[c], "class_id": c}
            for f in FRAMES
            for b, c in OBJECTS
        ]
    )
    return Manifest(frames, boxes, LabelMap(NAMES))


def pool() -> ScoredPool:
    m = len(FRAMES) * len(DETECTIONS)
    probs = np.full((m, 3), 0.01, np.float32)
    for k, (_, c, conf) in enumerate(DETECTIONS * len(FRAMES)):
        probs[k, c] = conf
    return ScoredPool(
        frame_ids=np.array(FRAMES, dtype=object),
        box_offsets=np.arange(0, m + 1, len(DETECTIONS)),
        box_xyxy=np.array([d[0] for d in DETECTIONS] * len(FRAMES), np.float32),
        box_conf=probs.max(axis=1),
        box_probs=probs,
        box_embeddings=np.zeros((m, 2), np.float32),
        image_embeddings=np.zeros((len(FRAMES), 2), np.float32),
        image_sizes=np.tile(np.array([[640, 480]], np.int32), (len(FRAMES), 1)),
        class_names=NAMES,
    )


class FakeBench:
    """What run_box_strategy uses of `Benchmark`, with a cycle-0 step and a scored pool that need no model."""

    def __init__(self, out: Path) -> None:
        self.cfg = BenchmarkConfig(
            name="fake", dataset="fake", strategies={}, seeds=[0], cycles=2, initial_frames=1, budget={"boxes": 3}
        )
        self.params = {"box_level": {**load_params()["box_level"], "noisy_weight": 0.25}}
        self.out, self.root, self.weights = out, out, "base.pt"
        self.manifest = manifest()
        self.boxes_of = self.manifest.boxes.groupby("frame_id").size().to_dict()

    def step(self, seed: int, batches: list[list[str]]) -> Path:
        folder = self.out / "steps" / "shared"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "eval.json").write_text(json.dumps(evaluation(len(batches[0]))))
        return folder

    def scored_pool(self, folder: Path, seed: int = 0, labeled: tuple = ()) -> ScoredPool:
        return pool()


def evaluation(frames: int, noisy: int = 0) -> dict:
    return {
        "map50": 0.1 * frames,
        "map50_95": 0.05 * frames,
        "per_class_ap50_95": dict.fromkeys(NAMES, 0.0),
        "train_seconds": 1.0,
        "frames": frames,
        "noisy_boxes": noisy,
    }


@pytest.fixture
def trained(monkeypatch):
    """Each training the arm asks for: (train frame ids, label table)."""
    calls: list[tuple[list[str], pd.DataFrame]] = []

    def fake_train(bench, folder, seed, start, train_ids, boxes, n_noisy, normalisation="per_group"):
        calls.append((train_ids, boxes))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "eval.json").write_text(json.dumps(evaluation(len(train_ids), n_noisy)))

    monkeypatch.setattr(benchmark_boxes, "_train_and_evaluate", fake_train)
    return calls


SPEC = {"name": "box_level", "level": "box", "params": {"measure": "least_confidence"}}


def test_each_cycle_spends_the_budget_in_boxes_and_asks_about_nothing_twice(tmp_path, trained):
    bench = FakeBench(tmp_path)
    rows = pd.DataFrame(run_box_strategy(bench, 0, "box_level", SPEC))
    assert rows["boxes"].tolist() == [3, 6, 9]  # the initial frame's 3 objects, then 3 queries per cycle
    # cycle 0 asks about three of the four false positives; cycle 1 about the fourth and two shifted A boxes
    assert rows[["boxes_rejected", "boxes_corrected", "boxes_accepted"]].values.tolist() == [
        [0, 0, 0],
        [3, 0, 0],
        [4, 2, 0],
    ]
    assert rows["selected_boxes"].tolist()[:2] == [3, 3]
    assert rows["selected.RBC"].tolist()[:2] == [0, 2]  # answered classes; rejections have none


def test_every_frame_with_an_answer_trains_rejections_included(tmp_path, trained):
    # the paper's update rule: cycle 1 only rejects three false positives, and their frames train
    # (as background there, with their other predicted boxes as noisy labels)
    bench = FakeBench(tmp_path)
    rows = pd.DataFrame(run_box_strategy(bench, 0, "box_level", SPEC))
    (first_ids, first), (last_ids, last) = trained
    assert len(first_ids) == 4 and rows["frames"].tolist() == [1, 4, 5]
    assert (first["class_id"] >= 0).all() and (first["weight"] == 1.0).sum() == 3  # the initial frame's objects
    # each rejected frame: A, B and D as noisy labels (the rejected false positive is covered)
    assert (first["weight"] == 0.25).sum() == 9
    # cycle 2: two frames with a corrected A (noisy B, D) and two with only a rejection (noisy A, B, D)
    assert rows["boxes_noisy"].tolist() == [0, 9, 10]
    assert rows["boxes"].iloc[-1] == 9  # noisy boxes cost nothing


EARLIER_RULE = {**SPEC, "box": {"train_background_answers": False}}


def test_earlier_rule_frames_with_an_answered_box_train_with_their_other_boxes_as_noisy_labels(tmp_path, trained):
    bench = FakeBench(tmp_path)
    rows = pd.DataFrame(run_box_strategy(bench, 0, "box_level", EARLIER_RULE))
    (first_ids, first), (last_ids, last) = trained
    assert len(first_ids) == 1 and len(first) == 3  # only rejections so far: the initial frame alone
    assert len(last_ids) == 3 and rows["frames"].tolist() == [1, 1, 3]
    answered = last[(last["weight"] == 1.0) & last["frame_id"].isin(last_ids[1:])]
    assert answered[["x1", "y1", "x2", "y2", "class_id"]].values.tolist() == [[100, 100, 200, 200, 0]] * 2  # snapped
    noisy = last[last["weight"] < 1.0]
    # per answered frame: B and D (the rejected false positive and the answered A are covered)
    assert sorted(noisy["x1"].tolist()) == [50, 50, 300, 300]
    assert (noisy["weight"] == 0.25).all()  # params.yaml box_level.noisy_weight
    assert rows["boxes_noisy"].tolist() == [0, 0, 4]
    assert rows["boxes"].iloc[-1] == 9  # noisy boxes cost nothing


def test_box_rows_carry_every_column_of_the_image_level_rows(tmp_path, trained):
    from pipelines.benchmark.harness import Benchmark

    bench = FakeBench(tmp_path)
    rows = run_box_strategy(bench, 0, "box_level", SPEC)
    image_level = {
        "seed",
        "strategy",
        "cycle",
        "frames",
        "boxes",
        "map50",
        "map50_95",
        "train_seconds",
        *Benchmark._selection_stats(bench, ["f1", "f2"]),
    }  # type: ignore[arg-type]
    assert image_level <= set(rows[0])
    assert {"boxes_accepted", "boxes_corrected", "boxes_rejected", "boxes_noisy"} <= set(rows[0])


def test_an_interrupted_run_resumes_without_training_again(tmp_path, trained):
    bench = FakeBench(tmp_path)
    first = run_box_strategy(bench, 0, "box_level", SPEC)
    calls = len(trained)
    assert run_box_strategy(bench, 0, "box_level", SPEC) == first
    assert len(trained) == calls


def test_a_frame_level_strategy_cannot_run_as_a_box_arm(tmp_path, trained):
    with pytest.raises(ValueError, match="selects frames"):
        run_box_strategy(FakeBench(tmp_path), 0, "random", {"name": "random", "level": "box"})


def test_unknown_box_settings_are_refused(tmp_path, trained):
    with pytest.raises(ValueError, match="noisy_wieght"):
        run_box_strategy(FakeBench(tmp_path), 0, "b", {**SPEC, "box": {"noisy_wieght": 0.3}})
