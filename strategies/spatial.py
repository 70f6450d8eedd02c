"""Spatial-divergence localization scores (pure numpy): the specification `core.features` ports.

The pedestrian-video paper's pixel score (its Eq. 4), for class maps p_k (K, H, W) at a common
resolution and a (2r+1)^2 neighbourhood N(x) of each location x:

    s(x) = sum_{k=1..K} [ H(mean_{N(x)} p_k) - mean_{N(x)} H(p_k) ]

with H the binary entropy of each class's independent sigmoid. s is large where neighbouring
predictions disagree (unstable localization) and zero where they agree. Maps of several
detection levels are brought to one resolution and their s maps summed; the image score is the
mean of the maxima of non-overlapping regions (`region_maxima`, `region_max_score`).
`core.features` says how the common resolution and the pixel units are chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_EPS = 1e-7


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Elementwise entropy (nats) of independent Bernoulli probabilities."""
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return -(p * np.log(p) + (1.0 - p) * np.log(1.0 - p))


def neighbourhood_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each location of the last two axes.

    Windows are cut at the border (the mean is over the locations that exist), so a
    constant map stays constant everywhere.
    """
    if radius == 0:
        return x.astype(np.float64)
    h, w = x.shape[-2:]
    k = 2 * radius + 1
    pad = [(0, 0)] * (x.ndim - 2) + [(radius + 1, radius), (radius + 1, radius)]
    s = np.pad(x.astype(np.float64), pad).cumsum(-1).cumsum(-2)
    window_sum = s[..., k:, k:] - s[..., :-k, k:] - s[..., k:, :-k] + s[..., :-k, :-k]
    ones = np.pad(np.ones((h, w)), [(radius + 1, radius), (radius + 1, radius)]).cumsum(-1).cumsum(-2)
    counts = ones[k:, k:] - ones[:-k, k:] - ones[k:, :-k] + ones[:-k, :-k]
    return window_sum / counts


def stride_divergence(probs: np.ndarray, radius: int = 1) -> np.ndarray:
    """s map (H, W) of one stride's class probabilities (C, H, W)."""
    if probs.ndim != 3:
        raise ValueError(f"expected (C, H, W) probabilities, got shape {probs.shape}")
    entropy_of_mean = binary_entropy(neighbourhood_mean(probs, radius)).sum(axis=0)
    mean_of_entropy = neighbourhood_mean(binary_entropy(probs), radius).sum(axis=0)
    return np.maximum(entropy_of_mean - mean_of_entropy, 0.0)  # >= 0 by concavity; clip rounding


def divergence_map(stride_probs: Sequence[np.ndarray], radius: int = 1) -> np.ndarray:
    """Sum over strides of the s maps, each repeated up to the finest grid (float32).

    Coarser grids must divide the finest one exactly, as YOLO's strides 8/16/32 do.
    """
    maps = [stride_divergence(p, radius) for p in stride_probs]
    target = max(maps, key=lambda m: m.size).shape
    total = np.zeros(target, dtype=np.float64)
    for m in maps:
        fy, fx = target[0] // m.shape[0], target[1] // m.shape[1]
        if (m.shape[0] * fy, m.shape[1] * fx) != target:
            raise ValueError(f"grid {m.shape} does not divide the finest grid {target}")
        total += np.repeat(np.repeat(m, fy, axis=0), fx, axis=1)
    return total.astype(np.float32)


def region_maxima(score_map: np.ndarray, region: int) -> np.ndarray:
    """(ceil(H / region), ceil(W / region)) maxima of non-overlapping region x region blocks (border blocks smaller)."""
    if region < 1:
        raise ValueError("region must be >= 1")
    h, w = score_map.shape
    ph, pw = -h % region, -w % region
    padded = np.pad(np.asarray(score_map, np.float64), ((0, ph), (0, pw)), constant_values=-np.inf)
    return padded.reshape(padded.shape[0] // region, region, padded.shape[1] // region, region).max(axis=(1, 3))


def region_max_score(score_map: np.ndarray, region: int = 4) -> float:
    """Mean over non-overlapping region x region blocks of each block's maximum.

    Border blocks may be smaller. ``region=1`` gives the mean of all locations (the ablation).
    """
    if region < 1:
        raise ValueError("region must be >= 1")
    if score_map.size == 0:
        return 0.0
    h, w = score_map.shape
    ph, pw = -h % region, -w % region
    padded = np.pad(score_map, ((0, ph), (0, pw)), constant_values=-np.inf)
    blocks = padded.reshape(padded.shape[0] // region, region, padded.shape[1] // region, region)
    return float(blocks.max(axis=(1, 3)).mean())
