"""The benchmark harness in miniature (benchmarks/configs/smoke.yaml): 1 seed, 2 cycles, a few images."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from core.settings import REPO_ROOT
from pipelines.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
    args = [
        "benchmark",
        "--config",
        str(REPO_ROOT / "benchmarks/configs/smoke.yaml"),
        "--set",
        f"out_dir={out / 'runs'}",
        "--set",
        f"report_dir={out / 'report'}",
    ]
    assert main(args) == 0
    yield out, args
    mp.undo()


def test_every_strategy_starts_from_the_same_initial_set_and_grows_by_the_budget(smoke):
    out, _ = smoke
    results = pd.read_csv(out / "report/results.csv")
    assert sorted(results["strategy"].unique()) == ["random", "uncertainty"]
    assert results.groupby("strategy")["frames"].apply(list).to_dict() == {
        "random": [4, 6, 8],
        "uncertainty": [4, 6, 8],
    }
    first = results[results["cycle"] == 0]
    assert first["map50_95"].nunique() == 1 and first["boxes"].nunique() == 1  # one shared model at cycle 0


def test_the_shared_first_cycle_is_trained_once(smoke):
    out, _ = smoke
    # cycle 0 shared + 2 strategies x 2 cycles
    assert len(list((out / "runs/smoke/steps").iterdir())) == 5


def test_the_report_has_the_table_plots_and_savings(smoke):
    out, _ = smoke
    report = (out / "report/report.md").read_text()
    assert "| random | 2 |" in report and "boxes saved [95 % CI]" in report and "| uncertainty | 1 |" in report
    assert "Wall time" in report and "invocation(s) on" in report
    for name in ("map_vs_boxes.png", "map_vs_frames.png", "selections.png", "summary.csv", "config.yaml", "run.json"):
        assert (out / "report" / name).stat().st_size > 0


def test_mlflow_has_a_parent_run_with_one_child_per_strategy_and_seed(smoke):
    from mlflow import MlflowClient

    out, _ = smoke
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("benchmark-bccd")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and sorted(r.info.run_name for r in children) == ["random-seed0", "uncertainty-seed0"]
    history = client.get_metric_history(children[0].info.run_id, "map50_95")
    assert [m.step for m in history] == [0, 1, 2]


def test_a_rerun_resumes_without_training_again(smoke):
    out, args = smoke
    before = {p.name: (p / "eval.json").stat().st_mtime_ns for p in (out / "runs/smoke/steps").iterdir()}
    assert main(args) == 0
    after = {p.name: (p / "eval.json").stat().st_mtime_ns for p in (out / "runs/smoke/steps").iterdir()}
    assert before == after
    assert len(pd.read_csv(out / "report/results.csv")) == 6


def test_more_cycles_later_extend_the_recorded_run_without_training_its_steps_again(smoke):
    out, args = smoke
    steps = out / "runs/smoke/steps"
    before = {p.name: (p / "eval.json").stat().st_mtime_ns for p in steps.iterdir()}
    assert main([*args, "--set", "cycles=3"]) == 0
    after = {p.name: (p / "eval.json").stat().st_mtime_ns for p in steps.iterdir()}
    assert len(after) == len(before) + 2 and {k: after[k] for k in before} == before
    results = pd.read_csv(out / "report/results.csv")
    frames = results.groupby("strategy")["frames"].apply(list).to_dict()
    assert frames == {"random": [4, 6, 8, 10], "uncertainty": [4, 6, 8, 10]}
    assert results.loc[results["cycle"] == 2, "selected_frames"].tolist() == [2, 2]


def test_a_killed_run_resumes_from_its_finished_steps(tmp_path):
    """SIGKILL mid-run (no chance to clean up), then run again: finished steps are kept, not retrained."""
    runs, report = tmp_path / "runs", tmp_path / "report"
    config = str(REPO_ROOT / "benchmarks/configs/smoke.yaml")
    args = ["benchmark", "--config", config, "--set", f"out_dir={runs}", "--set", f"report_dir={report}"]
    args += ["--set", "log_mlflow=false"]
    steps = runs / "smoke" / "steps"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "pipelines.cli", *args]
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(list(steps.glob("*/eval.json"))) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert child.poll() is None, "the run ended before it could be interrupted"
    child.send_signal(signal.SIGKILL)
    child.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in steps.glob("*/eval.json")}
    assert 2 <= len(finished) < 5 and not (report / "results.csv").exists()

    assert main(args) == 0
    after = {p.parent.name: p.stat().st_mtime_ns for p in steps.glob("*/eval.json")}
    assert len(after) == 5  # cycle 0 shared by both arms + 2 arms x 2 cycles
    assert {k: after[k] for k in finished} == finished  # nothing finished before the kill was redone
    results = pd.read_csv(report / "results.csv")
    frames = results.groupby("strategy")["frames"].apply(list).to_dict()
    assert frames == {"random": [4, 6, 8], "uncertainty": [4, 6, 8]}
