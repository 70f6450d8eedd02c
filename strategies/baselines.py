"""Baselines every informed strategy must beat: uniform random, and random spread evenly over groups."""

from __future__ import annotations

import numpy as np

from strategies.pool import CycleState, ScoredPool
from strategies.registry import register


@register("random")
def random(pool: ScoredPool, state: CycleState, rng: np.random.Generator) -> np.ndarray:
    """Uniformly random frames (seeded)."""
    return rng.random(pool.num_images)


def group_labels(pool: ScoredPool, key: str) -> np.ndarray:
    """(N,) group of each frame: its video for key "video", else the metadata column ``key``."""
    if key == "video":
        return np.asarray(pool.video_ids()).astype(str)
    if key not in pool.metadata:
        raise ValueError(f"balanced_video.key {key!r} is not in the pool; valid: {['video', *sorted(pool.metadata)]}")
    labels = np.asarray(pool.metadata[key])
    if labels.shape != (pool.num_images,):
        raise ValueError(f"metadata {key!r} has shape {labels.shape}, expected ({pool.num_images},)")
    return labels.astype(str)


@register("balanced_video", smoothing=False)
def balanced_video(pool: ScoredPool, state: CycleState, rng: np.random.Generator, *, key: str = "video") -> np.ndarray:
    """Round-robin over groups (videos, or a metadata key: scene, weather, time of day), random within.

    Every group with a selectable frame gets its k-th frame before any group gets its (k+1)-th,
    so under a frame budget the counts per group differ by at most one (unless a group runs out
    of frames, or dt1 / a box budget skips one of its frames). Groups take turns in a seeded
    random order within each round.
    """
    n = pool.num_images
    scores = np.full(n, np.nan)
    selectable = state.selectable_mask(pool)
    idx = np.flatnonzero(selectable)
    if len(idx) == 0:
        return scores
    _, group = np.unique(group_labels(pool, key)[idx], return_inverse=True)
    within = rng.permutation(len(idx))
    order = np.lexsort((within, group))
    sorted_group = group[order]
    first = np.searchsorted(sorted_group, sorted_group, "left")
    round_of = np.empty(len(idx), np.int64)
    round_of[order] = np.arange(len(idx)) - first
    turn = rng.permutation(group.max() + 1)[group]
    # Earlier rounds first; within a round, the groups' random turn order.
    scores[idx] = -(round_of * (group.max() + 1) + turn).astype(np.float64)
    return scores
