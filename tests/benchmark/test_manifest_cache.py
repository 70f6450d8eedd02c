"""A benchmark's cached manifest whose images are gone (the run folder or the data moved) is imported
again instead of failing later inside ultralytics with "No valid images found"."""

from __future__ import annotations

import pandas as pd

from pipelines.benchmark.harness import _stale
from pipelines.datasets.labelmap import LabelMap
from pipelines.datasets.manifest import BOX_COLUMNS, FRAME_COLUMNS, Manifest


def manifest_of(*images: str) -> Manifest:
    frames = pd.DataFrame(
        [[f"d/{i}", image, 640, 480, "", 0, "train", "{}"] for i, image in enumerate(images)], columns=FRAME_COLUMNS
    )
    return Manifest(frames, pd.DataFrame(columns=BOX_COLUMNS), LabelMap(("RBC",)))


def test_a_manifest_whose_images_exist_is_kept(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    assert not _stale(manifest_of("a.jpg", "http://example.invalid/b.jpg"), tmp_path)


def test_a_manifest_naming_missing_images_is_stale(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    assert _stale(manifest_of("a.jpg", "../moved/b.jpg"), tmp_path)
