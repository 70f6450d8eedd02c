"""Per-task acquisition scores: a one-image `ScoredPool` run through the configured strategy.

The backend sees one task (or one batch) at a time, never the whole pool, so it can only use a
strategy whose score of a frame does not depend on the other frames ("scorers": uncertainty,
spatial_divergence, tta_consistency, random). Pool-level strategies fall back:

- ``hybrid`` -> its own candidate score (``score`` with ``score_params``);
- ``coreset``, ``object_diversity``, ``box_level`` and ``balanced_video`` -> ``uncertainty``
  with its defaults (the `score` / `select` stages rank the whole pool for them).

Temporal smoothing needs neighbouring frames and is ignored here; ``random`` is seeded per task
(seed, task id) so every task gets its own stable value. Class weights see no labeled counts
(``CycleState()``), so they are all ones. Only boxes whose class maps to a label count.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import strategies  # noqa: F401 - registers the built-in strategies
from core.divergence import divergence_setting
from strategies.pool import CycleState, ScoredPool
from strategies.registry import frame_scores, get, validate

log = logging.getLogger(__name__)

POOL_LEVEL = {"balanced_video"}  # scorers whose value of a frame depends on the other frames
FALLBACK = "uncertainty"


def pool_from_detections(
    frame_ids: Sequence[str],
    detections: Sequence[Any],
    class_names: Sequence[str],
    keep_classes: Sequence[int] | None = None,
) -> ScoredPool:
    """A `ScoredPool` of ``detections`` (`core.detector.ImageDetections`), one frame each.

    ``keep_classes`` keeps only the boxes whose class is listed (None keeps every box).
    """
    keep = None if keep_classes is None else np.asarray(sorted(set(int(c) for c in keep_classes)), np.int64)
    nc = len(class_names)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("xyxy", "conf", "probs", "emb", "fxyxy", "fprobs")}
    counts, flip_counts, image_emb, sizes, maps = [], [], [], [], []
    has_flip = all(d.flip_xyxy is not None for d in detections) and len(detections) > 0
    has_maps = all(d.divergence is not None for d in detections) and len(detections) > 0
    box_dim = max((d.embeddings.shape[1] for d in detections if np.ndim(d.embeddings) == 2), default=0)
    img_dim = max((d.image_embedding.shape[0] for d in detections), default=0)
    for d in detections:
        sel = np.ones(len(d.conf), bool) if keep is None else np.isin(d.cls, keep)
        rows["xyxy"].append(np.asarray(d.xyxy, np.float32).reshape(-1, 4)[sel])
        rows["conf"].append(np.asarray(d.conf, np.float32)[sel])
        rows["probs"].append(np.asarray(d.probs, np.float32).reshape(-1, nc)[sel])
        emb = np.asarray(d.embeddings, np.float32)
        ok = emb.ndim == 2 and emb.shape == (len(d.conf), box_dim)
        rows["emb"].append(emb[sel] if ok else np.zeros((int(sel.sum()), box_dim), np.float32))
        counts.append(int(sel.sum()))
        ie = np.asarray(d.image_embedding, np.float32)
        image_emb.append(ie if ie.shape[0] == img_dim else np.zeros(img_dim, np.float32))
        sizes.append((d.width, d.height))
        if has_flip:
            fsel = np.ones(len(d.flip_conf), bool) if keep is None else np.isin(d.flip_cls, keep)
            rows["fxyxy"].append(np.asarray(d.flip_xyxy, np.float32).reshape(-1, 4)[fsel])
            rows["fprobs"].append(np.asarray(d.flip_probs, np.float32).reshape(-1, nc)[fsel])
            flip_counts.append(int(fsel.sum()))
        if has_maps:
            maps.append(np.asarray(d.divergence, np.float32))

    def cat(key: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate(rows[key]) if rows[key] else np.zeros(shape, np.float32)

    return ScoredPool(
        frame_ids=np.asarray([str(f) for f in frame_ids], dtype=object),
        box_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        box_xyxy=cat("xyxy", (0, 4)),
        box_conf=cat("conf", (0,)),
        box_probs=cat("probs", (0, nc)),
        box_embeddings=cat("emb", (0, box_dim)),
        image_embeddings=np.stack(image_emb) if image_emb else np.zeros((0, img_dim), np.float32),
        image_sizes=np.asarray(sizes, np.int32).reshape(-1, 2),
        class_names=tuple(class_names),
        divergence_maps=tuple(maps) if has_maps else None,
        flip_offsets=np.concatenate([[0], np.cumsum(flip_counts)]).astype(np.int64) if has_flip else None,
        flip_xyxy=cat("fxyxy", (0, 4)) if has_flip else None,
        flip_probs=cat("fprobs", (0, nc)) if has_flip else None,
    )


@dataclass(frozen=True)
class DetectionOptions:
    """What one detector pass computes besides boxes: the threshold and the extra outputs."""

    conf: float
    tta_flip: bool
    divergence_radius: dict[str, Any] | None  # `core.divergence` settings; None: no spatial-divergence maps


def detection_options(params: Mapping[str, Any], strategy: str | None = None) -> DetectionOptions:
    """The detection options of the settings for one strategy (only the extra outputs it declares it
    needs), or with ``strategy=None`` for the stored pool that any strategy may read later: divergence
    maps always, the flipped pass when ``detector.tta_flip`` or the configured strategy asks for it.

    The `score` stage and ``/predict`` both call this, so a strategy's per-frame value is computed
    from the same detector outputs on both paths.
    """
    det = params["detector"]
    if strategy is None:
        configured = params["strategy"]["name"]
        needs = frozenset({"divergence"}) | (get(configured).needs if configured else frozenset())
    else:
        needs = get(strategy).needs
    return DetectionOptions(
        conf=float(det["conf_score"]),
        tta_flip=bool(det["tta_flip"]) or "flip" in needs,
        divergence_radius=divergence_setting(det) if "divergence" in needs else None,
    )


def detect_each(detector: Any, images: Sequence[Any], options: DetectionOptions) -> list[Any]:
    """`detector.detect` of ``images`` in one pass; when the pass fails, each image alone, so an
    image the detector cannot handle gets its exception in its place and the others their
    detections. The one per-image failure rule of the `score` stage (an error row for the frame)
    and ``/predict`` (an error for the task); what a failure of every image means is theirs to say."""
    kwargs = {"conf": options.conf, "tta_flip": options.tta_flip, "divergence_radius": options.divergence_radius}
    if not images:
        return []
    try:
        return list(detector.detect(list(images), **kwargs))
    except Exception as exc:  # noqa: BLE001 - find the image that breaks the pass
        if len(images) == 1:
            log.warning("detection failed on one image: %s: %s", type(exc).__name__, exc)
            return [exc]
    out: list[Any] = []
    for image in images:
        try:
            out.extend(detector.detect([image], **kwargs))
        except Exception as exc:  # noqa: BLE001 - this image's failure, not the others'
            log.warning("detection failed on one image: %s: %s", type(exc).__name__, exc)
            out.append(exc)
    return out


def to_ls_score(value: float) -> float:
    """Label Studio shows the lowest prediction score first: a strictly decreasing map into (0, 1).

    Higher acquisition value -> lower score. NaN (the strategy never picks the frame, e.g. an image
    with no box under ``uncertainty``) -> 1.0, after every frame with a value.
    """
    if value is None or math.isnan(float(value)):
        return 1.0
    if math.isinf(float(value)):
        return 0.0 if value > 0 else 1.0
    return 0.5 - math.atan(float(value)) / math.pi


class TaskScorer:
    """The configured strategy as a per-task score (see the module docstring for the fallbacks)."""

    def __init__(self, name: str, params: dict[str, Any] | None = None, seed: int = 0) -> None:
        params = dict(params or {})
        params.pop("temporal", None)
        strategy = get(name)  # unknown names fail here, at start-up
        if strategy.kind == "select" or name in POOL_LEVEL:
            if name == "hybrid":
                fallback, fparams = str(params.get("score", FALLBACK)), dict(params.get("score_params") or {})
            else:
                fallback, fparams = FALLBACK, {}
            if get(fallback).kind == "select" or fallback in POOL_LEVEL:
                fallback, fparams = FALLBACK, {}
            log.info("strategy %r ranks the whole pool; per-task scores use %r %s", name, fallback, fparams)
            name, params = fallback, fparams
        validate(get(name), params)  # a bad parameter fails here, at start-up
        self.name, self.params, self.seed = name, params, int(seed)

    def values(self, pool: ScoredPool, task_ids: Sequence[object]) -> np.ndarray:
        """(N,) acquisition value of each frame of ``pool`` on its own (higher = more informative)."""
        out = np.full(pool.num_images, np.nan)
        for i in range(pool.num_images):
            one = _subset(pool, i)
            rng = np.random.default_rng([self.seed, zlib.crc32(str(task_ids[i]).encode())])
            out[i] = frame_scores(self.name, one, CycleState(), rng, **self.params)[0]
        return out


def _subset(pool: ScoredPool, i: int) -> ScoredPool:
    s = pool.boxes_of(i)
    fs = slice(int(pool.flip_offsets[i]), int(pool.flip_offsets[i + 1])) if pool.flip_offsets is not None else None
    n = s.stop - s.start
    return ScoredPool(
        frame_ids=pool.frame_ids[i : i + 1],
        box_offsets=np.array([0, n], np.int64),
        box_xyxy=pool.box_xyxy[s],
        box_conf=pool.box_conf[s],
        box_probs=pool.box_probs[s],
        box_embeddings=pool.box_embeddings[s],
        image_embeddings=pool.image_embeddings[i : i + 1],
        image_sizes=pool.image_sizes[i : i + 1],
        class_names=pool.class_names,
        divergence_maps=pool.divergence_maps[i : i + 1] if pool.divergence_maps is not None else None,
        flip_offsets=np.array([0, fs.stop - fs.start], np.int64) if fs is not None else None,
        flip_xyxy=pool.flip_xyxy[fs] if fs is not None and pool.flip_xyxy is not None else None,
        flip_probs=pool.flip_probs[fs] if fs is not None and pool.flip_probs is not None else None,
    )
