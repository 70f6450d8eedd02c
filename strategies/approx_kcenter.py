"""Greedy k-center for pools of millions of points: certified rounds, one matrix product per round.

The exact version (`strategies.diversity.KCenter`) updates every point's distance to its nearest
center after every pick: one (N, d) matrix-vector pass per pick, bound by memory bandwidth (a
million 448-d float32 box embeddings are 1.8 GB to read per pick). Here picks come in rounds:

1. The ``candidates`` alive points farthest from every center become the round's candidates;
   ``tau`` is the largest distance of any other alive point.
2. Picks are made among the candidates alone, updating only their distances (C x d per new
   center). Distances only shrink as centers are added, so a candidate farther than ``tau`` is
   the farthest alive point of the whole pool: the pick the exact greedy makes.
3. When no candidate beats ``tau``, the round's new centers are applied to all N points at once:
   a blocked (N, d) x (d, B) matrix product and a row minimum, compute-bound instead of
   memory-bound (about 13x the flops per second of the matrix-vector pass on the 2-core dev box),
   skipping the points that the triangle inequality proves no new center can reach (a point at
   distance m from its center a, where every new center is at least 2 m from a).

Why numpy's BLAS and not FAISS for step 3: it is an exhaustive nearest-center search of N
queries against the B centers of one round, which FAISS also answers by brute force;
``IndexFlatL2.search(x, 1)`` measured 18-24 GFLOP/s against 77 GFLOP/s for the blocked numpy
product on the dev box (200k x 448 queries, 100 centers). An index (IVF, HNSW) would help the
reverse question, nearest points to a center, which greedy k-center does not ask.

Where it departs from the exact greedy:

- ``eps > 0`` lets a round go on with a candidate that is only within a factor (1 - eps) of
  ``tau``: fewer rounds, but such a pick may not be the farthest point. Every such pick is
  counted (``relaxed_picks``); its distance is still at least (1 - eps) of the farthest one,
  which keeps Gonzalez' bound at 2 / (1 - eps) times the optimal radius. ``eps = 0`` takes only
  certified picks.
- Distances are float32, and a matrix product rounds them differently from a matrix-vector one:
  picks whose distances tie to within rounding may come in another order (as between the pruned
  and the plain exact version).
- The distances returned for the frames left out are exact for every point, also for frames the
  picker retired (the exact version stops updating those).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from strategies.budget import Picker

_BLOCK_FLOATS = 1 << 22  # (rows x new centers) per block of the bulk update (a 16 MB temporary)
_SLACK = 1e-4  # relative margin on the triangle test against float32 rounding
_FULL_PASS_ABOVE = 12  # a straight pass once more than 1/12 of the points may move (gathers cost ~10x)
_CANDIDATE_FLOATS = 1 << 21  # candidates x d: the block read per pick stays in cache (8 MB)


def in_metric_space(metric: str, v: np.ndarray) -> np.ndarray:
    """Contiguous float32 rows whose euclidean distance is the metric's: unit rows for "cosine"."""
    if metric == "cosine":
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return np.ascontiguousarray(v / np.maximum(norms, 1e-12), dtype=np.float32)
    return np.ascontiguousarray(v, dtype=np.float32)


class BatchedKCenter:
    """Squared distances of every point to its nearest center; new centers wait for the next `flush`."""

    def __init__(self, points: np.ndarray, metric: str = "euclidean") -> None:
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"unknown metric {metric!r}; valid: ['euclidean', 'cosine']")
        self.metric = metric
        x = np.asarray(points, np.float32)
        self.x = in_metric_space(self.metric, x if x.ndim == 2 else x.reshape(len(x), -1))
        n, self.d = self.x.shape
        self.sq = np.einsum("ij,ij->i", self.x, self.x)
        self.mind2 = np.full(n, np.inf, np.float32)
        self.assign = np.zeros(n, np.int32)  # meaningful where mind2 is finite
        self.centers = np.empty((0, self.d), np.float32)
        self.center_sq = np.empty(0, np.float32)
        self.flushed = 0  # centers[:flushed] are reflected in mind2
        self.rows_computed = 0  # point-to-center distances evaluated in flushes (a work count)
        self.rounds = 0

    @property
    def k(self) -> int:
        return len(self.centers)

    @property
    def mind(self) -> np.ndarray:
        """(N,) distance of each point to its nearest flushed center (inf before any)."""
        return np.sqrt(np.maximum(self.mind2, 0))

    def _push(self, vs: np.ndarray) -> np.ndarray:
        self.centers = np.concatenate([self.centers, vs])
        self.center_sq = np.concatenate([self.center_sq, np.einsum("ij,ij->i", vs, vs)])
        return vs

    def add_rows(self, rows: np.ndarray) -> np.ndarray:
        """Make points ``rows`` centers (applied to all points at the next flush); returns them."""
        return self._push(self.x[np.asarray(rows, np.int64)])

    def add_vectors(self, vectors: np.ndarray) -> None:
        v = np.asarray(vectors, np.float32)
        self._push(in_metric_space(self.metric, v if v.ndim == 2 else v.reshape(len(v), -1)))

    def flush(self) -> None:
        """Apply the centers added since the last flush to every point they can move closer."""
        first = self.flushed
        self.flushed = self.k
        if first == self.k or len(self.x) == 0:
            return
        new, new_sq = self.centers[first:], self.center_sq[first:]
        rows = None
        if first > 0:
            old, old_sq = self.centers[:first], self.center_sq[:first]
            reach2 = (old_sq[:, None] - 2 * (old @ new.T) + new_sq[None, :]).min(axis=1)
            movable = reach2[self.assign] < self.mind2 * (4 * (1 + _SLACK))
            if np.count_nonzero(movable) * _FULL_PASS_ABOVE <= len(movable):
                rows = np.flatnonzero(movable)
        total = len(self.x) if rows is None else len(rows)
        self.rows_computed += total * len(new)
        step = max(1, _BLOCK_FLOATS // len(new))
        for s in range(0, total, step):
            r = np.arange(s, min(s + step, total)) if rows is None else rows[s : s + step]
            block = self.x[s : s + len(r)] if rows is None else self.x[r]
            d2 = block @ new.T
            d2 *= -2
            d2 += new_sq[None, :]
            d2 += self.sq[r][:, None]
            j = d2.argmin(axis=1)
            best = d2[np.arange(len(j)), j]
            better = best < self.mind2[r]
            self.mind2[r[better]] = best[better]
            self.assign[r[better]] = first + j[better]
        self.rounds += 1

    def candidates(self, alive: np.ndarray, size: int) -> tuple[np.ndarray, float]:
        """The ``size`` alive points farthest from every center (ascending positions) and ``tau^2``,
        the largest squared distance of the alive points left out (-inf when none is)."""
        alive_rows = np.flatnonzero(alive)
        if len(alive_rows) <= size:
            return alive_rows, -np.inf
        values = self.mind2[alive_rows]
        part = np.argpartition(values, len(values) - size - 1)
        tau2 = float(values[part[len(values) - size - 1]])
        return np.sort(alive_rows[part[len(values) - size :]]), tau2


def certified_cover(
    kc: BatchedKCenter,
    picker: Picker,
    frame_of: np.ndarray,
    points_of: Callable[[int], np.ndarray],
    rng: np.random.Generator,
    *,
    eps: float = 0.0,
    candidates: int | None = None,
) -> dict[str, int]:
    """`strategies.diversity.greedy_cover` in certified rounds; returns the work counts.

    Same contract: the frame of the farthest alive point is offered until the budget is full; an
    accepted frame's points all become centers; with no center at all the first point is drawn at
    random (the same draw as the exact version) and its value is the radius it leaves.
    ``candidates`` per round: None = as many as keep the (C, d) block in cache (1,024 to 8,192).
    """
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    slack2 = (1.0 - eps) ** 2
    if candidates is None:
        candidates = int(np.clip(_CANDIDATE_FLOATS // max(kc.d, 1), 1024, 8192))
    counts = {"picks": 0, "relaxed_picks": 0}
    while not picker.full:
        kc.flush()
        alive = picker.available[frame_of]
        if kc.k == 0:
            cands = np.flatnonzero(alive)
            if len(cands) == 0:
                break
            frame = int(frame_of[int(rng.choice(cands))])
            if picker.offer(frame, np.nan):
                kc.add_rows(points_of(frame))
                kc.flush()
                alive = picker.available[frame_of]
                picker.values[-1] = float(kc.mind[alive].max()) if alive.any() else 0.0
                counts["picks"] += 1
            continue
        cand, tau2 = kc.candidates(alive, candidates)
        if len(cand) == 0:
            break
        xc, sqc = kc.x[cand], kc.sq[cand]
        cv = kc.mind2[cand].copy()
        cand_frames = frame_of[cand]
        first_of_round = True
        while not picker.full:
            values = np.where(picker.available[cand_frames], cv, -np.inf)
            j = int(np.argmax(values))
            if values[j] == -np.inf or not values[j] > tau2 * slack2:
                if first_of_round:  # the farthest distance is shared by more than C points: pick as the exact greedy
                    counts["picks"] += _exact_pick(kc, picker, frame_of, points_of, alive)
                break  # the round's certificate ran out: flush and choose new candidates
            first_of_round = False
            frame = int(cand_frames[j])
            if picker.offer(frame, float(np.sqrt(max(cv[j], 0.0)))):
                counts["picks"] += 1
                counts["relaxed_picks"] += int(not cv[j] > tau2)
                new = kc.add_rows(points_of(frame))
                d2 = sqc[:, None] - 2 * (xc @ new.T) + kc.center_sq[-len(new) :][None, :]
                np.minimum(cv, d2.min(axis=1), out=cv)
    kc.flush()
    return counts


def _exact_pick(
    kc: BatchedKCenter, picker: Picker, frame_of: np.ndarray, points_of: Callable[[int], np.ndarray], alive: np.ndarray
) -> bool:
    """One pick over the whole pool (distances are exact right after a flush); ties go to the lowest position."""
    i = int(np.argmax(np.where(alive, kc.mind2, -np.inf)))
    if not picker.offer(int(frame_of[i]), float(np.sqrt(max(kc.mind2[i], 0.0)))):
        return False
    kc.add_rows(points_of(int(frame_of[i])))
    return True
