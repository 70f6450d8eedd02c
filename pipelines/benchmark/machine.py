"""Where and how long a benchmark ran: one line naming the machine, and wall time summed over resumes."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """GPU names from nvidia-smi (no torch import, no CUDA context); empty without an NVIDIA GPU."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
        out = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def describe() -> str:
    """E.g. ``Linux-6.1-x86_64 (Python 3.12.3), 2 x Intel(R) Xeon(R) CPU @ 2.20GHz, no GPU``."""
    gpus = gpu_names()
    gpu = ", ".join(gpus) if gpus else "no GPU"
    system = f"{platform.system()}-{platform.release()}-{platform.machine()}"
    return f"{system} (Python {platform.python_version()}), {os.cpu_count()} x {cpu_model()}, {gpu}"


class WallClock:
    """Adds this invocation's wall time to ``run.json`` in ``folder`` (a resumed run adds up)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / RUN_FILE
        self.start = time.monotonic()

    def stop(self) -> dict[str, Any]:
        before = read_run(self.path.parent)
        info = {
            "wall_seconds": round(before.get("wall_seconds", 0.0) + time.monotonic() - self.start, 1),
            "invocations": int(before.get("invocations", 0)) + 1,
            "machine": describe(),
            "machines_before": sorted({*before.get("machines_before", []), before.get("machine", "")} - {""}),
        }
        if info["machine"] in info["machines_before"]:
            info["machines_before"].remove(info["machine"])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(info, indent=1))
        return info


def read_run(folder: Path) -> dict[str, Any]:
    path = folder / RUN_FILE
    return json.loads(path.read_text()) if path.exists() else {}
