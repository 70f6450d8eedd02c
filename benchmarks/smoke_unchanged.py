"""Refactoring check: the benchmark smoke configs give the same numbers at two revisions.

    python benchmarks/smoke_unchanged.py BASE_REV [--configs smoke smoke_boxes BASE_NAME=HEAD_NAME ...]

Runs each config (benchmarks/configs/<name>.yaml: 1 seed, 2 cycles, a few BCCD images, 1 epoch,
deterministic training on the CPU) once in a temporary checkout of BASE_REV and once in this
working tree, and compares every column of results.csv except the wall times. Prints one line per
config and exits 1 when any number differs. The same venv runs both (the dependencies are pinned).
``BASE_NAME=HEAD_NAME`` runs config BASE_NAME at the base and HEAD_NAME here (e.g. a config that
selects, by name, rules that changed on purpose since the base).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TIMES = ("train_seconds",)


def run_config(checkout: Path, config: str, out: Path) -> pd.DataFrame:
    """results.csv of benchmarks/configs/``config``.yaml run in ``checkout``, the strategy labels as rows."""
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
        "ALOD_PARAMS": str(checkout / "params.yaml"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{out}/mlflow.db",  # revisions that always log: a temporary store
    }
    out.mkdir(parents=True, exist_ok=True)
    overrides = [f"out_dir={out}", f"report_dir={out / 'report'}"]
    command = [sys.executable, "-m", "pipelines.cli", "benchmark", "--config", f"benchmarks/configs/{config}.yaml"]
    for item in overrides:
        command += ["--set", item]
    subprocess.run(command, cwd=checkout, env=env, check=True, stdout=subprocess.DEVNULL)
    return pd.read_csv(out / config / "results.csv")


def differences(base: pd.DataFrame, head: pd.DataFrame) -> list[str]:
    keys = ["seed", "strategy", "cycle"]
    if set(base.columns) != set(head.columns):
        return [f"columns differ: {sorted(set(base.columns) ^ set(head.columns))}"]
    a = base.sort_values(keys).reset_index(drop=True)
    b = head.sort_values(keys).reset_index(drop=True)[a.columns]
    if len(a) != len(b):
        return [f"{len(a)} rows at the base, {len(b)} here"]
    out = []
    for column in a.columns:
        if column in TIMES:
            continue
        same = (a[column] == b[column]) | (a[column].isna() & b[column].isna())
        for i in (~same).to_numpy().nonzero()[0]:
            out.append(f"{tuple(a.loc[i, keys])} {column}: {a.loc[i, column]} -> {b.loc[i, column]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="the revision to compare with, e.g. HEAD~3 or a commit")
    parser.add_argument("--configs", nargs="+", default=["smoke", "smoke_boxes"])
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="alod-smoke-") as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=ROOT, check=True)
        try:
            (base_tree.parent / "shared").symlink_to(ROOT.parent / "shared")  # ../shared as the settings expect
            for config in args.configs:
                base_name, _, head_name = config.partition("=")
                base = run_config(base_tree, base_name, Path(tmp) / "out-base")
                head = run_config(ROOT, head_name or base_name, Path(tmp) / "out-head")
                diff = differences(base, head)
                failed |= bool(diff)
                verdict = "same numbers" if not diff else f"{len(diff)} differences"
                print(f"{config}: {len(head)} rows, {verdict} ({args.base} vs the working tree)")
                for line in diff[:20]:
                    print("   ", line)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
