"""Classification uncertainty: per-box score -> optional class weight -> per-image reduction.

Per-box measures over the class-probability vector p (YOLO: an independent sigmoid per class;
the box's confidence is P = max_c p_c):

- ``least_confidence``: 1 - P, for any number of classes. The box-level paper's measure: with
  one class the least probable boxes are asked about first (0.1 before 0.5 before 0.9).
- ``margin``: 1 - (p_(1) - p_(2)), the two largest entries (higher = smaller margin); with a
  single class the second entry is "not this class", 1 - p (a margin needs two entries).
- ``entropy``: Shannon entropy (nats) of the (C + 1)-vector q = (P p / sum(p), 1 - P): the
  classes share the box's confidence in proportion to their probabilities and the rest is
  background, as in detectors with a background class (the uncertainty-aggregation paper's
  entropy is over such a softmax). So a box's entropy accounts for how confident it is: a
  0.05-confidence box is nearly certainly background (low entropy), not a maximally uncertain
  class vector. With one class, q = (p, 1 - p), the binary entropy.

Earlier rules, by name: ``least_confidence_binary`` (1 - max(p, 1 - p) with one class, so boxes
near 0.5 come first; = ``least_confidence`` with several classes) and ``entropy_classes`` (the
entropy of p normalised to sum to 1, ignoring the confidence; (p, 1 - p) with one class).

Per-image reduction (``aggregation``) and images without boxes: the uncertainty-aggregation paper
settles on the sum and scores an image with no detection 0, so the defaults are ``sum`` and
``include_empty=True`` (such images come after every image with a positive score); the earlier
``max`` and never picking them stay available by name (``aggregation: max, include_empty: false``).
All measures are >= 0, so an image with no (kept) boxes scores 0 under every reduction.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from strategies.pool import CycleState, ScoredPool
from strategies.registry import register

Measure = Literal["least_confidence", "margin", "entropy", "least_confidence_binary", "entropy_classes"]
Aggregation = Literal["max", "mean", "sum"]
MEASURES: tuple[str, ...] = ("least_confidence", "margin", "entropy", "least_confidence_binary", "entropy_classes")
REDUCTIONS: tuple[str, ...] = ("max", "mean", "sum")
_CHUNK = 1 << 16  # rows per chunk: bounds the temporaries for (1M, 80) probability arrays


def _entropy_of_normalised(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of p normalised to sum to 1: H(p / S) = log S - sum(p log p) / S."""
    total = p.sum(axis=1)
    q = np.clip(p, 1e-12, None)
    plogp = (q * np.log(q)).sum(axis=1)
    safe = np.maximum(total, 1e-12)
    return np.maximum(np.log(safe) - plogp / safe, 0.0)


def _measure_chunk(p: np.ndarray, measure: str) -> np.ndarray:
    if measure == "least_confidence":
        return 1.0 - p.max(axis=1)
    if measure == "entropy":
        conf = p.max(axis=1, keepdims=True)
        shares = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
        return _entropy_of_normalised(np.concatenate([conf * shares, 1.0 - conf], axis=1))
    if p.shape[1] == 1:
        p = np.concatenate([p, 1.0 - p], axis=1)
    if measure == "least_confidence_binary":
        return 1.0 - p.max(axis=1)
    if measure == "margin":
        top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if measure == "entropy_classes":
        return _entropy_of_normalised(p)
    raise ValueError(f"unknown measure {measure!r}; valid: {list(MEASURES)}")


def box_uncertainty(probs: np.ndarray, measure: str = "entropy") -> np.ndarray:
    """(M,) float32 uncertainty of each box's class-probability vector (M, C)."""
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; valid: {list(MEASURES)}")
    probs = np.asarray(probs, np.float32)
    out = np.empty(len(probs), np.float32)
    for s in range(0, len(probs), _CHUNK):
        out[s : s + _CHUNK] = _measure_chunk(probs[s : s + _CHUNK], measure)
    return out


def reduce_per_image(values: np.ndarray, offsets: np.ndarray, how: str, keep: np.ndarray | None = None) -> np.ndarray:
    """(N,) reduction of per-box values over each image's CSR rows; 0 where an image keeps no box.

    ``keep`` (M,) bool drops boxes; values must be >= 0 (so a dropped box can be a 0 for max).
    """
    if how not in REDUCTIONS:
        raise ValueError(f"unknown aggregation {how!r}; valid: {list(REDUCTIONS)}")
    sizes = np.diff(offsets)
    n = len(sizes)
    values = np.asarray(values, np.float64)
    if keep is not None:
        values = np.where(keep, values, 0.0)
    out = np.zeros(n)
    nonempty = sizes > 0
    if not nonempty.any():
        return out
    starts = offsets[:-1][nonempty]
    if how == "max":
        out[nonempty] = np.maximum.reduceat(values, starts)
        return out
    out[nonempty] = np.add.reduceat(values, starts)
    if how == "mean":
        counts = sizes if keep is None else np.bincount(np.repeat(np.arange(n), sizes)[keep], minlength=n)
        out = np.divide(out, counts, out=np.zeros(n), where=counts > 0)
    return out


def inverse_frequency_weights(counts: np.ndarray | None, num_classes: int, smoothing: float = 1.0) -> np.ndarray:
    """(C,) inverse class frequency among labeled boxes, 1 for every class when counts are uniform.

    w_c = (total + C s) / (C (n_c + s)); the smoothing s keeps unseen classes finite.
    No counts yet (cycle 0) gives all ones.
    """
    if counts is None:
        return np.ones(num_classes)
    counts = np.asarray(counts, np.float64)
    if counts.shape != (num_classes,):
        raise ValueError(f"labeled_class_counts has shape {counts.shape}, expected ({num_classes},)")
    if (counts < 0).any():
        raise ValueError("labeled_class_counts must be >= 0")
    return (counts.sum() + num_classes * smoothing) / (num_classes * (counts + smoothing))


def box_scores(
    pool: ScoredPool,
    state: CycleState,
    measure: str,
    weighted: bool,
    smoothing: float = 1.0,
) -> np.ndarray:
    """(M,) per-box uncertainty, multiplied by the weight of each box's most likely class if asked."""
    scores = box_uncertainty(pool.box_probs, measure).astype(np.float64)
    if weighted and pool.num_boxes:
        w = inverse_frequency_weights(state.labeled_class_counts, pool.num_classes, smoothing)
        scores *= w[pool.box_probs.argmax(axis=1)]
    return scores


@register("uncertainty")
def uncertainty(
    pool: ScoredPool,
    state: CycleState,
    rng: np.random.Generator,
    *,
    measure: Measure = "entropy",
    aggregation: Aggregation = "sum",
    class_weights: bool = False,
    weight_smoothing: float = 1.0,
    min_conf: float = 0.0,
    include_empty: bool = True,
    pool_subset: int | None = None,
) -> np.ndarray:
    """Frames whose detections the model is least sure about: per-box ``measure``, per-image ``aggregation``.

    ``class_weights`` multiplies each box's score, before aggregation, by the inverse frequency
    of its most likely class among the labeled boxes (``state.labeled_class_counts``; all ones
    before the first labels), so a rare class can outrank a more uncertain common one.
    ``min_conf`` ignores boxes below that confidence (the scoring pass keeps boxes down to
    detector.conf_score, and low-confidence background boxes look "uncertain" under
    least_confidence and margin). Images left with no box score 0 and are picked only when
    ``include_empty`` is true (at score 0: after every image with a positive score).
    ``pool_subset``: the uncertainty-aggregation paper's query step ranks a random subset of this
    many selectable frames (seeded), the rest are not picked this cycle; None ranks the whole pool.
    """
    if not weight_smoothing > 0:
        raise ValueError(f"uncertainty.weight_smoothing must be > 0, got {weight_smoothing}")
    keep = pool.box_conf >= min_conf
    per_box = box_scores(pool, state, measure, class_weights, weight_smoothing)
    scores = reduce_per_image(per_box, pool.box_offsets, aggregation, keep)
    if not include_empty:
        has_box = np.bincount(pool.box_image_index[keep], minlength=pool.num_images) > 0
        scores = np.where(has_box, scores, np.nan)
    if pool_subset is not None:
        if pool_subset < 1:
            raise ValueError(f"uncertainty.pool_subset must be >= 1 or null, got {pool_subset}")
        candidates = np.flatnonzero(state.selectable_mask(pool))
        if pool_subset < len(candidates):
            drawn = np.zeros(pool.num_images, bool)
            drawn[rng.choice(candidates, size=pool_subset, replace=False)] = True
            scores = np.where(drawn, scores, np.nan)
    return scores
