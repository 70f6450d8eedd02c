"""Two real `dvc repro` cycles in a temporary git repo: the labeled set grows by the budget, the oracle
answers with the ground truth, cycle 1's snapshot is restorable after cycle 2, MLflow holds two
runs and two model versions. Cycle 1 is killed in the middle of `train` and rerun first: nothing may
be lost or duplicated. Small: BCCD, 1 epoch, imgsz 160."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.cycle.scratch import Repo, small_params

pytestmark = pytest.mark.slow

SEED_FRAMES, BUDGET = 8, 6


def kill_during_training(repo: Repo) -> None:
    """Start `dvc repro` and SIGKILL it (and its children) once ultralytics has started training."""
    # dvc itself is the child (no shell), so wait() reaps it: DVC's lock names its PID, and a zombie
    # would look alive to DVC's stale-lock check.
    dvc = str(Path(sys.executable).parent / "dvc")
    proc = subprocess.Popen(
        [dvc, "repro"],
        cwd=repo.path,
        env=repo.env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (repo.path / "data/train_runs").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "dvc repro ended before training started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def two_cycles(tmp_path_factory, shared):
    repo = Repo(tmp_path_factory.mktemp("project"), small_params(shared))
    repo.run("dvc repro -q import")
    repo.run("alod seed")
    kill_during_training(repo)
    assert not (repo.path / "data/model/model.pt").exists()
    repo.run("dvc repro")
    repo.commit_cycle("cycle-1")
    repo.run("dvc repro")
    repo.commit_cycle("cycle-2")
    return repo


def test_the_labeled_set_grows_by_the_budget_each_cycle(two_cycles):
    assert two_cycles.json("data/snapshot/snapshot.json")["cycle"] == 2
    assert len(two_cycles.read("data/snapshot/labeled_frames.parquet")) == SEED_FRAMES + BUDGET
    store = two_cycles.read("data/annotations/frames.parquet")
    assert store.groupby("cycle").size().to_dict() == {0: SEED_FRAMES, 1: BUDGET, 2: BUDGET}
    assert store["frame_id"].is_unique


def test_selected_frames_come_from_the_unlabeled_train_split(two_cycles):
    manifest = two_cycles.read("data/manifest/frames.parquet").set_index("frame_id")
    store = two_cycles.read("data/annotations/frames.parquet")
    assert set(manifest.loc[store["frame_id"], "split"]) == {"train"}


def test_the_oracle_answers_with_the_ground_truth(two_cycles):
    gt = two_cycles.read("data/manifest/gt_boxes.parquet")
    answers = two_cycles.read("data/annotations/boxes.parquet")
    asked = set(two_cycles.read("data/annotations/frames.parquet")["frame_id"])
    key = ["frame_id", "x1", "y1", "x2", "y2", "label"]
    want = gt[gt["frame_id"].isin(asked)][key].sort_values(key).reset_index(drop=True)
    got = answers[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


def test_cycle_1_snapshot_is_restorable_after_cycle_2(two_cycles):
    two_cycles.run("git checkout -q cycle-1 && dvc checkout -q")
    try:
        assert two_cycles.json("data/snapshot/snapshot.json")["cycle"] == 1
        frames = two_cycles.read("data/snapshot/labeled_frames.parquet")
        assert len(frames) == SEED_FRAMES and set(frames["cycle"]) == {0}
    finally:
        two_cycles.run("git checkout -q cycle-2 && dvc checkout -q")
    assert two_cycles.json("data/snapshot/snapshot.json")["cycle"] == 2


def test_mlflow_has_two_runs_with_cost_metrics_and_two_model_versions(two_cycles):
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{two_cycles.path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("bccd-uncertainty")
    runs = sorted(client.search_runs([experiment.experiment_id]), key=lambda r: r.data.tags["alod.cycle"])
    # the killed attempt's unfinished run was deleted: exactly one finished run per cycle
    assert [r.info.run_name for r in runs] == ["cycle-1", "cycle-2"]
    for run, frames in zip(runs, (SEED_FRAMES, SEED_FRAMES + BUDGET), strict=True):
        m = run.data.metrics
        for key in (
            "map50",
            "map50_95",
            "boxes_labeled",
            "cumulative_cost",
            "map50_95_per_100_frames",
            "map50_95_per_1000_boxes",
            "ap50_95.WBC",
            "selected_frames",
        ):
            assert key in m, key
        assert m["frames_labeled"] == frames
        assert run.data.params["strategy"] == "uncertainty" and run.data.params["budget.frames"] == str(BUDGET)
        assert run.info.status == "FINISHED"
    versions = client.search_model_versions("name = 'alod-bccd'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert {v.tags["alod.cycle"] for v in versions} == {"1", "2"}
    champion = client.get_model_version_by_alias("alod-bccd", "champion")
    best = max(versions, key=lambda v: float(v.tags["map50_95"]))
    assert champion.version == best.version
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "plots")}
    assert artifacts == {"plots/map_vs_boxes.png", "plots/map_vs_frames.png"}


def test_dvc_metrics_and_plots_cover_both_cycles(two_cycles):
    history = pd.read_csv(two_cycles.path / "data/history/cycles.csv")
    assert history["cycle"].tolist() == [1, 2]
    assert history["frames_labeled"].tolist() == [SEED_FRAMES, SEED_FRAMES + BUDGET]
    shown = two_cycles.run("dvc metrics show --json").stdout
    assert "map50_95" in shown


def test_a_tracking_server_that_is_down_fails_before_training(tmp_path, shared):
    repo = Repo(tmp_path, small_params(shared))
    repo.run("dvc repro -q import && alod seed && alod export")
    repo.env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9"  # discard port: nothing listens
    result = repo.run("alod train", check=False)
    assert result.returncode == 1
    assert "MLflow tracking server http://127.0.0.1:9 is not reachable" in result.stderr
    assert not (tmp_path / "data/train_runs").exists()
