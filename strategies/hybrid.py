"""Uncertainty for candidates, then diversity among them (as PPAL does)."""

from __future__ import annotations

from typing import Any

import numpy as np

from strategies.budget import expected_frames
from strategies.diversity import KCenter, Metric, greedy_cover
from strategies.registry import Context, frame_scores, rank, register


@register("hybrid", kind="select", smoothing=True)
def hybrid(
    ctx: Context,
    *,
    score: str = "uncertainty",
    score_params: dict[str, Any] | None = None,
    candidates: float = 3.0,
    metric: Metric = "euclidean",
    seed_with_labeled: bool = True,
) -> np.ndarray:
    """Top ``candidates`` x budget frames by a registered frame score, then greedy k-center among them.

    The score is any registered scorer (``score``, with ``score_params``; temporal smoothing,
    when configured, applies to it). Diversity is k-center on image embeddings, seeded with the
    labeled frames when ``seed_with_labeled``. The budget in frames is estimated for box or cost
    budgets; if the candidates run out before the budget does, the next block of candidates by
    score joins and the k-center goes on. Values are k-center distances; the frames left out are
    ordered by score.
    """
    if not candidates >= 1:
        raise ValueError(f"hybrid.candidates must be >= 1 (a multiple of the budget), got {candidates}")
    if score == "hybrid":
        raise ValueError("hybrid cannot use itself as its score")
    pool, picker = ctx.pool, ctx.picker
    scores = ctx.smooth(frame_scores(score, pool, ctx.state, ctx.rng, **(score_params or {})))
    order = rank(scores, picker.available & ~np.isnan(scores), ctx.rng)
    block = max(int(np.ceil(candidates * expected_frames(pool, ctx.budget, picker.available))), 1)
    labeled = np.flatnonzero(ctx.state.labeled_mask(pool))
    taken = 0
    while not picker.full and taken < len(order):
        taken = min(taken + block, len(order))
        cand = order[:taken]
        kc = KCenter(pool.image_embeddings[cand], metric)
        seeds = np.concatenate([labeled if seed_with_labeled else labeled[:0], np.array(picker.picked, np.int64)])
        if len(seeds):
            kc.add_vectors(pool.image_embeddings[seeds])
        position = {int(f): k for k, f in enumerate(cand)}
        greedy_cover(kc, picker, cand, lambda f, pos=position: np.array([pos[f]]), ctx.rng)
    return scores
