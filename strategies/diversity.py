"""Greedy k-center (farthest-point) selection: coreset on image embeddings, object diversity on boxes.

Memory is O(N): one float32 distance-to-nearest-center vector and one int32 nearest-center id,
updated with one (N, d) x (d,) pass per new center, never an N x N matrix. A pass skips the
points that the triangle inequality proves cannot move closer: if a point's nearest center a is
at distance m and d(a, c) >= 2 m, the new center c is at least m away from it. Once the clusters
of an embedding are covered this leaves a small fraction of each pass (about half the work over
1,000 picks of a 500-cluster mixture); before that, and on unstructured embeddings, each pass is
a full one. The picks are those of the plain algorithm (up to float32 rounding in near ties).

Pools of ``approx_above`` points or more go to `strategies.approx_kcenter`: certified rounds, one
matrix product per round instead of one matrix-vector pass per pick; the exact greedy's picks at
``approx_eps = 0`` (see there for where it departs, and for ``approx_eps > 0``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from strategies.approx_kcenter import BatchedKCenter, certified_cover, in_metric_space
from strategies.budget import Picker
from strategies.registry import Context, register

Metric = Literal["euclidean", "cosine"]
_GATHER_ROWS = 1 << 14  # rows per gathered block in a pruned pass (bounds the copy)
_BATCH_FLOATS = 1 << 22  # (rows x centers) per block when adding many centers at once
_SLACK = 1e-4  # relative margin on the triangle test against float32 rounding
_FULL_PASS_ABOVE = 12  # a straight pass once more than 1/12 of the points are candidates
APPROX_ABOVE = 200_000  # points from which the certified-rounds version runs (see approx_kcenter)


def _as_matrix(points: np.ndarray) -> np.ndarray:
    x = np.asarray(points, np.float32)
    return x if x.ndim == 2 else x.reshape(len(x), -1)


class KCenter:
    """Distances from every point to its nearest center, kept up to date as centers are added.

    Squared distances throughout (|x|^2 - 2 x.c + |c|^2 in float32): the triangle test
    d(a, c) >= 2 m reads d(a, c)^2 >= 4 m^2, so no square root per point and pass.
    """

    def __init__(self, points: np.ndarray, metric: str = "euclidean", prune: bool = True) -> None:
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"unknown metric {metric!r}; valid: ['euclidean', 'cosine']")
        self.metric = metric
        self.prune = prune
        self.x = in_metric_space(self.metric, _as_matrix(points))
        n, d = self.x.shape
        self.sq = np.einsum("ij,ij->i", self.x, self.x)
        self.mind2 = np.full(n, np.inf, np.float32)
        self.assign = np.zeros(n, np.int32)  # meaningful where mind2 is finite
        self._centers = np.empty((16, d), np.float32)
        self._center_sq = np.empty(16, np.float32)
        self.k = 0
        self.rows_computed = 0  # point-to-center distances evaluated so far (a deterministic work count)

    @property
    def mind(self) -> np.ndarray:
        """(N,) distance of each point to its nearest center (inf before any center)."""
        return np.sqrt(np.maximum(self.mind2, 0))

    def _push(self, v: np.ndarray) -> int:
        if self.k == len(self._centers):
            self._centers = np.concatenate([self._centers, np.empty_like(self._centers)])
            self._center_sq = np.concatenate([self._center_sq, np.empty_like(self._center_sq)])
        self._centers[self.k] = v
        self._center_sq[self.k] = v @ v
        self.k += 1
        return self.k - 1

    def _add_one(self, v: np.ndarray, alive: np.ndarray | None) -> None:
        cid = self._push(v)
        vv = self._center_sq[cid]
        cand = alive
        if self.prune and cid > 0:
            to_centers2 = self._center_sq[:cid] - 2 * (self._centers[:cid] @ v) + vv
            # may move closer only if d(a, c) < 2 m, i.e. d(a, c)^2 < 4 m^2 (with slack for rounding)
            cand = to_centers2[self.assign] < self.mind2 * (4 * (1 + _SLACK))
            if alive is not None:
                cand &= alive
        if cand is None or np.count_nonzero(cand) * _FULL_PASS_ABOVE > len(cand):
            # Gathering scattered rows costs ~10x a straight read per row: past ~1/12 of them, one pass wins.
            self.rows_computed += len(self.x)
            d2 = self.x @ v
            d2 *= -2
            d2 += self.sq
            d2 += vv
            better = d2 < self.mind2
            if cand is not None:
                better &= cand
            np.copyto(self.mind2, d2, where=better)
            np.copyto(self.assign, cid, where=better)
            return
        rows = np.flatnonzero(cand)
        self.rows_computed += len(rows)
        for s in range(0, len(rows), _GATHER_ROWS):
            r = rows[s : s + _GATHER_ROWS]
            d2 = self.sq[r] - 2 * (self.x[r] @ v) + vv
            better = d2 < self.mind2[r]
            self.mind2[r[better]] = d2[better]
            self.assign[r[better]] = cid

    def _add_batch(self, vs: np.ndarray) -> None:
        first = self.k
        for v in vs:
            self._push(v)
        c, cc = self._centers[first : self.k], self._center_sq[first : self.k]
        step = max(1, _BATCH_FLOATS // len(c))
        self.rows_computed += len(self.x) * len(c)
        for s in range(0, len(self.x), step):
            d2 = self.sq[s : s + step, None] - 2 * (self.x[s : s + step] @ c.T) + cc[None, :]
            j = d2.argmin(axis=1)
            best = d2[np.arange(len(j)), j]
            r = np.arange(s, s + len(j))
            better = best < self.mind2[r]
            self.mind2[r[better]] = best[better]
            self.assign[r[better]] = first + j[better]

    def add_rows(self, rows: np.ndarray, alive: np.ndarray | None = None) -> None:
        """Make points ``rows`` centers; ``alive`` limits the update to points still selectable."""
        self._add(self.x[np.asarray(rows, np.int64)], alive)

    def add_vectors(self, vectors: np.ndarray, alive: np.ndarray | None = None) -> None:
        """Make outside vectors (e.g. labeled embeddings) centers."""
        self._add(in_metric_space(self.metric, _as_matrix(vectors)), alive)

    def _add(self, vs: np.ndarray, alive: np.ndarray | None) -> None:
        if len(vs) == 0 or len(self.x) == 0:
            for v in vs:
                self._push(v)
            return
        if self.k == 0 or len(vs) > 64:
            self._add_batch(vs)
        else:
            for v in vs:
                self._add_one(v, alive)

    def farthest(self, alive: np.ndarray) -> tuple[int, float] | None:
        """The alive point farthest from every center, or None when no point is alive."""
        if not alive.any():
            return None
        i = int(np.argmax(np.where(alive, self.mind2, -np.inf)))
        return i, float(np.sqrt(max(self.mind2[i], 0.0)))


def greedy_cover(
    kc: KCenter,
    picker: Picker,
    frame_of: np.ndarray,
    points_of: Callable[[int], np.ndarray],
    rng: np.random.Generator,
) -> None:
    """Offer the frame of the farthest alive point until the budget is full.

    An accepted frame's points all become centers (labeling a frame labels all its objects).
    With no center at all the first point is drawn at random (seeded); its value is the
    radius it covers, the distance to the farthest alive point after it.
    """
    while not picker.full:
        alive = picker.available[frame_of]
        if kc.k == 0:
            cands = np.flatnonzero(alive)
            if len(cands) == 0:
                return
            point, value = int(rng.choice(cands)), np.nan
        else:
            got = kc.farthest(alive)
            if got is None:
                return
            point, value = got
        frame = int(frame_of[point])
        if picker.offer(frame, value):
            alive = picker.available[frame_of]
            kc.add_rows(points_of(frame), alive)
            if np.isnan(value):
                picker.values[-1] = float(kc.mind[alive].max()) if alive.any() else 0.0


def cover(
    points: np.ndarray,
    metric: str,
    picker: Picker,
    frame_of: np.ndarray,
    points_of: Callable[[int], np.ndarray],
    rng: np.random.Generator,
    seeds: np.ndarray,
    approx_above: int | None,
    approx_eps: float,
) -> np.ndarray:
    """Greedy k-center seeded with point rows ``seeds``; (N,) distance of each point to its nearest center."""
    if approx_above is not None and len(points) >= approx_above:
        bkc = BatchedKCenter(points, metric)
        if len(seeds):
            bkc.add_rows(seeds)
        certified_cover(bkc, picker, frame_of, points_of, rng, eps=approx_eps)
        return bkc.mind
    kc = KCenter(points, metric)
    if len(seeds):
        kc.add_rows(seeds)
    greedy_cover(kc, picker, frame_of, points_of, rng)
    return kc.mind


@register("coreset", kind="select")
def coreset(
    ctx: Context,
    *,
    metric: Metric = "euclidean",
    approx_above: int | None = APPROX_ABOVE,
    approx_eps: float = 0.0,
) -> np.ndarray:
    """Greedy k-center on image embeddings, seeded with the labeled frames.

    Values are each pick's distance to the nearest labeled or earlier-picked frame; the frames
    left out are ordered by that distance after the picks. Pools of ``approx_above`` frames or
    more (None: never) run in certified rounds (`strategies.approx_kcenter`); ``approx_eps`` > 0 relaxes them.
    """
    pool, picker = ctx.pool, ctx.picker
    labeled = np.flatnonzero(ctx.state.labeled_mask(pool))
    frames, one = np.arange(pool.num_images), lambda f: np.array([f])
    mind = cover(pool.image_embeddings, metric, picker, frames, one, ctx.rng, labeled, approx_above, approx_eps)
    return mind.astype(np.float64)


@register("object_diversity", kind="select")
def object_diversity(
    ctx: Context,
    *,
    metric: Metric = "euclidean",
    min_conf: float | None = None,
    approx_above: int | None = APPROX_ABOVE,
    approx_eps: float = 0.0,
) -> np.ndarray:
    """Greedy k-center on box embeddings: a frame is picked for the objects it adds.

    The farthest box (from every labeled or picked box) brings its frame; all that frame's
    boxes then become centers. Boxes count when their confidence is >= ``min_conf`` (default:
    the budget's box_conf_threshold, the boxes the budget counts). Frames without such boxes
    add no object and are never picked; the budget (frames, boxes or cost) is the Picker's.
    Pools of ``approx_above`` boxes or more (None: never) run in certified rounds.
    """
    pool, picker = ctx.pool, ctx.picker
    threshold = ctx.budget.box_conf_threshold if min_conf is None else min_conf
    rows = np.flatnonzero(pool.box_conf >= threshold)
    frame_of = pool.box_image_index[rows]
    points = pool.box_embeddings if len(rows) == pool.num_boxes else pool.box_embeddings[rows]
    seeds = np.flatnonzero(ctx.state.labeled_mask(pool)[frame_of])
    starts = np.searchsorted(frame_of, np.arange(pool.num_images + 1))
    points_of = lambda f: np.arange(starts[f], starts[f + 1])  # noqa: E731
    mind = cover(points, metric, picker, frame_of, points_of, ctx.rng, seeds, approx_above, approx_eps)
    rest = np.zeros(pool.num_images)
    np.maximum.at(rest, frame_of, mind.astype(np.float64))
    return rest
