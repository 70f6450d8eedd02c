"""A small local Ray (2 CPUs, 200 MB object store, files under /tmp) for the scale tests, and real weights."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scale.served import ALLOW, LOOPBACK

IMGSZ = 320
SCORE_CONF = 0.05


@pytest.fixture(scope="module")
def ray_local():
    """``ray.init()`` with no address, as the `score` stage starts it, sized for a 2-core machine."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[scale]')")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 2**20,
        _temp_dir="/tmp/alod-ray-tests",
        log_to_driver=False,
        # the tests' image server (tests/scale/served.py) is on loopback: allow-listed for the workers
        runtime_env={"env_vars": {ALLOW: LOOPBACK}},
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def coco_weights(shared: Path) -> Path:
    return shared / "weights" / "yolo11n-coco.pt"


@pytest.fixture(scope="session")
def detector(coco_weights: Path):  # noqa: ANN201
    from core.detector import Detector

    return Detector(coco_weights, device="cpu", imgsz=IMGSZ, conf=SCORE_CONF, batch=4)
