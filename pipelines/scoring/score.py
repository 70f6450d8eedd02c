"""`alod score`: ONE forward pass over the candidate frames, stored for every strategy.

Streams the frames in batches (images of the next batch load in a background thread
while the model runs), writes one Parquet shard per ``score.chunk_size`` frames and
skips finished shards when rerun, so memory is bounded by a batch and a chunk, not by
the pool. An image that is missing or corrupt becomes an error row with its reason.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.detector import Detector
from core.divergence import DEFAULT_DIVERGENCE, Divergence, as_setting
from core.images import ImageLoadError
from core.remote_images import load_location
from core.settings import load_params, resolve_path
from pipelines.scoring import store as score_store
from pipelines.scoring.engine import plan_shards, score_batch, scoring_arguments, scoring_settings
from pipelines.scoring.store import FrameRecord

log = logging.getLogger(__name__)

MANIFEST_FILE = "frames.parquet"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", help="folder with frames.parquet (default: dataset.manifest_dir)")
    parser.add_argument("--split", help="score the frames of this split (default: score.split, else all)")
    parser.add_argument("--limit", type=int, help="score only the first N frames")
    parser.add_argument("--out", help="output folder of the shards (default: score.out_dir)")
    parser.add_argument("--weights", help="model to score with (default: score.weights, else model.base_weights)")
    parser.add_argument("--device", help="auto, cpu, 0 ... (default: detector.device)")
    parser.add_argument("--batch", type=int, help="images per forward pass (default: detector.batch)")
    parser.add_argument(
        "--tta-flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also score a horizontally flipped view (default: detector.tta_flip)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_frames(manifest_dir: str | Path, split: str | None = None, limit: int | None = None) -> pd.DataFrame:
    frames = pd.read_parquet(Path(manifest_dir) / MANIFEST_FILE)
    if split:
        frames = frames[frames["split"] == split]
    if limit is not None:
        frames = frames.iloc[:limit]
    return frames.reset_index(drop=True)


def run(args: argparse.Namespace, frames: pd.DataFrame | None = None) -> int:
    """Score ``frames`` (a manifest DataFrame) or the manifest rows the arguments select."""
    params = load_params()
    score_cfg = params["score"]
    if frames is None:
        manifest = getattr(args, "manifest", None) or params["dataset"]["manifest_dir"]
        split = getattr(args, "split", None) or score_cfg["split"]
        frames = load_frames(resolve_path(params, manifest), split, getattr(args, "limit", None))
    elif getattr(args, "limit", None) is not None:
        frames = frames.iloc[: args.limit]
    overrides = {k: v for k in ("device", "batch") if (v := getattr(args, k, None)) is not None}
    weights = getattr(args, "weights", None) or score_cfg["weights"] or params["model"]["base_weights"]
    engine = score_cfg["engine"]
    if engine == "ray":
        from pipelines.scoring import ray_engine as score_ray  # ray is an optional extra (alod[scale])

        return score_ray.run(args, params, frames, resolve_path(params, weights))
    if engine != "local":
        raise ValueError(f"score.engine must be 'local' or 'ray', got {engine!r}")
    detector = Detector.from_params(params, resolve_path(params, weights), **overrides)
    summary = score_frames(frames, detector, **scoring_arguments(params, args))
    log.info(
        "scored %d frames (%d boxes, %d errors, %d shards reused) in %.1f s -> %s",
        summary["frames"],
        summary["boxes"],
        summary["errors"],
        summary["shards_reused"],
        summary["seconds"],
        summary["out_dir"],
    )
    return 0


def score_frames(
    frames: pd.DataFrame,
    detector: Detector,
    out_dir: str | Path,
    *,
    conf: float = 0.05,
    tta_flip: bool = False,
    divergence_radius: int | dict | Divergence | None = DEFAULT_DIVERGENCE,
    chunk_size: int = 64,
    root: str | Path = ".",
    progress: bool = True,
) -> dict[str, Any]:
    """Score every row of ``frames`` into Parquet shards under ``out_dir``; returns the run summary.

    ``divergence_radius``: the spatial-divergence settings (`core.divergence`: a settings dict, a
    `Divergence`, an int for the earlier grid rule, None for no maps); the default is params.yaml's
    default, the paper's pixel rule, as `alod score` and ``/predict`` use."""
    from tqdm import tqdm

    divergence_radius = as_setting(divergence_radius)
    start = time.perf_counter()
    out_dir = Path(out_dir)
    if frames["frame_id"].duplicated().any():
        raise ValueError("frames has duplicate frame_id values")
    settings = scoring_settings(detector, conf, tta_flip, divergence_radius)
    meta = {"fingerprint": score_store.fingerprint(settings), "class_names": list(detector.names), **settings}
    plan = plan_shards(frames, Path(root), out_dir, chunk_size, meta["fingerprint"])
    records, chunks, paths, todo, counts = plan.records, plan.chunks, plan.paths, plan.todo, plan.counts
    bar = tqdm(total=len(records), unit="img", desc="score", disable=not progress, dynamic_ncols=True)
    bar.update(len(records) - sum(len(chunks[k]) for k in todo))
    batches = [(k, chunks[k][i : i + detector.batch]) for k in todo for i in range(0, len(chunks[k]), detector.batch)]
    done: dict[int, list[FrameRecord]] = {}
    try:
        scored_batches = _pipelined(detector, batches, conf, tta_flip, divergence_radius)
        for (k, _), scored in zip(batches, scored_batches, strict=True):
            done.setdefault(k, []).extend(scored)
            counts["boxes"] += sum(r.detections.num_boxes for r in scored if r.detections is not None)
            counts["errors"] += sum(r.error is not None for r in scored)
            bar.update(len(scored))
            bar.set_postfix(errors=counts["errors"], refresh=False)
            if len(done[k]) == len(chunks[k]):
                score_store.write_shard(paths[k], done.pop(k), meta)
    finally:
        bar.close()
    summary = plan.summary(out_dir, time.perf_counter() - start, meta)
    score_store.finish_out_dir(out_dir, len(chunks), summary)
    return summary


def _load(records: list[FrameRecord]) -> list[tuple[FrameRecord, np.ndarray | None]]:
    loaded: list[tuple[FrameRecord, np.ndarray | None]] = []
    for record in records:
        try:
            loaded.append((record, load_location(record.image)))
        except ImageLoadError as exc:
            loaded.append((replace(record, error=exc.reason), None))
    return loaded


def _pipelined(
    detector: Detector,
    batches: list[tuple[int, list[FrameRecord]]],
    conf: float,
    tta_flip: bool,
    radius: int | dict | None,
    workers: int = 2,
) -> Iterator[list[FrameRecord]]:
    """Scored batches in order, two at a time.

    `Detector.detect` holds its lock only for the forward pass, so while one batch runs
    through the model the other decodes its images or does its NMS, embeddings and
    divergence maps. At most ``workers + 1`` batches are in memory.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        queue: deque[Future[list[FrameRecord]]] = deque()
        for _, records in batches:
            queue.append(pool.submit(_load_and_score, detector, records, conf, tta_flip, radius))
            if len(queue) > workers:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def _load_and_score(
    detector: Detector, records: list[FrameRecord], conf: float, tta_flip: bool, radius: int | dict | None
) -> list[FrameRecord]:
    return score_batch(detector, _load(records), conf, tta_flip, radius)
