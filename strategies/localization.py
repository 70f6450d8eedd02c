"""Localization stability: spatial divergence of the dense predictions, and flip-TTA consistency."""

from __future__ import annotations

import numpy as np

from strategies.pool import CycleState, ScoredPool
from strategies.registry import register
from strategies.spatial import region_max_score
from strategies.uncertainty import Aggregation, reduce_per_image


@register("spatial_divergence", needs={"divergence"})
def spatial_divergence(pool: ScoredPool, state: CycleState, rng: np.random.Generator, *, region: int = 1) -> np.ndarray:
    """Mean over non-overlapping region x region blocks of the maxima of each image's stored map.

    The maps are computed once at scoring time (`core.features`, specified by `strategies.spatial`).
    With ``detector.divergence_units: pixels`` (the paper) the stored map already holds the maxima
    of 30 x 30 original-pixel regions (``detector.divergence_region``), so ``region=1`` is the
    paper's image score (the mean of the region maxima). With ``grid`` units (the earlier rule) the
    stored map is the stride-8 grid and ``region=4`` was the earlier default (1 = mean of all).
    """
    if region < 1:
        raise ValueError(f"spatial_divergence.region must be >= 1, got {region}")
    if pool.divergence_maps is None:
        raise ValueError("spatial_divergence needs divergence maps: the pool was scored without them")
    if len(pool.divergence_maps) != pool.num_images:
        raise ValueError(f"{len(pool.divergence_maps)} divergence maps for {pool.num_images} frames")
    return np.array([region_max_score(np.asarray(m), region) for m in pool.divergence_maps], np.float64)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a = np.asarray(a, np.float64)[:, None, :]
    b = np.asarray(b, np.float64)[None, :, :]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (rows, cols) taken by descending IoU, each box at most once, IoU >= threshold."""
    r, c = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[r, c], kind="stable")
    used_r, used_c = set(), set()
    rows, cols = [], []
    for i, j in zip(r[order].tolist(), c[order].tolist(), strict=True):
        if i not in used_r and j not in used_c:
            used_r.add(i)
            used_c.add(j)
            rows.append(i)
            cols.append(j)
    return np.array(rows, np.int64), np.array(cols, np.int64)


def flip_disagreement(
    xyxy: np.ndarray, probs: np.ndarray, flip_xyxy: np.ndarray, flip_probs: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Confidence-weighted disagreement of each matched pair and each unmatched box of one image.

    A matched pair (IoU >= threshold) disagrees by 1 - IoU * (1 - max_c |p_c - q_c|), weighted by
    the larger of its two confidences; a box without a partner disagrees fully (1), weighted by its
    own confidence. Returns one value per pair or unmatched box, each in [0, 1].
    """
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    fconf = flip_probs.max(axis=1) if len(flip_probs) else np.zeros(0)
    rows, cols = greedy_match(pairwise_iou(xyxy, flip_xyxy), iou_threshold)
    iou = pairwise_iou(xyxy[rows], flip_xyxy[cols]).diagonal() if len(rows) else np.zeros(0)
    class_gap = np.abs(probs[rows] - flip_probs[cols]).max(axis=1) if len(rows) else np.zeros(0)
    matched = (1.0 - iou * (1.0 - class_gap)) * np.maximum(conf[rows], fconf[cols])
    lone = np.ones(len(conf), bool)
    lone[rows] = False
    flone = np.ones(len(fconf), bool)
    flone[cols] = False
    return np.concatenate([matched, conf[lone], fconf[flone]])


@register("tta_consistency", needs={"flip"})
def tta_consistency(
    pool: ScoredPool,
    state: CycleState,
    rng: np.random.Generator,
    *,
    iou_threshold: float = 0.5,
    aggregation: Aggregation = "max",
    min_conf: float = 0.0,
    include_empty: bool = False,
) -> np.ndarray:
    """Disagreement between the original and the horizontally flipped prediction (a cheap MC-dropout).

    Boxes of the two passes (flipped ones already mapped back to original coordinates) with
    confidence >= ``min_conf`` are matched greedily by IoU (>= ``iou_threshold``). Each matched
    pair scores 1 - IoU * (1 - max_c |p_c - q_c|): 0 when box and class probabilities agree, up to 1
    when either the box or the class flips; an unmatched box scores 1 (the detection vanished
    under the flip). Each value is weighted by confidence (the larger of a pair's two), so
    low-confidence background boxes, which rarely survive the flip, do not dominate. The image
    score is the max, mean or sum of these values; an image with no box in either pass scores 0
    and is picked only when ``include_empty`` is true.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"tta_consistency.iou_threshold must be in (0, 1], got {iou_threshold}")
    if pool.flip_offsets is None or pool.flip_xyxy is None or pool.flip_probs is None:
        raise ValueError("tta_consistency needs the flipped pass: score the pool with detector.tta_flip: true")
    if len(pool.flip_offsets) != pool.num_images + 1:
        raise ValueError("flip_offsets needs one entry per frame plus one")
    n = pool.num_images
    values: list[np.ndarray] = []
    for i in range(n):
        o, f = pool.boxes_of(i), slice(int(pool.flip_offsets[i]), int(pool.flip_offsets[i + 1]))
        ko = pool.box_conf[o] >= min_conf
        fp = np.asarray(pool.flip_probs[f], np.float64)
        kf = (fp.max(axis=1) if len(fp) else np.zeros(0)) >= min_conf
        values.append(
            flip_disagreement(
                np.asarray(pool.box_xyxy[o])[ko],
                np.asarray(pool.box_probs[o], np.float64)[ko],
                np.asarray(pool.flip_xyxy[f])[kf],
                fp[kf],
                iou_threshold,
            )
        )
    sizes = np.array([len(v) for v in values], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    flat = np.concatenate(values) if values else np.zeros(0)
    scores = reduce_per_image(flat, offsets, aggregation)
    return scores if include_empty else np.where(sizes > 0, scores, np.nan)
