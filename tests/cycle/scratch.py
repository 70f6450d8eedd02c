"""A scratch project for end-to-end cycles: git + dvc + params.yaml + dvc.yaml, run with the venv on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from core.settings import REPO_ROOT


def small_params(shared: Path, seed_frames: int = 8, budget: int = 6) -> dict:
    """BCCD at imgsz 160, 1 epoch, absolute paths to ../shared."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["datasets"] = {"bccd": {**params["datasets"]["bccd"], "root": str(shared / "data/bccd/BCCD")}}
    params["model"] = {"base_weights": str(shared / "weights/yolo11n-coco.pt"), "imgsz": 160}
    params["train"].update(epochs=1, batch=8, val_limit=4, device="cpu")
    params["evaluate"]["limit"] = 8
    params["detector"]["batch"] = 16
    params["cycle"]["initial_frames"] = seed_frames
    params["budget"].update(frames=budget)
    return params


class Repo:
    """A scratch project: git + dvc + params.yaml + dvc.yaml, commands run with the venv on PATH."""

    def __init__(self, path: Path, params: dict) -> None:
        self.path = path
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        }
        self.env.pop("MLFLOW_TRACKING_URI", None)
        self.env.pop("ALOD_PARAMS", None)
        shutil.copy(REPO_ROOT / "dvc.yaml", path / "dvc.yaml")
        for code in ("core", "strategies", "pipelines", "backend"):  # stage deps: their hashes decide what reruns
            shutil.copytree(REPO_ROOT / code, path / code, ignore=shutil.ignore_patterns("__pycache__"))
        (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        (path / ".gitignore").write_text("mlflow.db\nmlartifacts/\n.yolo/\n.cache/\n__pycache__/\n")
        for cmd in (
            "git init -q",
            "dvc init -q",
            "dvc remote add -d local .dvc-remote",
            "git add -A",
            "git commit -qm init",
        ):
            self.run(cmd)

    def run(self, cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(cmd, shell=True, cwd=self.path, env=self.env, capture_output=True, text=True)
        if check and result.returncode != 0:
            output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            raise AssertionError(f"`{cmd}` failed ({result.returncode}):\n{output}")
        return result

    def commit_cycle(self, tag: str) -> None:
        self.run("dvc push -q")
        self.run(f"git add -A && git commit -qm {tag} && git tag {tag}")

    def read(self, rel: str) -> pd.DataFrame:
        return pd.read_parquet(self.path / rel)

    def json(self, rel: str) -> dict:
        return json.loads((self.path / rel).read_text())
