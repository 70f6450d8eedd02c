"""What both scoring engines share: settings -> arguments, the shard plan, and scoring one batch.

The local engine (`pipelines.scoring.score`) and the Ray engine (`pipelines.scoring.ray_engine`)
cut the pool into the same shards and score a batch with the same function, so a run of either
resumes from the shards the other wrote and both store identical rows.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.detector import Detector
from core.divergence import as_setting
from core.images import is_url
from core.scoring import DetectionOptions, detect_each, detection_options
from core.settings import resolve_path
from pipelines.scoring import store as score_store
from pipelines.scoring.store import FrameRecord


def scoring_arguments(params: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of `score_frames` (and of the Ray engine's twin) from params.yaml and the CLI."""
    options = detection_options(params)
    tta = getattr(args, "tta_flip", None)
    return {
        "out_dir": resolve_path(params, getattr(args, "out", None) or params["score"]["out_dir"]),
        "conf": options.conf,
        "tta_flip": options.tta_flip if tta is None else bool(tta),
        "divergence_radius": options.divergence_radius,
        "chunk_size": int(params["score"]["chunk_size"]),
        "root": Path(params["_root"]),
        "progress": not getattr(args, "no_progress", False),
    }


def scoring_settings(detector: Detector, conf: float, tta_flip: bool, divergence_radius: Any) -> dict[str, Any]:
    """Everything that changes the stored scores; its hash decides whether a shard can be reused."""
    return {
        "format_version": score_store.FORMAT_VERSION,
        "weights": detector.weights if isinstance(detector.weights, str) else module_digest(detector.weights),
        "imgsz": detector.imgsz,
        "fp16": bool(detector.model.fp16),
        "conf": conf,
        "iou": detector.iou,
        "max_det": detector.max_det,
        "agnostic_nms": detector.agnostic_nms,
        "tta_flip": tta_flip,
        "divergence_radius": as_setting(divergence_radius),
    }


def module_digest(module: torch.nn.Module) -> str:
    """Content hash of an in-memory model (a weights file is hashed by `score_store.fingerprint`)."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"module:{digest.hexdigest()[:16]}"


@dataclass
class ShardPlan:
    """The pool cut into shards, and which of them are still to score. Shared by both engines, so a
    run of either resumes from the shards the other wrote."""

    records: list[FrameRecord]
    chunks: list[list[FrameRecord]]
    paths: list[Path]
    todo: list[int]
    counts: dict[str, int]  # boxes and errors so far (the finished shards')

    def summary(self, out_dir: Path, seconds: float, meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "out_dir": str(out_dir),
            "frames": len(self.records),
            "shards": len(self.chunks),
            "shards_reused": len(self.chunks) - len(self.todo),
            "frames_scored": sum(len(self.chunks[k]) for k in self.todo),
            "boxes": self.counts["boxes"],
            "errors": self.counts["errors"],
            "seconds": round(seconds, 3),
            **meta,
        }


def plan_shards(frames: pd.DataFrame, root: Path, out_dir: Path, chunk_size: int, fingerprint: str) -> ShardPlan:
    records = frame_records(frames, root)
    chunks = [records[i : i + chunk_size] for i in range(0, len(records), max(1, chunk_size))]
    score_store.prepare_out_dir(out_dir)
    paths = [score_store.shard_path(out_dir, k) for k in range(len(chunks))]
    todo = [
        k
        for k, chunk in enumerate(chunks)
        if not score_store.shard_is_done(paths[k], [r.frame_id for r in chunk], fingerprint)
    ]
    counts = {"boxes": 0, "errors": 0}
    for k in sorted(set(range(len(chunks))) - set(todo)):
        boxes, errors = score_store.shard_counts(paths[k])
        counts["boxes"] += boxes
        counts["errors"] += errors
    return ShardPlan(records, chunks, paths, todo, counts)


def frame_records(frames: pd.DataFrame, root: Path) -> list[FrameRecord]:
    def text(name: str, default: str = "") -> Sequence[Any]:
        return frames[name].fillna(default).astype(str).tolist() if name in frames else [default] * len(frames)

    def number(name: str) -> Sequence[int]:
        return frames[name].fillna(0).astype(np.int64).tolist() if name in frames else [0] * len(frames)

    images = [p if is_url(p) or not p else str(resolve_path({"_root": str(root)}, p)) for p in text("image")]
    return [
        FrameRecord(frame_id=f, image=i, video=v, frame=n, split=s, meta=m or "{}", width=w, height=h)
        for f, i, v, n, s, m, w, h in zip(
            text("frame_id"),
            images,
            text("video"),
            number("frame"),
            text("split"),
            text("meta", "{}"),
            number("width"),
            number("height"),
            strict=True,
        )
    ]


def score_batch(
    detector: Detector,
    loaded: list[tuple[FrameRecord, np.ndarray | None]],
    conf: float,
    tta_flip: bool,
    radius: Any,
) -> list[FrameRecord]:
    ok = [i for i, (_, image) in enumerate(loaded) if image is not None]
    out = [record for record, _ in loaded]
    options = DetectionOptions(conf=conf, tta_flip=tta_flip, divergence_radius=radius)
    dets = detect_each(detector, [loaded[i][1] for i in ok], options)
    if dets and all(isinstance(d, Exception) for d in dets):
        raise dets[0]  # every frame failing is not about the frames (a broken model, no memory): stop
    for i, det in zip(ok, dets, strict=True):
        if isinstance(det, Exception):
            out[i] = replace(out[i], error=f"detection failed: {type(det).__name__}: {det}")
        else:
            out[i] = replace(out[i], width=det.width, height=det.height, detections=det)
    return out
