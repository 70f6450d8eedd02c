"""The single-flight training runner, with real child processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from backend.training import AnnotationCounter, TrainingRunner


def command(marker: Path, seconds: float, code: int = 0) -> list[str]:
    script = (
        f"import pathlib, sys, time; p = pathlib.Path({str(marker)!r}); "
        f"p.open('a').write('run\\n'); time.sleep({seconds}); sys.exit({code})"
    )
    return [sys.executable, "-c", script]


def wait_until_idle(runner: TrainingRunner, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while runner.is_running() or runner.state().get("status") == "started":
        assert time.monotonic() < deadline, runner.state()
        time.sleep(0.1)
    return runner.state()


def test_a_second_start_while_running_is_answered_already_running_even_from_another_worker(tmp_path):
    marker = tmp_path / "runs.txt"
    first = TrainingRunner(command(marker, 1.5), tmp_path, tmp_path / "state")
    second = TrainingRunner(command(marker, 1.5), tmp_path, tmp_path / "state")  # another gunicorn worker
    started = first.start("START_TRAINING project 1")
    assert started["status"] == "started" and started["pid"] > 0
    again = second.start("START_TRAINING project 1")
    assert again["status"] == "already running" and again["pid"] == started["pid"]
    assert first.start("again")["status"] == "already running"
    state = wait_until_idle(first)
    assert (state["status"], state["returncode"], state["running"]) == ("finished", 0, False)
    assert marker.read_text() == "run\n"
    assert Path(state["log"]).is_file()
    assert second.start("next cycle")["status"] == "started"  # free again once the run is over
    wait_until_idle(second)
    assert marker.read_text() == "run\nrun\n"


def test_the_lock_lives_with_the_child_not_the_worker(tmp_path):
    runner = TrainingRunner(command(tmp_path / "m", 1.0), tmp_path, tmp_path / "state")
    runner.start("x")
    del runner  # the worker object is gone (a restarted worker): the child still holds the lock
    fresh = TrainingRunner(command(tmp_path / "m", 0), tmp_path, tmp_path / "state")
    assert fresh.is_running()
    assert fresh.start("y")["status"] == "already running"
    wait_until_idle(fresh)


def test_a_failing_run_is_recorded(tmp_path):
    runner = TrainingRunner(command(tmp_path / "m", 0, code=3), tmp_path, tmp_path / "state")
    runner.start("x")
    state = wait_until_idle(runner)
    assert (state["status"], state["returncode"]) == ("failed", 3)


def test_a_missing_command_fails_to_start_and_releases_the_lock(tmp_path):
    runner = TrainingRunner(["no-such-command-alod"], tmp_path, tmp_path / "state")
    state = runner.start("x")
    assert state["status"] == "failed to start" and "no-such-command-alod" in state["error"]
    assert not runner.is_running()


def test_an_empty_command_is_refused(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        TrainingRunner([], tmp_path, tmp_path)


def test_annotation_events_trigger_every_n(tmp_path):
    counter = AnnotationCounter(tmp_path / "count", every=3)
    assert [counter.add() for _ in range(7)] == [False, False, True, False, False, True, False]
    assert AnnotationCounter(tmp_path / "never", every=0).add() is False
