"""Real weights and real images from ../shared; the model is loaded once for the whole folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.settings import configure_environment, disable_ultralytics_integrations

configure_environment()

IMGSZ = 320
SCORE_CONF = 0.05


@pytest.fixture(scope="session")
def coco_weights(shared: Path) -> Path:
    return shared / "weights" / "yolo11n-coco.pt"


@pytest.fixture(scope="session")
def bccd_images(shared: Path) -> list[Path]:
    """640x480 microscope frames."""
    return sorted((shared / "data" / "bccd" / "BCCD" / "JPEGImages").glob("*.jpg"))[:3]


@pytest.fixture(scope="session")
def coco_images(shared: Path) -> list[Path]:
    """Street and indoor scenes of different sizes and aspect ratios, many objects each."""
    return sorted((shared / "data" / "coco128" / "images" / "val2017").glob("*.jpg"))[:4]


@pytest.fixture(scope="session")
def detector(coco_weights: Path):  # noqa: ANN201
    from core.detector import Detector

    return Detector(coco_weights, device="auto", imgsz=IMGSZ, conf=SCORE_CONF, batch=4)


@pytest.fixture(scope="session")
def reference(coco_weights: Path):  # noqa: ANN201
    """ultralytics' own model and predict, the ground truth for boxes."""
    disable_ultralytics_integrations()
    from ultralytics import YOLO

    return YOLO(str(coco_weights))


@pytest.fixture(scope="session")
def blank_image() -> np.ndarray:
    """A flat grey frame: nothing to detect."""
    return np.full((480, 640, 3), 114, dtype=np.uint8)
