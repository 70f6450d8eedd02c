"""One training cycle at a time, started in the background by ``START_TRAINING`` (default: ``dvc repro``).

Single-flight across every gunicorn worker and process: a run holds an exclusive ``flock`` on
``<train_dir>/train.lock``, and the lock is handed to the child process itself (``pass_fds``), so
it is held exactly as long as the run lives, even if the worker that started it is restarted.
A second request while the lock is held is answered ``already running``. The child runs in the
repository root in its own session, with the backend's virtualenv first on PATH; its output goes
to ``<train_dir>/train-<timestamp>.log`` and its state to ``<train_dir>/train.json``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


MAX_REASON = 200  # characters of a run's reason kept in its state and environment
CHILD_ENV_DROPPED = ("BASIC_AUTH_USER", "BASIC_AUTH_PASS")  # the backend's own credentials stay with it


class TrainingRunner:
    def __init__(
        self,
        command: Sequence[str],
        workdir: Path,
        state_dir: Path,
        on_success: Callable[[], None] | None = None,
    ) -> None:
        """``on_success`` runs in this worker when a run it started exits 0 (the backend re-resolves
        its model there, so the new champion is served at once, not at the next poll)."""
        if not command:
            raise ValueError("the training command is empty")
        self.command = [str(c) for c in command]
        self.workdir, self.state_dir = Path(workdir), Path(state_dir)
        self.on_success = on_success
        self._local = threading.Lock()

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "train.lock"

    @property
    def state_path(self) -> Path:
        return self.state_dir / "train.json"

    def state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            state = {}
        state["running"] = self.is_running()
        return state

    def is_running(self) -> bool:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases a lock we took just to look
        return False

    def start(self, reason: str = "") -> dict[str, Any]:
        """Start a run unless one is running: {"status": "started" | "already running", ...}."""
        with self._local:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return {"status": "already running", **self._public(self.state())}
            try:
                return self._spawn(fd, reason)
            finally:
                os.close(fd)  # the child keeps the lock through its inherited descriptor

    def _spawn(self, fd: int, reason: str) -> dict[str, Any]:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        log_path = self.state_dir / f"train-{stamp}-{os.getpid()}.log"
        reason = reason[:MAX_REASON]
        env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV_DROPPED}
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env["ALOD_TRAIN_REASON"] = reason
        with open(log_path, "ab") as out:
            try:
                proc = subprocess.Popen(
                    self.command,
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    pass_fds=(fd,),
                    start_new_session=True,
                )
            except OSError as exc:
                state = {"status": "failed to start", "error": f"{exc}", "command": self.command}
                self._write_state(state)
                log.error("training command %s failed to start: %s", self.command, exc)
                return state
        state = {
            "status": "started",
            "pid": proc.pid,
            "command": self.command,
            "reason": reason,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "log": str(log_path),
        }
        self._write_state(state)
        log.info("training started (pid %d): %s -> %s", proc.pid, " ".join(self.command), log_path)
        threading.Thread(target=self._watch, args=(proc, state), name="alod-train-watch", daemon=True).start()
        return {"status": "started", **self._public(state)}

    def _watch(self, proc: subprocess.Popen[bytes], state: dict[str, Any]) -> None:
        code = proc.wait()
        current = self.state()
        if current.get("pid") != proc.pid:
            return  # a newer run owns the state file
        done = {**state, "status": "finished" if code == 0 else "failed", "returncode": code}
        done["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._write_state(done)
        (log.info if code == 0 else log.error)("training run (pid %d) exited with %d", proc.pid, code)
        if code == 0 and self.on_success is not None:
            try:
                self.on_success()
            except Exception:  # noqa: BLE001 - the poll tries again later
                log.exception("after the training run: refreshing the model failed")

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_path)

    @staticmethod
    def _public(state: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in state.items() if k in ("pid", "started", "reason", "log", "running", "command")}


class AnnotationCounter:
    """Annotation webhooks counted across workers (a file under a lock): starts a run every N events."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = Path(path), int(every)

    def add(self, n: int = 1) -> bool:
        """Count ``n`` events; True when the count reached ``every`` (and was reset)."""
        if self.every <= 0:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read().strip()
            count = (int(text) if text.isdigit() else 0) + n
            due = count >= self.every
            f.seek(0)
            f.truncate()
            f.write(str(0 if due else count))
        return due
