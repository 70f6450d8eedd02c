"""Box-level queries: rank individual predicted boxes and ask about the top K with their frames.

The query threshold t_d (``min_conf``): only boxes with confidence >= t_d are candidates. The
box-level paper sets t_d low to maximise recall (a missed object can never be asked about), so
the default is 0.05, the scoring threshold (`detector.conf_score`): every scored box is a
candidate. ``min_conf=None`` keeps the earlier default by name: the budget's
``box_conf_threshold`` (0.25), the boxes shown as pre-annotations.

``random_box`` is the paper's random baseline at the box level: the same candidates and budget,
ranked at random.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from strategies.budget import Picker
from strategies.diversity import KCenter, Metric
from strategies.registry import Context, rank, register
from strategies.uncertainty import box_uncertainty

BoxMeasure = Literal["least_confidence", "margin", "entropy", "least_confidence_binary", "entropy_classes", "coreset"]


@register("box_level", kind="select", box_level=True)
def box_level(
    ctx: Context,
    *,
    measure: BoxMeasure = "least_confidence",
    min_conf: float | None = 0.05,
    metric: Metric = "euclidean",
) -> np.ndarray:
    """The K most informative predicted boxes (``Selection.box_indices``, in rank order) and their frames.

    Informativeness is 1 - max probability (``least_confidence``), the margin, the entropy (see
    `strategies.uncertainty`), or ``coreset``: greedy k-center over box embeddings seeded with
    the boxes of labeled frames, one box at a time. Only boxes with confidence >= ``min_conf``
    (t_d; None: the budget's box_conf_threshold) are queried.
    Each queried box costs one box and its frame one frame the first time, so K follows from
    ``budget.boxes`` and/or ``budget.cost``; ``budget.frames`` caps the distinct frames.
    Frames are listed in the order of their first queried box, valued by that box's score.
    """
    pool = ctx.pool
    rows = _candidates(ctx, min_conf)
    rest = np.zeros(pool.num_images)
    if measure == "coreset":
        _coreset_boxes(ctx, rows, metric, rest)
        return rest
    scores = box_uncertainty(pool.box_probs[rows], measure).astype(np.float64)
    return _take_in_order(ctx, rows, scores)


@register("random_box", kind="select", box_level=True)
def random_box(ctx: Context, *, min_conf: float | None = 0.05) -> np.ndarray:
    """Random predicted boxes with confidence >= ``min_conf`` (t_d; None: the budget's
    box_conf_threshold) under the box / cost budget: the box-level random baseline."""
    rows = _candidates(ctx, min_conf)
    return _take_in_order(ctx, rows, ctx.rng.random(len(rows)))


def _candidates(ctx: Context, min_conf: float | None) -> np.ndarray:
    budget = ctx.budget
    if budget.boxes is None and budget.cost is None:
        raise ValueError("box-level strategies need a box budget (budget.boxes) or a cost budget (budget.cost)")
    threshold = budget.box_conf_threshold if min_conf is None else min_conf
    return np.flatnonzero((ctx.pool.box_conf >= threshold) & ctx.picker.available[ctx.pool.box_image_index])


def _take_in_order(ctx: Context, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Offer the candidate boxes by descending score until the budget is spent; frame rest scores."""
    image_of, picker = ctx.pool.box_image_index, ctx.picker
    rest = np.zeros(ctx.pool.num_images)
    np.maximum.at(rest, image_of[rows], scores)
    for k in rank(scores, np.ones(len(rows), bool), ctx.rng):
        if _exhausted(picker):
            break
        picker.offer_box(int(rows[k]), int(image_of[rows[k]]), float(scores[k]))
    return rest


def _exhausted(picker: Picker) -> bool:
    b = picker.budget
    if b.boxes is not None and picker.boxes_spent >= b.boxes:
        return True
    return b.cost is not None and b.spent(picker.frames_spent, picker.boxes_spent + 1) > b.cost + 1e-9


def _coreset_boxes(ctx: Context, rows: np.ndarray, metric: str, rest: np.ndarray) -> None:
    pool, picker = ctx.pool, ctx.picker
    image_of = pool.box_image_index
    kc = KCenter(pool.box_embeddings[rows], metric)
    labeled = ctx.state.labeled_mask(pool)
    seeds = pool.box_embeddings[labeled[image_of]]
    if len(seeds):
        kc.add_vectors(seeds)
    frame_of = image_of[rows]
    alive = np.ones(len(rows), bool)
    queried = np.zeros(pool.num_images, bool)
    while alive.any() and not _exhausted(picker):
        first = kc.k == 0
        if first:
            point, value = int(ctx.rng.choice(np.flatnonzero(alive))), 0.0
        else:
            point, value = kc.farthest(alive)  # type: ignore[misc]
        alive[point] = False
        accepted = picker.offer_box(int(rows[point]), int(frame_of[point]), value)
        queried[frame_of[point]] |= accepted
        alive &= picker.available[frame_of] | queried[frame_of]
        if accepted:
            kc.add_rows(np.array([point]), alive)
            if first and alive.any():
                picker.values[-1] = float(kc.mind[alive].max())
    rest_mind = np.where(np.isfinite(kc.mind), kc.mind, 0.0).astype(np.float64)
    np.maximum.at(rest, frame_of, rest_mind)
