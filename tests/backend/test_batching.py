"""Cross-request batching: one detect pass for concurrent requests, each gets its own results back.

The batcher is specified on a fake detect function (tiny constructed cases); the predictor tests run
the real YOLO detector on COCO images, two requests at once with different label configs.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.batching import BatchStats, DetectionBatcher
from core.fetch import ImageFetcher
from core.model_store import ModelStore
from core.predictor import DETECTION_FAILED, Predictor
from core.scoring import DetectionOptions, TaskScorer

WAIT_S = 0.05
TOLERANCE_S = 0.05  # thread wake-ups on a loaded 2-core machine


class FakeDetect:
    """detect(model, images) -> [(model, 10 * image)]; an image equal to "bad" makes the whole call raise."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []

    def __call__(self, model: Any, images: list[Any]) -> list[Any]:
        self.calls.append(list(images))
        if "bad" in images:
            raise ValueError("bad image")
        return [(model, 10 * im) for im in images]


def in_threads(*calls: Any) -> list[Any]:
    """Run the callables concurrently; their results (or raised exceptions), in order."""
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            out[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - returned to the test
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def announced(batcher: DetectionBatcher, images: list[Any], barrier: threading.Barrier, stats: list) -> Any:
    """A request as the predictor makes one: announce, (read the images), run."""

    def call() -> Any:
        with batcher.coming() as ticket:
            barrier.wait()  # both requests are announced before either runs
            return batcher.run("m", images, stats, ticket)

    return call


def test_two_announced_requests_share_one_pass_and_each_gets_its_own_results():
    detect = FakeDetect()
    batcher = DetectionBatcher(detect, max_batch=8, max_wait_s=5.0)
    barrier, stats_a, stats_b = threading.Barrier(2), [], []
    a, b = in_threads(announced(batcher, [1, 2], barrier, stats_a), announced(batcher, [3], barrier, stats_b))
    assert a == [("m", 10), ("m", 20)]
    assert b == [("m", 30)]
    assert len(detect.calls) == 1 and sorted(detect.calls[0]) == [1, 2, 3]
    assert stats_a[0].batch_images == stats_b[0].batch_images == 3


def test_a_failing_image_fails_only_its_own_request():
    detect = FakeDetect()
    batcher = DetectionBatcher(detect, max_batch=8, max_wait_s=5.0)
    barrier = threading.Barrier(2)
    a, b = in_threads(announced(batcher, [1, "bad"], barrier, []), announced(batcher, [3], barrier, []))
    assert isinstance(a, ValueError)
    assert b == [("m", 30)]
    assert sorted(map(len, detect.calls)) == [1, 2, 3]  # the shared pass, then each request on its own


def test_no_pass_is_larger_than_max_batch_and_requests_are_never_split():
    detect = FakeDetect()
    batcher = DetectionBatcher(detect, max_batch=3, max_wait_s=5.0)
    barrier = threading.Barrier(3)
    results = in_threads(*(announced(batcher, [i, i], barrier, []) for i in (1, 2, 3)))
    assert results == [[("m", 10 * i)] * 2 for i in (1, 2, 3)]
    assert all(len(c) == 2 for c in detect.calls)  # 2 + 2 > 3: one request per pass, each whole


def test_requests_of_different_models_never_share_a_pass():
    detect = FakeDetect()
    batcher = DetectionBatcher(detect, max_batch=8, max_wait_s=5.0)
    barrier = threading.Barrier(2)

    def call(model: str, image: int) -> Any:
        with batcher.coming() as ticket:
            barrier.wait()
            return batcher.run(model, [image], None, ticket)

    old, new = in_threads(lambda: call("old", 1), lambda: call("new", 2))
    assert (old, new) == ([("old", 10)], [("new", 20)])
    assert sorted(detect.calls) == [[1], [2]]


def test_a_lone_request_is_not_held_and_runs_in_its_own_thread():
    batcher = DetectionBatcher(FakeDetect(), max_batch=8, max_wait_s=WAIT_S)
    stats: list[BatchStats] = []
    with batcher.coming() as ticket:
        assert batcher.run("m", [4], stats, ticket) == [("m", 40)]
    assert stats[0] == BatchStats(held_s=0.0, waited_s=0.0, batch_images=1)
    assert batcher._thread is None  # no hand-off to the batcher thread


def test_requests_arriving_during_a_lone_pass_ride_the_next_one():
    release, detect = threading.Event(), FakeDetect()

    def slow(model: Any, images: list[Any]) -> list[Any]:
        if images == [1]:
            release.wait(10)
        return detect(model, images)

    batcher = DetectionBatcher(slow, max_batch=8, max_wait_s=5.0)
    results: list[Any] = [None] * 3

    def call(i: int) -> None:
        results[i] = batcher.run("m", [i + 1])

    first = threading.Thread(target=call, args=(0,))
    first.start()
    while not batcher._busy:
        time.sleep(0.001)
    others = [threading.Thread(target=call, args=(i,)) for i in (1, 2)]
    for t in others:
        t.start()
    while len(batcher._queue) < 2:
        time.sleep(0.001)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert results == [[("m", 10)], [("m", 20)], [("m", 30)]]
    assert detect.calls == [[1], [2, 3]]


def test_waiting_for_an_announced_request_that_never_comes_is_bounded_by_the_wait():
    batcher = DetectionBatcher(FakeDetect(), max_batch=8, max_wait_s=WAIT_S)
    stats: list[BatchStats] = []
    with batcher.coming():  # a request still reading its image
        batcher.run("m", [5], stats)
    assert WAIT_S * 0.8 <= stats[0].held_s <= WAIT_S + TOLERANCE_S
    assert stats[0].waited_s <= WAIT_S + TOLERANCE_S


# -- the predictor with the real detector -------------------------------------------------------------

CONFIG_A = """<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">
<Label value="Human" predicted_values="person"/></RectangleLabels></View>"""
CONFIG_B = """<View><Image name="img" value="$photo"/><RectangleLabels name="box" toName="img">
<Label value="Vehicle" predicted_values="car,truck,bus,train"/><Label value="person"/></RectangleLabels></View>"""


class Flaky:
    """The real detector, except that a batch holding an all-black image raises (a fault we cannot cause)."""

    def __init__(self, detector: Any) -> None:
        self.inner, self.names, self.batch = detector, detector.names, detector.batch

    def detect(self, images: list[np.ndarray], **kwargs: Any) -> list[Any]:
        if any(not im.any() for im in images):
            raise RuntimeError("poisoned image")
        return self.inner.detect(images, **kwargs)


@pytest.fixture(scope="module")
def detector(params: dict, shared: Path) -> Any:
    from core.detector import Detector

    return Flaky(Detector.from_params(params, shared / "weights" / "yolo11n-coco.pt", imgsz=160, device="cpu"))


def predictor(detector: Any, tmp_path: Path, wait_ms: float | None) -> Predictor:
    store = ModelStore(str(tmp_path / "model.pt"), lambda _: detector, tmp_path)
    store._current = (detector, type("Ref", (), {"version": "test@1"})())  # loaded: no weights file needed
    options = DetectionOptions(conf=0.05, tta_flip=False, divergence_radius=None)
    return Predictor(
        store, ImageFetcher(), TaskScorer("uncertainty"), options, batching=wait_ms is not None, batch_wait_ms=wait_ms
    )


class BarrierFetcher(ImageFetcher):
    """Reads images only once every request has started: both are announced before either queues."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self.barrier = barrier

    def load(self, ref: object, task_id: int | None = None) -> np.ndarray:
        self.barrier.wait(30)
        return super().load(ref, task_id)


def labels_and_boxes(result: dict) -> list[tuple[str, str, list[float]]]:
    return [
        (r["from_name"], r["value"]["rectanglelabels"][0], [r["value"][k] for k in ("x", "y", "width", "height")])
        for r in result["result"]
    ]


def test_concurrent_requests_with_different_label_configs_get_their_own_predictions(
    detector: Any, coco_dir: Path, to_data_url: Any, tmp_path: Path
):
    # both 640 x 480: one forward pass of two images
    req_a = ([{"id": 1, "data": {"image": to_data_url(coco_dir / "000000000110.jpg")}}], CONFIG_A)
    req_b = ([{"id": 2, "data": {"photo": to_data_url(coco_dir / "000000000192.jpg")}}], CONFIG_B)
    alone = predictor(detector, tmp_path, None)  # no batcher: each request its own pass
    want_a, want_b = (alone.predict(*req).results[0] for req in (req_a, req_b))
    batched = predictor(detector, tmp_path, 5000.0)
    fetcher = BarrierFetcher(threading.Barrier(2))
    a, b = in_threads(lambda: batched.predict(*req_a, fetcher), lambda: batched.predict(*req_b, fetcher))
    assert a.batches[0].batch_images == b.batches[0].batch_images == 2 and batched.batcher.passes == 1
    assert a.batches[0].held_s < 1.0  # ran when both were queued, not at the 5 s deadline
    for got, want in ((a.results[0], want_a), (b.results[0], want_b)):
        assert [x[:2] for x in labels_and_boxes(got)] == [x[:2] for x in labels_and_boxes(want)]
        for (_, _, box), (_, _, box_want) in zip(labels_and_boxes(got), labels_and_boxes(want), strict=True):
            assert box == pytest.approx(box_want, abs=0.01)
        assert got["score"] == pytest.approx(want["score"], abs=1e-4)
    assert {x[:2] for x in labels_and_boxes(a.results[0])} == {("label", "Human")}  # two people
    assert {x[:2] for x in labels_and_boxes(b.results[0])} == {("box", "person")}  # the other config's names


def test_a_failing_image_does_not_fail_the_other_request_of_its_batch(
    detector: Any, coco_dir: Path, to_data_url: Any, tmp_path: Path
):
    import cv2

    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((64, 64, 3), np.uint8))
    req_a = (
        [
            {"id": 1, "data": {"image": to_data_url(black, "image/png")}},
            {"id": 3, "data": {"image": to_data_url(coco_dir / "000000000110.jpg")}},
        ],
        CONFIG_A,
    )
    req_b = ([{"id": 2, "data": {"image": to_data_url(coco_dir / "000000000192.jpg")}}], CONFIG_A)
    batched = predictor(detector, tmp_path, 5000.0)
    fetcher = BarrierFetcher(threading.Barrier(3))  # request A reads its two images in parallel
    a, b = in_threads(lambda: batched.predict(*req_a, fetcher), lambda: batched.predict(*req_b, fetcher))
    assert a.batches[0].batch_images == b.batches[0].batch_images == 3
    assert a.results[0] == {"task": 1, "error": DETECTION_FAILED, "model_version": a.model_version}
    assert "result" in a.results[1] and a.results[1]["result"]  # the good image of the same request
    assert "result" in b.results[0] and b.results[0]["result"]
    assert (a.errors, b.errors) == (1, 0)


def test_a_lone_request_waits_no_longer_than_the_configured_wait(
    detector: Any, coco_dir: Path, to_data_url: Any, tmp_path: Path
):
    batched = predictor(detector, tmp_path, WAIT_S * 1000)
    out = batched.predict([{"id": 1, "data": {"image": to_data_url(coco_dir / "000000000110.jpg")}}], CONFIG_A)
    assert out.errors == 0 and out.batches[0].batch_images == 1
    assert out.batches[0].held_s <= WAIT_S + TOLERANCE_S
    assert out.seconds["wait"] <= WAIT_S + TOLERANCE_S


def test_the_default_wait_is_zero_on_the_cpu_and_short_on_a_gpu():
    from types import SimpleNamespace

    from core.predictor import GPU_WAIT_MS, auto_wait_ms

    assert auto_wait_ms(SimpleNamespace(device=SimpleNamespace(type="cpu"))) == 0.0
    assert auto_wait_ms(SimpleNamespace(device=SimpleNamespace(type="cuda"))) == GPU_WAIT_MS > 0
