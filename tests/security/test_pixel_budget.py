"""Decoding within a budget: a request never holds more decoded pixels than ``chunk_max_pixels`` at once
(one larger image alone), and its images still all get predictions, the same as without a budget."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import numpy as np
import pytest

from core.fetch import ImageFetcher
from core.images import PixelBudget
from tests.security.conftest import CONFIG, predictor


def png_url(width: int, height: int, seed: int) -> str:
    import cv2

    image = np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode()


class Recording:
    """The real detector, recording the pixel count of each detect call's images."""

    def __init__(self, detector: Any) -> None:
        self.detector, self.calls = detector, []
        self.names, self.device = detector.names, detector.device

    def detect(self, images: list[np.ndarray], **kwargs: Any) -> list[Any]:
        self.calls.append([im.shape[0] * im.shape[1] for im in images])
        return self.detector.detect(images, **kwargs)


def test_a_reader_waits_while_its_image_does_not_fit_and_one_larger_image_is_held_alone():
    budget = PixelBudget(100)
    budget.take(60)
    taken = threading.Event()
    reader = threading.Thread(target=lambda: (budget.take(50), taken.set()))
    reader.start()
    time.sleep(0.1)
    assert not taken.is_set()  # 60 + 50 > 100: waits
    with budget.cond:
        assert budget.stalled(60)  # everything held was handed over and a reader waits: detect, give back
        assert not budget.stalled(30)  # 30 of the 60 still being decoded: not yet
    budget.give_back(60)
    reader.join(5)
    assert taken.is_set() and budget.held == 50
    budget.give_back(50)
    budget.take(250)  # more than the whole budget: allowed while nothing else is held
    assert budget.held == 250


def test_detect_calls_stay_within_the_budget_and_every_task_is_answered(detector, tmp_path):
    # pixel counts 1200, 900, 1200, 600, 3000 (over the budget: alone), 1200 against a budget of 2000
    sizes = [(40, 30), (30, 30), (40, 30), (30, 20), (60, 50), (40, 30)]
    tasks = [{"id": i + 1, "data": {"image": png_url(w, h, i)}} for i, (w, h) in enumerate(sizes)]
    want = predictor(detector, tmp_path, None).predict(tasks, CONFIG).results
    recording = Recording(detector)
    out = predictor(recording, tmp_path, 2000).predict(tasks, CONFIG)
    assert out.errors == 0
    assert sorted(p for call in recording.calls for p in call) == sorted(w * h for w, h in sizes)  # each once
    for call in recording.calls:
        assert sum(call) <= 2000 or len(call) == 1, recording.calls
    assert [3000] in recording.calls and len(recording.calls) >= 4  # 6600 pixels need at least 4 passes
    for got, expected in zip(out.results, want, strict=True):  # the same predictions, task by task
        assert got["score"] == pytest.approx(expected["score"], abs=1e-6)
        assert len(got["result"]) == len(expected["result"])


def test_an_image_over_the_pixel_limit_fails_only_its_own_task(detector, tmp_path):
    p = predictor(detector, tmp_path, 2000)
    p.fetcher = ImageFetcher(max_pixels=2500)
    tasks = [{"id": 1, "data": {"image": png_url(60, 50, 1)}}, {"id": 2, "data": {"image": png_url(40, 30, 2)}}]
    out = p.predict(tasks, CONFIG)
    assert "image too large: 60x50 pixels > limit 2500" in out.results[0]["error"]
    assert "result" in out.results[1]
