"""The box mode's stages (export, select, push) exchanging boxes over two cycles, in process, with the
fake detector of `test_box_cycles` (no model, no training): every unlabeled frame holds a false positive
(conf 0.55), object A shifted by 5 px (0.6), object B with the wrong class (0.7) and D (0.95); budget
3 boxes. The answers and noisy labels are those the benchmark's box arm gets on the same world."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest

from core.settings import load_params
from pipelines.boxlevel import cycle_mode
from pipelines.cycle.layout import CycleLayout
from pipelines.cycle.oracle import AnnotationStore, oracle_answer
from pipelines.stages import export, push, select
from tests.boxlevel.test_box_cycles import manifest, pool
from tests.conftest import settings_file

NOISY_WEIGHT = 0.25


@pytest.fixture
def project(tmp_path, monkeypatch):
    params = {
        "dataset": {"name": "fake", "manifest_dir": "data/manifest"},
        "datasets": {"fake": {}},
        "cycle": {"source": "simulation", "dir": "data"},
        "score": {"out_dir": "data/scores"},
        "strategy": {"name": "box_level", "params": {"measure": "least_confidence"}},
        "budget": {"frames": None, "boxes": 3, "box_conf_threshold": 0.25},
        "box_level": {"noisy_weight": NOISY_WEIGHT, "train_background_answers": False},
        "seed": 0,  # earlier rule
    }
    sections = {k: v for k, v in params.items() if k != "seed"}
    settings_file(tmp_path / "params.yaml", **sections)  # the repository's settings with these merged in
    monkeypatch.setenv("ALOD_PARAMS", str(tmp_path / "params.yaml"))
    params = load_params(tmp_path / "params.yaml")
    monkeypatch.setattr(select, "read_scored_pool", lambda _: pool())  # the detector sees the same boxes each cycle
    layout = CycleLayout.from_params(params)
    world = manifest()
    world.save(layout.manifest)
    AnnotationStore(layout.annotations).add(oracle_answer(world, ["f0"], cycle=0))  # `alod seed`: f0 fully labeled
    return layout, params


def run_cycle() -> None:
    for stage in (export, select, push):
        assert stage.run(argparse.Namespace()) == 0


def test_two_cycles_ask_about_the_uncertain_boxes_and_never_twice(project):
    layout, _ = project
    run_cycle()
    first = pd.read_parquet(layout.selection / "queries.parquet")
    assert first["conf"].tolist() == pytest.approx([0.55] * 3)  # three of the four false positives
    run_cycle()
    answers = cycle_mode.simulation_answers(layout)
    assert answers.groupby("cycle")["outcome"].value_counts().to_dict() == {
        (1, "rejected"): 3,
        (2, "rejected"): 1,
        (2, "corrected"): 2,
    }  # the 4th false positive, two A boxes
    corrected = answers[answers["outcome"] == "corrected"]
    assert corrected[["x1", "y1", "x2", "y2", "class_id"]].values.tolist() == [[100, 100, 200, 200, 0]] * 2
    assert "f0" not in set(answers["frame_id"])  # the fully labeled frame is never asked about
    second = answers[answers["cycle"] == 2]
    rejected_again = second[(second["outcome"] == "rejected") & second["frame_id"].isin(set(first["frame_id"]))]
    assert rejected_again.empty  # a false positive rejected in cycle 1 is not asked about in cycle 2


def test_the_third_snapshot_trains_answers_and_noisy_boxes_and_counts_boxes_touched(project):
    layout, params = project
    run_cycle()
    run_cycle()
    assert export.run(argparse.Namespace()) == 0
    summary = json.loads((layout.snapshot / "snapshot.json").read_text())
    assert summary["cycle"] == 3 and summary["frames"] == 1 and summary["boxes"] == 3  # f0 and its 3 objects
    assert (summary["boxes_queried"], summary["boxes_rejected"], summary["boxes_corrected"]) == (6, 4, 2)
    frames, boxes = cycle_mode.training_table(layout, params)
    answered = set(cycle_mode.snapshot_answers(layout).query("outcome == 'corrected'")["frame_id"])
    assert frames[0] == "f0" and set(frames[1:]) == answered and len(frames) == 3
    noisy = boxes[boxes["weight"] < 1]
    # per answered frame: B and D; its A is covered by the answer, its false positive by a rejection
    assert sorted(noisy["x1"].tolist()) == [50, 50, 300, 300]
    assert (noisy["weight"] == NOISY_WEIGHT).all() and summary["boxes_noisy"] == 4
    record = cycle_mode.train_record(summary, len(frames), boxes)
    assert record["boxes"] == 3 + 6  # f0's objects + one per query; noisy boxes cost nothing
