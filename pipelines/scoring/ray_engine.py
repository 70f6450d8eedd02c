"""`alod score` on Ray Data: the pool scored by a pool of actors, written as the local path's shards.

``score.engine: ray`` (or ``ALOD__SCORE__ENGINE=ray``) sends `alod score` here. The frames still
to score become a Ray dataset, one block per shard-sized chunk; ``map_batches`` runs
`ScoreWorker`, an actor holding one `Detector` (one per GPU, or one per CPU slot on a CPU
cluster), over batches of ``detector.batch`` frames. A worker reads each image (a local path
on a filesystem the workers share, an http(s) URL or an object-store URL), scores the batch with
the local path's own `pipelines.scoring.engine.score_batch` and returns the `FrameRecord`s. The driver
puts each chunk back in order and writes it with `score_store.write_shard` under the same
fingerprint, so resuming, `select` and every other reader see the same files whichever engine
wrote them.

Why the driver writes: the shards belong to the DVC-tracked ``data/scores/`` of the repository
where `alod score` runs, and workers on other machines need not share its disk. Per frame, the
boxes, probabilities and embeddings cross the network (a few KB), not the image. The weights
file travels through Ray's object store, so workers need no copy of the model either.

``score.ray_address``: null starts a local Ray (``ray.init()``) for this run and stops it after;
``auto`` joins the cluster this machine belongs to; ``ray://head:10001`` connects a Ray client.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import socket
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from core.detector import Detector, resolve_half
from core.divergence import DEFAULT_DIVERGENCE, Divergence, as_setting
from core.images import ImageLoadError
from core.remote_images import load_location
from pipelines.scoring import store as score_store
from pipelines.scoring.engine import plan_shards, score_batch, scoring_arguments, scoring_settings
from pipelines.scoring.store import FrameRecord

log = logging.getLogger(__name__)

_FRAME_FIELDS = ("frame_id", "image", "video", "frame", "split", "meta", "width", "height")
_LOAD_THREADS = 4  # images read at once per batch (downloads wait on the network, not the CPU)


@dataclass(frozen=True)
class RayOptions:
    """``score.ray_*`` settings. None means: decided from the cluster's resources."""

    address: str | None = None
    workers: int | None = None  # actors (detectors); None = one per GPU of the cluster, else one per CPU slot
    gpus_per_worker: float | None = None  # None = 1 when the cluster has GPUs and detector.device is not cpu
    cpus_per_worker: float = 1.0

    @classmethod
    def from_params(cls, score_cfg: dict[str, Any]) -> RayOptions:
        workers, gpus = score_cfg.get("ray_workers"), score_cfg.get("ray_gpus_per_worker")
        return cls(
            address=score_cfg.get("ray_address") or None,
            workers=None if workers in (None, "auto") else int(workers),
            gpus_per_worker=None if gpus in (None, "auto") else float(gpus),
            cpus_per_worker=float(score_cfg.get("ray_cpus_per_worker") or 1.0),
        )


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (None: start a local one); True when this call started Ray."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False)
    return True


def run(args: argparse.Namespace, params: dict[str, Any], frames: pd.DataFrame, weights: Path) -> int:
    """`pipelines.scoring.score.run` with ``score.engine: ray``."""
    import ray

    score_cfg, det_cfg = params["score"], params["detector"]
    overrides = {k: v for k in ("device", "batch") if (v := getattr(args, k, None)) is not None}
    device = str(overrides.pop("device", det_cfg["device"]))
    # The driver's detector only describes the model (settings, class names): it runs nothing.
    template = Detector.from_params(params, weights, device="cpu", half=False, **overrides)
    options = RayOptions.from_params(score_cfg)
    started = connect(options.address)
    try:
        summary = score_frames_ray(
            frames,
            template,
            **scoring_arguments(params, args),
            options=options,
            half=det_cfg["half"],
            use_gpu=None if device.lower() != "cpu" else False,
        )
    finally:
        if started:
            ray.shutdown()
    log.info(
        "scored %d frames on Ray with %d workers (%d boxes, %d errors, %d shards reused) in %.1f s -> %s",
        summary["frames"],
        summary["ray"]["workers"],
        summary["boxes"],
        summary["errors"],
        summary["shards_reused"],
        summary["seconds"],
        summary["out_dir"],
    )
    return 0


def score_frames_ray(
    frames: pd.DataFrame,
    template: Detector,
    out_dir: str | Path,
    *,
    conf: float = 0.05,
    tta_flip: bool = False,
    divergence_radius: int | dict | Divergence | None = DEFAULT_DIVERGENCE,
    chunk_size: int = 64,
    root: str | Path = ".",
    options: RayOptions | None = None,
    half: bool | str | None = "auto",
    use_gpu: bool | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """`pipelines.scoring.score.score_frames` on the connected Ray cluster; the same shards and summary keys.

    ``template`` describes the model (weights file, imgsz, thresholds, batch); each worker builds its
    own detector from it on its GPU (``use_gpu``: None = when the cluster has GPUs) or CPU slot.
    """
    import ray
    from tqdm import tqdm

    start = time.perf_counter()
    divergence_radius = as_setting(divergence_radius)  # the default is the local engine's: the settings default
    options = options or RayOptions()
    out_dir = Path(out_dir)
    if frames["frame_id"].duplicated().any():
        raise ValueError("frames has duplicate frame_id values")
    if not isinstance(template.weights, str) or not Path(template.weights).exists():
        raise ValueError("the Ray engine needs the model as a weights file or folder the driver can read")
    gpus = _gpus_per_worker(options, use_gpu)
    workers = options.workers or _default_workers(gpus, options.cpus_per_worker)
    settings = scoring_settings(template, conf, tta_flip, divergence_radius)
    settings["fp16"] = resolve_half(half, torch.device("cuda" if gpus else "cpu"))  # the workers' precision
    meta = {"fingerprint": score_store.fingerprint(settings), "class_names": list(template.names), **settings}

    plan = plan_shards(frames, Path(root), out_dir, chunk_size, meta["fingerprint"])
    records, chunks, paths, todo, counts = plan.records, plan.chunks, plan.paths, plan.todo, plan.counts

    peak_rss: dict[str, float] = {}
    first_batch_s, first_batch_frames = None, 0  # actor start-up and the first batch: the fixed cost of a run
    bar = tqdm(total=len(records), unit="img", desc="score (ray)", disable=not progress, dynamic_ncols=True)
    bar.update(len(records) - sum(len(chunks[k]) for k in todo))
    try:
        if todo:
            dataset = _dataset([(k, chunks[k]) for k in todo])
            scored = dataset.map_batches(
                ScoreWorker,
                fn_constructor_kwargs={
                    "weights": [ray.put(_weights_payload(template.weights))],
                    "detector_kwargs": _worker_kwargs(template, half, gpus),
                    "conf": conf,
                    "tta_flip": tta_flip,
                    "divergence_radius": divergence_radius,
                    "expect_fp16": settings["fp16"],
                    "cpu_threads": max(1, int(options.cpus_per_worker)),
                },
                batch_size=template.batch,
                batch_format="pandas",
                # two calls per actor: one batch reads its images while the other is in the model
                compute=ray.data.ActorPoolStrategy(
                    size=workers, max_concurrent_calls_per_actor=2, enable_true_multi_threading=True
                ),
                num_gpus=gpus,
                num_cpus=options.cpus_per_worker,
            )
            pending: dict[int, dict[int, FrameRecord]] = {}
            for batch in scored.iter_batches(batch_size=None, batch_format="pandas"):
                if first_batch_s is None:
                    first_batch_s, first_batch_frames = round(time.perf_counter() - start, 3), len(batch)
                for worker, rss in zip(batch["worker"], batch["peak_rss_mib"], strict=True):
                    peak_rss[worker] = max(peak_rss.get(worker, 0.0), float(rss))
                for k, pos, record in zip(batch["chunk"], batch["pos"], batch["record"], strict=True):
                    k = int(k)
                    pending.setdefault(k, {})[int(pos)] = record
                    counts["boxes"] += record.detections.num_boxes if record.detections is not None else 0
                    counts["errors"] += record.error is not None
                    if len(pending[k]) == len(chunks[k]):
                        done = pending.pop(k)
                        score_store.write_shard(paths[k], [done[i] for i in range(len(chunks[k]))], meta)
                bar.update(len(batch))
                bar.set_postfix(errors=counts["errors"], refresh=False)
            if pending:
                raise RuntimeError(f"Ray returned incomplete chunks {sorted(pending)}; rerun to resume")
    finally:
        bar.close()
    summary = {
        **plan.summary(out_dir, time.perf_counter() - start, meta),
        "ray": {
            "workers": workers,
            "gpus_per_worker": gpus,
            "cpus_per_worker": options.cpus_per_worker,
            "first_batch_s": first_batch_s,
            "first_batch_frames": first_batch_frames,
            "worker_peak_rss_mib": dict(sorted(peak_rss.items())),
        },
    }
    score_store.finish_out_dir(out_dir, len(chunks), summary)
    return summary


def _gpus_per_worker(options: RayOptions, use_gpu: bool | None) -> float:
    import ray

    if use_gpu is False:
        return 0.0
    if options.gpus_per_worker is not None:
        return options.gpus_per_worker
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    if use_gpu and not has_gpus:
        raise RuntimeError("GPU scoring was asked for but the Ray cluster has no GPU")
    return 1.0 if has_gpus else 0.0


def _default_workers(gpus: float, cpus: float) -> int:
    import ray

    resources = ray.cluster_resources()
    available = resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", 1) / cpus
    return max(1, int(available))


def _dataset(chunks: Sequence[tuple[int, list[FrameRecord]]]) -> Any:
    """One block per chunk: blocks are the unit Ray hands out, a chunk is the unit a shard is written in."""
    import ray

    blocks = []
    for k, chunk in chunks:
        block = {name: [getattr(r, name) for r in chunk] for name in _FRAME_FIELDS}
        block["chunk"] = [k] * len(chunk)
        block["pos"] = list(range(len(chunk)))
        blocks.append(pd.DataFrame(block))
    return ray.data.from_pandas(blocks)


def _weights_payload(weights: str) -> dict[str, Any]:
    path = Path(weights)
    if path.is_file():
        return {"name": path.name, "data": path.read_bytes()}
    return {"name": None, "path": str(path)}  # an exported model folder: the workers must see the same path


def _worker_kwargs(template: Detector, half: bool | str | None, gpus: float) -> dict[str, Any]:
    return {
        "device": "auto" if gpus else "cpu",  # Ray gives each GPU worker its own GPU as cuda:0
        "half": half,
        "imgsz": template.imgsz,
        "conf": template.conf,
        "iou": template.iou,
        "max_det": template.max_det,
        "batch": template.batch,
        "agnostic_nms": template.agnostic_nms,
    }


class ScoreWorker:
    """A Ray actor: one detector, scoring batches of manifest rows into `FrameRecord`s."""

    def __init__(
        self,
        weights: list[Any],
        detector_kwargs: dict[str, Any],
        conf: float,
        tta_flip: bool,
        divergence_radius: int | None,
        expect_fp16: bool,
        cpu_threads: int,
    ) -> None:
        import ray

        payload = ray.get(weights[0])
        if payload["name"] is None:
            location = payload["path"]
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="alod-weights-")
            location = os.path.join(self._tmp.name, payload["name"])
            Path(location).write_bytes(payload["data"])
        self.detector = Detector(location, **detector_kwargs)
        if self.detector.device.type == "cpu":
            torch.set_num_threads(cpu_threads)  # ultralytics sets min(8, cores - 1) for the whole machine
        if bool(self.detector.model.fp16) != expect_fp16:
            raise RuntimeError(
                f"worker on {self.detector.device} scores with fp16={bool(self.detector.model.fp16)}, "
                f"but the shards' fingerprint says fp16={expect_fp16}: set detector.half explicitly"
            )
        self.conf, self.tta_flip, self.radius = conf, tta_flip, divergence_radius
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        records = [
            FrameRecord(**{name: _plain(row[name]) for name in _FRAME_FIELDS})
            for row in batch[list(_FRAME_FIELDS)].to_dict("records")
        ]
        with ThreadPoolExecutor(max_workers=min(_LOAD_THREADS, max(1, len(records)))) as pool:
            loaded = list(pool.map(_load, records))
        scored = score_batch(self.detector, loaded, self.conf, self.tta_flip, self.radius)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return pd.DataFrame(
            {
                "chunk": batch["chunk"].to_numpy(),
                "pos": batch["pos"].to_numpy(),
                "record": pd.Series(scored, dtype=object),
                "worker": [self.name] * len(scored),
                "peak_rss_mib": [peak] * len(scored),
            }
        )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _load(record: FrameRecord) -> tuple[FrameRecord, np.ndarray | None]:
    try:
        return record, load_location(record.image)
    except ImageLoadError as exc:
        return replace(record, error=exc.reason), None
