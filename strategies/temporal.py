"""Temporal rules for video frames, composable with any strategy.

- Smoothing: a Gaussian over frame scores within a video, so a single noisy frame does not
  outrank a consistently uncertain stretch.
- dt1: after picking frame t, frames of the same video within +-dt1 are skipped in this cycle.
- dt2: frames within +-dt2 of a picked frame are blocked in every later cycle
  (`Selection.blocked`, carried forward by `CycleState.advance`).

Distances are in the video's frame numbers (`ScoredPool.frame_index`), so a pool that keeps
every 10th frame still measures dt in frames. Still images (no video, or video "") have no
temporal neighbours: every rule is a no-op for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from strategies.pool import ScoredPool

_RULES = {"smoothing": None, "dt1": 0, "dt2": 0}
_SMOOTHING = {"window": 5, "sigma": 1.0}


@dataclass(frozen=True)
class TemporalRules:
    window: int = 0  # total width of the smoothing kernel in frames (odd); 0 = no smoothing
    sigma: float = 1.0
    dt1: int = 0
    dt2: int = 0

    @property
    def smoothing(self) -> bool:
        return self.window > 1

    @property
    def active(self) -> bool:
        return self.smoothing or self.dt1 > 0 or self.dt2 > 0

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> TemporalRules:
        """Parse ``{smoothing: {window, sigma} | null, dt1, dt2}``; bad keys or values raise ValueError."""
        if params is None:
            return cls()
        if not isinstance(params, dict):
            raise ValueError(f"temporal must be a mapping with keys {_RULES}, got {params!r}")
        _reject_unknown("temporal", params, _RULES)
        smoothing = params.get("smoothing")
        window, sigma = 0, 1.0
        if smoothing is not None:
            if not isinstance(smoothing, dict):
                raise ValueError(f"temporal.smoothing must be a mapping with keys {_SMOOTHING} or null")
            _reject_unknown("temporal.smoothing", smoothing, _SMOOTHING)
            window = smoothing.get("window", _SMOOTHING["window"])
            sigma = smoothing.get("sigma", _SMOOTHING["sigma"])
            if not _is_int(window) or window < 1 or window % 2 == 0:
                raise ValueError(f"temporal.smoothing.window must be an odd integer >= 1, got {window!r}")
            if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not sigma > 0:
                raise ValueError(f"temporal.smoothing.sigma must be a number > 0, got {sigma!r}")
        dt1, dt2 = params.get("dt1", 0), params.get("dt2", 0)
        for name, value in (("dt1", dt1), ("dt2", dt2)):
            if not _is_int(value) or value < 0:
                raise ValueError(f"temporal.{name} must be an integer >= 0, got {value!r}")
        return cls(window=int(window), sigma=float(sigma), dt1=int(dt1), dt2=int(dt2))


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _reject_unknown(where: str, given: dict[str, Any], valid: dict[str, Any]) -> None:
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(f"unknown {where} keys {unknown}; valid keys with defaults: {valid}")


class TemporalIndex:
    """Frames sorted by (video, frame number) so that +-dt neighbours are two binary searches."""

    def __init__(self, pool: ScoredPool) -> None:
        n = pool.num_images
        self.n = n
        in_video = np.zeros(n, bool) if pool.videos is None else np.asarray(pool.videos != "", bool)
        if in_video.any() and pool.frame_index is None:
            raise ValueError("temporal rules need ScoredPool.frame_index for video frames")
        video_code = np.unique(pool.video_ids().astype(str), return_inverse=True)[1].astype(np.int64)
        frame = np.zeros(n, np.int64) if pool.frame_index is None else pool.frame_index.astype(np.int64)
        frame = np.where(in_video, frame, 0)
        if n and frame.min() < 0:
            raise ValueError("frame_index must be >= 0")
        # One sortable int64 key per frame; the spacing keeps +-dt searches inside one video.
        self._spacing = int(frame.max(initial=0)) + 1
        self.key = video_code * (2 * self._spacing + 1) + frame
        self.order = np.argsort(self.key, kind="stable")
        self.sorted_key = self.key[self.order]
        self.in_video = in_video

    def neighbours(self, i: int, dt: int) -> np.ndarray:
        """Pool positions of frames of i's video within +-dt of it (i included)."""
        if dt <= 0 or not self.in_video[i]:
            return np.array([i])
        dt = min(dt, self._spacing)
        lo = np.searchsorted(self.sorted_key, self.key[i] - dt, "left")
        hi = np.searchsorted(self.sorted_key, self.key[i] + dt, "right")
        return self.order[lo:hi]

    def neighbours_of(self, indices: np.ndarray, dt: int) -> np.ndarray:
        if len(indices) == 0:
            return np.array([], np.int64)
        return np.unique(np.concatenate([self.neighbours(int(i), dt) for i in indices]))

    def smooth(self, scores: np.ndarray, window: int, sigma: float) -> np.ndarray:
        """Gaussian-weighted mean of finite scores over frames within +-window//2 in the same video.

        Weights are renormalised over the neighbours present in the pool (a constant stays
        constant, video ends are not pulled towards 0). NaN ("never pick") stays NaN and is
        left out of its neighbours' means; still images are unchanged.
        """
        scores = np.asarray(scores, np.float64)
        half = window // 2
        finite = np.isfinite(scores)
        total = np.zeros(self.n)
        weight = np.zeros(self.n)
        for d in range(-half, half + 1):
            pos = np.searchsorted(self.sorted_key, self.key + d)
            pos_c = np.minimum(pos, max(self.n - 1, 0))
            hit = (pos < self.n) & (self.sorted_key[pos_c] == self.key + d)
            hit &= self.in_video | (d == 0)
            j = self.order[pos_c]
            ok = hit & finite[j]
            w = np.exp(-0.5 * (d / sigma) ** 2)
            total[ok] += w * scores[j[ok]]
            weight[ok] += w
        out = np.where(weight > 0, total / np.maximum(weight, 1e-300), np.nan)
        return np.where(finite, out, scores)


def blocked_ids(pool: ScoredPool, index: TemporalIndex | None, picked: np.ndarray, dt2: int) -> frozenset[str]:
    """Frame ids within +-dt2 of the picked frames, excluding the picked ones (they become labeled)."""
    if dt2 <= 0 or index is None or len(picked) == 0:
        return frozenset()
    near = np.setdiff1d(index.neighbours_of(picked, dt2), picked)
    return frozenset(str(f) for f in pool.frame_ids[near])


def close_pairs(videos: np.ndarray, frames: np.ndarray, window: int) -> int:
    """Pairs of selected frames of the same video at most ``window`` frames apart (stills never pair)."""
    count = 0
    for video in set(videos) - {""}:
        numbers = np.sort(frames[videos == video])
        count += int(sum(np.searchsorted(numbers, n + window, side="right") - i - 1 for i, n in enumerate(numbers)))
    return count
