"""How many gunicorn workers and threads to run on this machine (gunicorn_conf.py asks `plan`).

- GPU: one worker per visible GPU, each holding one copy of the model on its own GPU (see
  `pick_gpu`); a second worker on the same GPU would only add a model copy and interleave two
  processes' kernels, while cross-request batching (core/batching.py) already fills the GPU from
  one process. Many threads (``GPU_THREADS``): a thread only parses, reads the image and waits for
  the shared pass, and the more requests are in flight the fuller the batches.
- CPU: one worker per core (``CPU_CORES_PER_WORKER``), one torch thread each. Measured with
  `benchmarks/serve_load.py` on the 2-core dev machine (docs/runtime.md): a small detector gains
  little from a second intra-op thread (yolo11n at imgsz 320: 22 ms per image with 2 threads,
  23 ms with 1), so two single-threaded workers have nearly twice the throughput of one
  two-threaded worker, and their request handling (HTTP, JSON, decoding, GIL-bound) runs on both
  cores; at 16 clients the p50 was about half of the one-worker p50 at imgsz 320.
  Threads: enough requests in flight to fill a batch (``detector.batch``) while the previous one runs.

WORKERS / THREADS in the environment always win.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CPU_CORES_PER_WORKER = 1
GPU_THREADS = 64
CPU_MIN_THREADS = 8


@dataclass(frozen=True)
class ServingPlan:
    workers: int
    threads: int
    gpus: tuple[str, ...]  # the GPU ids workers are spread over; empty on the CPU
    reason: str


def visible_gpus(environ: dict[str, str] | os._Environ | None = None, device: str | None = None) -> tuple[str, ...]:
    """NVIDIA GPUs this process may use, without importing torch (the gunicorn master stays light).

    ``device`` is ``detector.device``: "cpu" means none; "0,1" names them. Otherwise the
    driver's /proc entries, narrowed by CUDA_VISIBLE_DEVICES.
    """
    env = os.environ if environ is None else environ
    wanted = str(device or "auto").strip().lower()
    if wanted in ("cpu", "mps"):
        return ()
    if wanted not in ("", "auto", "none"):
        return tuple(d.strip().removeprefix("cuda:") for d in wanted.split(",") if d.strip())
    proc = Path("/proc/driver/nvidia/gpus")
    count = len(list(proc.iterdir())) if proc.is_dir() else _nvidia_smi_count()
    ids = [str(i) for i in range(count)]
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"][: count or None]
    return tuple(ids) if count else ()


def _nvidia_smi_count() -> int:
    """GPUs listed by ``nvidia-smi -L`` (containers may lack /proc/driver/nvidia); 0 without it."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


def plan(
    cpu_count: int | None = None,
    gpus: tuple[str, ...] = (),
    batch: int = 8,
    environ: dict[str, str] | os._Environ | None = None,
) -> ServingPlan:
    """Workers and threads per worker for ``cpu_count`` cores and ``gpus``; WORKERS / THREADS win."""
    env = os.environ if environ is None else environ
    cpus = max(1, cpu_count or os.cpu_count() or 1)
    if gpus:
        workers, threads = len(gpus), max(GPU_THREADS, 4 * batch)
        reason = f"{len(gpus)} GPU(s): one worker per GPU, {threads} threads feeding its batches"
    else:
        workers = max(1, cpus // CPU_CORES_PER_WORKER)
        threads = max(CPU_MIN_THREADS, 2 * batch)
        reason = f"{cpus} CPU cores: {workers} workers, {cpus // workers} torch thread(s) each"
    if env.get("WORKERS"):
        workers, reason = int(env["WORKERS"]), f"WORKERS={env['WORKERS']}"
    if env.get("THREADS"):
        threads = int(env["THREADS"])
    return ServingPlan(max(1, workers), max(1, threads), tuple(gpus), reason)


def pick_gpu(gpus: tuple[str, ...], taken: list[str | None]) -> str | None:
    """The GPU for a new worker: the first one no live worker holds (a restarted worker takes its slot)."""
    if not gpus:
        return None
    for gpu in gpus:
        if gpu not in taken:
            return gpu
    return min(gpus, key=taken.count)  # more workers than GPUs (WORKERS set): spread evenly
