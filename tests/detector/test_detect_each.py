"""One per-image failure rule for the score stage and /predict: an image the detector fails on
gets its exception in its place, the others their detections, in order."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.scoring import DetectionOptions, detect_each

OPTIONS = DetectionOptions(conf=0.1, tta_flip=False, divergence_radius=None)


class Detector:
    """Detects the length of each "image" (a string); "bad" breaks any pass that holds it."""

    def __init__(self) -> None:
        self.passes: list[list[str]] = []

    def detect(self, images, *, conf, tta_flip, divergence_radius):
        self.passes.append(list(images))
        if "bad" in images:
            raise ValueError("cannot decode")
        return [len(i) for i in images]


def test_a_pass_that_succeeds_runs_once():
    detector = Detector()
    assert detect_each(detector, ["a", "bb"], OPTIONS) == [1, 2]
    assert detector.passes == [["a", "bb"]]


def test_a_failing_image_gets_its_exception_and_the_others_their_detections():
    detector = Detector()
    out = detect_each(detector, ["a", "bad", "ccc"], OPTIONS)
    assert out[0] == 1 and out[2] == 3
    assert isinstance(out[1], ValueError) and str(out[1]) == "cannot decode"
    assert detector.passes == [["a", "bad", "ccc"], ["a"], ["bad"], ["ccc"]]


@pytest.mark.parametrize("images", [["bad"], ["bad", "bad"]])
def test_when_every_image_fails_each_gets_its_exception(images):
    out = detect_each(Detector(), images, OPTIONS)
    assert len(out) == len(images) and all(isinstance(e, ValueError) for e in out)


def test_no_images_no_pass():
    detector = Detector()
    assert detect_each(detector, [], OPTIONS) == [] and detector.passes == []


def test_the_score_stage_records_the_failing_frame_and_keeps_the_others():
    from pipelines.scoring.engine import score_batch
    from pipelines.scoring.store import FrameRecord

    class Frames(Detector):
        def detect(self, images, **options):
            super().detect(images, **options)  # raises on "bad"
            return [SimpleNamespace(width=len(i), height=1) for i in images]

    loaded = [(FrameRecord(frame_id=name, image=f"{name}.jpg"), name) for name in ("a", "bad", "ccc")]
    loaded.append((FrameRecord(frame_id="missing", image="missing.jpg", error="cannot read"), None))
    out = score_batch(Frames(), loaded, conf=0.1, tta_flip=False, radius=None)
    assert [r.error for r in out] == [None, "detection failed: ValueError: cannot decode", None, "cannot read"]
    assert [r.width for r in out] == [1, 0, 3, 0]


def test_the_score_stage_stops_when_every_frame_fails():
    from pipelines.scoring.engine import score_batch
    from pipelines.scoring.store import FrameRecord

    with pytest.raises(ValueError, match="cannot decode"):
        score_batch(Detector(), [(FrameRecord(frame_id="x", image="x.jpg"), "bad")], 0.1, False, None)
