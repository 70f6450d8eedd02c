"""The pool the `score` stage stores and the pool `/predict` builds are the same pool: detections
written to a shard and read back (`read_scored_pool`) equal `pool_from_detections` of the same
detections, field by field, for frames with boxes, without boxes, and with a flipped view and a
divergence map."""

from __future__ import annotations

import numpy as np

from core.detector import ImageDetections
from core.scoring import pool_from_detections
from pipelines.scoring.store import FrameRecord, finish_out_dir, read_scored_pool, write_shard

NAMES = ("a", "b", "c")


def detections(boxes: int, seed: int) -> ImageDetections:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(len(NAMES)), boxes).astype(np.float32)
    xy = rng.uniform(0, 50, (boxes, 2)).astype(np.float32)
    emb = rng.normal(size=(boxes, 8)).astype(np.float16).astype(np.float32)  # stored as float16
    flip = rng.dirichlet(np.ones(len(NAMES)), boxes + 1).astype(np.float32)
    return ImageDetections(
        width=64,
        height=48,
        xyxy=np.concatenate([xy, xy + 10], 1),
        conf=probs.max(1),
        cls=probs.argmax(1),
        probs=probs,
        embeddings=emb,
        image_embedding=rng.normal(size=16).astype(np.float32),
        divergence=rng.uniform(size=(3, 4)).astype(np.float32),
        flip_xyxy=rng.uniform(0, 60, (boxes + 1, 4)).astype(np.float32),
        flip_conf=flip.max(1),
        flip_cls=flip.argmax(1),
        flip_probs=flip,
    )


def test_stored_and_in_memory_pools_are_equal(tmp_path):
    dets = [detections(3, 0), detections(0, 1), detections(5, 2)]
    ids = ["f0", "f1", "f2"]
    records = [
        FrameRecord(frame_id=i, image=f"{i}.jpg", width=64, height=48, detections=d)
        for i, d in zip(ids, dets, strict=True)
    ]
    write_shard(tmp_path / "shard-00000.parquet", records, {"fingerprint": "x", "class_names": list(NAMES)})
    finish_out_dir(tmp_path, 1, {"frames": 3})
    stored, built = read_scored_pool(tmp_path), pool_from_detections(ids, dets, NAMES)
    assert list(stored.frame_ids) == list(built.frame_ids) == ids
    assert stored.class_names == built.class_names == NAMES
    for field in (
        "box_offsets",
        "box_xyxy",
        "box_conf",
        "box_probs",
        "box_embeddings",
        "image_embeddings",
        "image_sizes",
        "flip_offsets",
        "flip_xyxy",
        "flip_probs",
    ):
        a, b = getattr(stored, field), getattr(built, field)
        assert a.shape == b.shape and np.array_equal(a, b), field
    assert all(np.array_equal(a, b) for a, b in zip(stored.divergence_maps, built.divergence_maps, strict=True))
