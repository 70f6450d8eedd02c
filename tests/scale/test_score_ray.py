"""Scoring on Ray Data writes the shards the local path writes: `select` cannot tell which engine ran."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[scale]')")

from pipelines.scoring import score  # noqa: E402
from pipelines.scoring.ray_engine import RayOptions, score_frames_ray  # noqa: E402
from pipelines.scoring.score import score_frames  # noqa: E402
from pipelines.scoring.store import read_score_errors, read_scored_pool, read_summary, shard_meta, shard_path  # noqa: E402
from strategies import Budget, CycleState, select  # noqa: E402
from tests.scale.served import serve_folder  # noqa: E402

CONF = 0.05
TOL = 1e-5


def manifest(images: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "frame_id": [f"f{i:03d}" for i in range(len(images))],
            "image": images,
            "width": 640,
            "height": 480,
            "video": ["", "clip", "clip", *[""] * (len(images) - 3)],
            "frame": [0, 7, 8, *[0] * (len(images) - 3)],
            "split": "train",
            "meta": [json.dumps({"scene": f"s{i % 2}"}) for i in range(len(images))],
        }
    )


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory, shared: Path) -> Path:
    """Real BCCD and COCO frames, a blank frame, a corrupt file (a missing one is named in the manifest)."""
    folder = tmp_path_factory.mktemp("images")
    for src in [
        *sorted((shared / "data" / "bccd" / "BCCD" / "JPEGImages").glob("*.jpg"))[:3],
        *sorted((shared / "data" / "coco128" / "images" / "val2017").glob("*.jpg"))[:3],
    ]:
        (folder / src.name).symlink_to(src)
    cv2.imwrite(str(folder / "zz-blank.jpg"), np.full((480, 640, 3), 114, np.uint8))
    (folder / "zz-corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return folder


@pytest.fixture(scope="module")
def names(pool_dir: Path) -> list[str]:
    return [*sorted(p.name for p in pool_dir.iterdir()), "zz-missing.jpg"]


@pytest.fixture(scope="module")
def local_scores(tmp_path_factory, detector, pool_dir: Path, names: list[str]) -> Path:
    out = tmp_path_factory.mktemp("local")
    score_frames(manifest([str(pool_dir / n) for n in names]), detector, out, conf=CONF, tta_flip=True, chunk_size=3)
    return out


@pytest.fixture(scope="module")
def ray_scores(tmp_path_factory, ray_local, detector, pool_dir: Path, names: list[str]) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ray")
    frames = manifest([str(pool_dir / n) for n in names])
    summary = score_frames_ray(
        frames, detector, out, conf=CONF, tta_flip=True, chunk_size=3, options=RayOptions(workers=2), progress=False
    )
    return out, summary


def assert_same_pool(a: Path, b: Path) -> None:
    pa, pb = read_scored_pool(a), read_scored_pool(b)
    assert list(pa.frame_ids) == list(pb.frame_ids)
    assert pa.class_names == pb.class_names
    np.testing.assert_array_equal(pa.box_offsets, pb.box_offsets)  # the same boxes in every frame
    np.testing.assert_allclose(pa.box_xyxy, pb.box_xyxy, atol=TOL)
    np.testing.assert_allclose(pa.box_probs, pb.box_probs, atol=TOL)
    np.testing.assert_allclose(pa.box_conf, pb.box_conf, atol=TOL)
    np.testing.assert_allclose(pa.box_embeddings, pb.box_embeddings, atol=TOL)
    np.testing.assert_allclose(pa.image_embeddings, pb.image_embeddings, atol=TOL)
    for ma, mb in zip(pa.divergence_maps, pb.divergence_maps, strict=True):
        np.testing.assert_allclose(ma, mb, atol=TOL)
    np.testing.assert_array_equal(pa.flip_offsets, pb.flip_offsets)
    np.testing.assert_allclose(pa.flip_probs, pb.flip_probs, atol=TOL)
    np.testing.assert_array_equal(pa.image_sizes, pb.image_sizes)
    np.testing.assert_array_equal(pa.videos, pb.videos)
    np.testing.assert_array_equal(pa.frame_index, pb.frame_index)
    assert pa.metadata.keys() == pb.metadata.keys()
    errors_a, errors_b = (read_score_errors(p).drop(columns="image") for p in (a, b))
    pd.testing.assert_frame_equal(errors_a, errors_b)


def test_ray_writes_the_shards_of_the_local_path(local_scores: Path, ray_scores) -> None:
    out, summary = ray_scores
    assert summary["frames"] == 9 and summary["shards"] == 3 and summary["errors"] == 2
    assert summary["ray"]["workers"] == 2 and len(summary["ray"]["worker_peak_rss_mib"]) >= 1
    assert summary["boxes"] == read_summary(local_scores)["boxes"] > 0
    assert_same_pool(local_scores, out)
    for k in range(3):  # same frames per shard, same fingerprint: a rerun with either engine resumes either's
        a, b = shard_path(local_scores, k), shard_path(out, k)
        assert shard_meta(a) == shard_meta(b)
        assert pq.read_table(a).column("frame_id").to_pylist() == pq.read_table(b).column("frame_id").to_pylist()
        assert pq.read_schema(a).equals(pq.read_schema(b))


def test_select_picks_the_same_frames_from_either_engine(local_scores: Path, ray_scores) -> None:
    pools = [read_scored_pool(local_scores), read_scored_pool(ray_scores[0])]
    for name, params in [("uncertainty", {"measure": "entropy"}), ("object_diversity", {}), ("coreset", {})]:
        a, b = (select(name, p, Budget(frames=3), CycleState(), seed=0, **params) for p in pools)
        assert a.indices.tolist() == b.indices.tolist(), name
        np.testing.assert_allclose(a.values, b.values, atol=1e-4)


def test_a_rerun_on_ray_reuses_the_local_paths_finished_shards(ray_local, local_scores, detector, pool_dir, names):
    frames = manifest([str(pool_dir / n) for n in names])
    summary = score_frames_ray(frames, detector, local_scores, conf=CONF, tta_flip=True, chunk_size=3, progress=False)
    assert summary["shards_reused"] == 3 and summary["frames_scored"] == 0
    assert summary["errors"] == 2


@pytest.fixture(scope="module")
def http_root(pool_dir: Path):
    with serve_folder(pool_dir) as url:
        yield url


def test_ray_reads_images_from_urls(ray_local, tmp_path, detector, http_root, local_scores, names) -> None:
    frames = manifest([f"{http_root}/{n}" for n in names])
    options = RayOptions(workers=1)
    summary = score_frames_ray(frames, detector, tmp_path, conf=CONF, tta_flip=True, chunk_size=3, options=options)
    assert summary["errors"] == 2
    assert_same_pool(local_scores, tmp_path)
    errors = read_score_errors(tmp_path).set_index("frame_id")
    assert errors.loc["f008", "image"].startswith("http://") and errors.loc["f008", "error"] == "image not found"
    assert errors.loc["f007", "error"].startswith("cannot decode image")


def test_the_score_stage_dispatches_on_score_engine(ray_local, tmp_path, monkeypatch, coco_weights, pool_dir, names):
    monkeypatch.setenv("ALOD__SCORE__ENGINE", "ray")
    monkeypatch.setenv("ALOD__SCORE__RAY_WORKERS", "1")
    monkeypatch.setenv("ALOD__SCORE__CHUNK_SIZE", "4")
    monkeypatch.setenv("ALOD__DETECTOR__TTA_FLIP", "false")
    args = argparse.Namespace(weights=str(coco_weights), out=str(tmp_path), no_progress=True)
    assert score.run(args, frames=manifest([str(pool_dir / n) for n in names[:5]])) == 0
    summary = read_summary(tmp_path)
    assert summary["ray"]["workers"] == 1 and summary["shards"] == 2 and summary["frames"] == 5
    assert read_scored_pool(tmp_path).num_images == 5
    assert ray_local.is_initialized()  # a Ray it did not start stays up


def test_an_unknown_engine_is_an_error(monkeypatch, coco_weights) -> None:
    monkeypatch.setenv("ALOD__SCORE__ENGINE", "spark")
    args = argparse.Namespace(weights=str(coco_weights), no_progress=True)
    with pytest.raises(ValueError, match="score.engine must be 'local' or 'ray', got 'spark'"):
        score.run(args, frames=manifest(["x.jpg"] * 3))
