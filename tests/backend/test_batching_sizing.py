"""Workers and threads from the hardware (backend/sizing.py), on constructed machines."""

from __future__ import annotations

from backend.sizing import CPU_CORES_PER_WORKER, GPU_THREADS, pick_gpu, plan, visible_gpus


def test_one_worker_per_gpu_with_threads_to_fill_its_batches():
    p = plan(cpu_count=16, gpus=("0", "1"), batch=32, environ={})
    assert (p.workers, p.threads, p.gpus) == (2, max(GPU_THREADS, 128), ("0", "1"))


def test_cpu_workers_follow_the_cores_and_the_environment_wins():
    assert plan(cpu_count=2, environ={}).workers == 2 // CPU_CORES_PER_WORKER
    assert plan(cpu_count=1, environ={}).workers == 1
    assert plan(cpu_count=16, environ={}).workers == 16 // CPU_CORES_PER_WORKER
    p = plan(cpu_count=16, gpus=("0",), environ={"WORKERS": "3", "THREADS": "5"})
    assert (p.workers, p.threads) == (3, 5)


def test_visible_gpus_from_the_device_setting():
    assert visible_gpus({}, device="cpu") == ()
    assert visible_gpus({}, device="0,1") == ("0", "1")
    assert visible_gpus({}, device="cuda:1") == ("1",)


def test_a_new_worker_takes_the_gpu_no_live_worker_holds():
    assert pick_gpu(("0", "1"), ["0"]) == "1"
    assert pick_gpu(("0", "1"), ["1", None]) == "0"
    assert pick_gpu(("0", "1"), ["0", "1", "0"]) == "1"  # more workers than GPUs: spread
    assert pick_gpu((), ["0"]) is None
