"""Specification of the `score` stage: one pass over the pool into resumable Parquet shards."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from core.detector import Detector
from core.divergence import DEFAULT_DIVERGENCE, Divergence, divergence_setting
from core.images import load_image
from core.settings import REPO_ROOT, load_params
from pipelines import cli
from pipelines.scoring.score import score_frames
from pipelines.scoring.store import read_score_errors, read_scored_pool, read_summary, shard_path
from strategies.pool import ScoredPool

CONF = 0.05


def manifest(images: list[str | Path], split: str = "train") -> pd.DataFrame:
    """A pool manifest as the import stage writes it (frames.parquet columns)."""
    return pd.DataFrame(
        {
            "frame_id": [f"f{i:03d}" for i in range(len(images))],
            "image": [str(p) for p in images],
            "width": 640,
            "height": 480,
            "video": ["", "", "clip", "clip", *[""] * (len(images) - 4)],
            "frame": [0, 0, 7, 8, *[0] * (len(images) - 4)],
            "split": split,
            "meta": [json.dumps({"scene": f"s{i % 2}"}) for i in range(len(images))],
        }
    )


@pytest.fixture(scope="module")
def pool_images(tmp_path_factory, bccd_images, coco_images) -> list[Path]:
    """Real frames, a blank one (no detections), a missing file and a corrupt one."""
    folder = tmp_path_factory.mktemp("pool")
    blank, corrupt = folder / "blank.jpg", folder / "corrupt.jpg"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 114, np.uint8))
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return [*bccd_images[:2], *coco_images[:3], blank, folder / "missing.jpg", corrupt]


@pytest.fixture(scope="module")
def scored(tmp_path_factory, detector: Detector, pool_images) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("scores")
    summary = score_frames(manifest(pool_images), detector, out, conf=CONF, tta_flip=True, chunk_size=3)
    return out, summary


def test_the_scored_pool_holds_what_the_detector_sees(scored, detector, pool_images) -> None:
    out, summary = scored
    pool = read_scored_pool(out)
    assert isinstance(pool, ScoredPool)
    assert summary["frames"] == 8 and summary["errors"] == 2 and summary["shards"] == 3
    assert list(pool.frame_ids) == [f"f{i:03d}" for i in range(6)]  # the two broken frames are left out
    assert pool.class_names[:2] == ("person", "bicycle") and pool.num_classes == 80
    images = [load_image(p) for p in pool_images[:6]]
    expected = detector.detect(images, conf=CONF, tta_flip=True, divergence_radius=divergence_setting({}))
    np.testing.assert_array_equal(pool.boxes_per_image, [r.num_boxes for r in expected])
    for i, r in enumerate(expected):
        rows = pool.boxes_of(i)
        np.testing.assert_allclose(pool.box_xyxy[rows], r.xyxy, atol=1e-3)
        np.testing.assert_array_equal(pool.box_probs[rows], r.probs)
        np.testing.assert_allclose(pool.box_embeddings[rows], r.embeddings, atol=2e-3)  # stored as float16
        np.testing.assert_allclose(pool.image_embeddings[i], r.image_embedding, atol=1e-6)
        np.testing.assert_allclose(pool.divergence_maps[i], r.divergence, atol=1e-6)
        flips = slice(pool.flip_offsets[i], pool.flip_offsets[i + 1])
        np.testing.assert_allclose(pool.flip_xyxy[flips], r.flip_xyxy, atol=1e-3)
        np.testing.assert_array_equal(pool.flip_probs[flips], r.flip_probs)
    np.testing.assert_array_equal(pool.box_conf, pool.box_probs.max(axis=1))
    assert pool.box_xyxy.dtype == pool.box_embeddings.dtype == pool.image_embeddings.dtype == np.float32


def test_frames_keep_their_size_video_and_metadata(scored) -> None:
    pool = read_scored_pool(scored[0])
    np.testing.assert_array_equal(pool.image_sizes[:4], [[640, 480], [640, 480], [640, 426], [586, 640]])
    assert list(pool.videos[:4]) == ["", "", "clip", "clip"] and list(pool.frame_index[:4]) == [0, 0, 7, 8]
    assert list(pool.metadata["scene"]) == ["s0", "s1", "s0", "s1", "s0", "s1"]


def test_an_image_with_no_detections_is_a_valid_row(scored) -> None:
    pool = read_scored_pool(scored[0])
    blank = 5
    assert pool.boxes_per_image[blank] == 0 and pool.flip_offsets[blank] == pool.flip_offsets[blank + 1]
    assert np.isfinite(pool.image_embeddings[blank]).all() and pool.divergence_maps[blank].shape == (16, 22)
    assert not pool.divergence_maps[blank].any()  # 480 x 640 px in 30 px regions, all zero: no class anywhere


def test_called_as_a_library_it_takes_the_divergence_settings_default(scored) -> None:
    # the `scored` run passes no divergence settings: it gets what params.yaml without detector.divergence_*
    # gives, and the shipped params.yaml holds those same values, so library, `alod score` and /predict agree
    default = divergence_setting({})
    assert default == {"radius": DEFAULT_DIVERGENCE.radius, "region": DEFAULT_DIVERGENCE.region, "units": "pixels"}
    assert scored[1]["divergence_radius"] == default == divergence_setting(load_params()["detector"])
    assert inspect.signature(score_frames).parameters["divergence_radius"].default == Divergence(**default)


def test_a_missing_or_corrupt_image_is_an_error_row_with_its_reason(scored) -> None:
    errors = read_score_errors(scored[0]).set_index("frame_id")
    assert list(errors.index) == ["f006", "f007"]
    assert errors.loc["f006", "error"] == "image not found" and errors.loc["f006", "image"].endswith("missing.jpg")
    assert errors.loc["f007", "error"].startswith("cannot decode image")


class Interrupted(Exception):
    pass


class DiesAfter:
    """The real detector, killed (as by Ctrl-C) on its n-th call."""

    def __init__(self, detector: Detector, calls: int) -> None:
        self._detector, self._calls = detector, calls

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._detector, name)

    def detect(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self._calls -= 1
        if self._calls < 0:
            raise Interrupted
        return self._detector.detect(*args, **kwargs)


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, detector, bccd_images, coco_images) -> None:
    frames = manifest([*bccd_images, *coco_images[:3]])  # 6 frames, 3 shards of 2, one batch per shard
    detector_batch, detector.batch = detector.batch, 2
    try:
        with pytest.raises(Interrupted):
            score_frames(frames, DiesAfter(detector, calls=2), tmp_path, conf=CONF, chunk_size=2, progress=False)
        assert shard_path(tmp_path, 0).exists() and shard_path(tmp_path, 1).exists()
        assert not shard_path(tmp_path, 2).exists() and read_summary(tmp_path) is None
        with pytest.raises(FileNotFoundError, match="no finished scoring run"):
            read_scored_pool(tmp_path)
        finished_before = shard_path(tmp_path, 0).stat().st_mtime_ns

        summary = score_frames(frames, detector, tmp_path, conf=CONF, chunk_size=2, progress=False)
    finally:
        detector.batch = detector_batch
    assert summary["shards_reused"] == 2 and summary["frames_scored"] == 2
    assert shard_path(tmp_path, 0).stat().st_mtime_ns == finished_before
    assert read_scored_pool(tmp_path).num_images == 6

    again = score_frames(frames, detector, tmp_path, conf=CONF, chunk_size=2, progress=False)
    assert again["shards_reused"] == 3 and again["frames_scored"] == 0
    assert again["boxes"] == read_scored_pool(tmp_path).num_boxes > 0 and again["errors"] == 0
    other = score_frames(frames.iloc[:3], detector, tmp_path, conf=0.3, chunk_size=2, progress=False)
    assert other["shards_reused"] == 0  # another threshold is another fingerprint: nothing is reused
    assert sorted(p.name for p in tmp_path.glob("shard-*")) == ["shard-00000.parquet", "shard-00001.parquet"]
    assert read_scored_pool(tmp_path).num_images == 3


def test_the_cli_scores_a_split_of_the_manifest(tmp_path, shared, monkeypatch) -> None:
    bccd = shared / "data" / "bccd" / "BCCD" / "JPEGImages"
    images = [Path("..") / "shared" / bccd.relative_to(shared) / f"BloodImage_0000{i}.jpg" for i in range(5)]
    assert all((REPO_ROOT / p).exists() for p in images)  # relative to the repo root, as the import stage writes
    frames = manifest(images)
    frames.loc[3:, "split"] = "val"
    frames.to_parquet(tmp_path / "frames.parquet")
    monkeypatch.setenv("ALOD__MODEL__IMGSZ", "320")
    code = cli.main(
        [
            "score",
            "--manifest",
            str(tmp_path),
            "--split",
            "train",
            "--limit",
            "2",
            "--out",
            str(tmp_path / "s"),
            "--no-progress",
            "--no-tta-flip",
        ]
    )
    assert code == 0
    pool = read_scored_pool(tmp_path / "s")
    assert list(pool.frame_ids) == ["f000", "f001"] and pool.flip_xyxy is None
    assert read_summary(tmp_path / "s")["imgsz"] == [320, 320]
