"""Tiny `ScoredPool` builders for specification tests, property tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from strategies.pool import Budget, CycleState, ScoredPool, Selection


def make_pool(
    probs: Sequence[Sequence[Sequence[float]]],
    *,
    xyxy: Sequence[Sequence[Sequence[float]]] | None = None,
    box_embeddings: Sequence[Sequence[Sequence[float]]] | None = None,
    image_embeddings: Sequence[Sequence[float]] | None = None,
    videos: Sequence[str] | None = None,
    frame_index: Sequence[int] | None = None,
    divergence_maps: Sequence[np.ndarray] | None = None,
    flip_probs: Sequence[Sequence[Sequence[float]]] | None = None,
    flip_xyxy: Sequence[Sequence[Sequence[float]]] | None = None,
    metadata: Mapping[str, Sequence[object]] | None = None,
    num_classes: int | None = None,
) -> ScoredPool:
    """A pool from per-image lists of box class-probability vectors; everything else has a default.

    Default boxes are 10 x 10 squares side by side (no overlap); default embeddings are zeros;
    frame ids are "f0", "f1", ...
    """
    n = len(probs)
    sizes = [len(b) for b in probs]
    c = num_classes or next((len(b[0]) for b in probs if len(b)), 1)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    box_probs = _flat(probs, (0, c))
    if xyxy is None:
        xyxy = [[[20.0 * k, 0.0, 20.0 * k + 10, 10.0] for k in range(s)] for s in sizes]
    box_xyxy = _flat(xyxy, (0, 4))
    box_emb = _flat(box_embeddings, (0, 2)) if box_embeddings is not None else np.zeros((offsets[-1], 2), np.float32)
    img_emb = (
        np.asarray(image_embeddings, np.float32).reshape(n, -1 if n else 2)
        if image_embeddings is not None
        else np.zeros((n, 2), np.float32)
    )
    flip = {}
    if flip_probs is not None:
        fsizes = [len(b) for b in flip_probs]
        if flip_xyxy is None:
            flip_xyxy = [[[20.0 * k, 0.0, 20.0 * k + 10, 10.0] for k in range(s)] for s in fsizes]
        flip = {
            "flip_offsets": np.concatenate([[0], np.cumsum(fsizes)]).astype(np.int64),
            "flip_xyxy": _flat(flip_xyxy, (0, 4)),
            "flip_probs": _flat(flip_probs, (0, c)),
        }
    return ScoredPool(
        frame_ids=np.array([f"f{i}" for i in range(n)], dtype=object),
        box_offsets=offsets,
        box_xyxy=box_xyxy,
        box_conf=box_probs.max(axis=1) if len(box_probs) else np.zeros(0, np.float32),
        box_probs=box_probs,
        box_embeddings=box_emb,
        image_embeddings=img_emb,
        image_sizes=np.tile(np.array([[640, 480]], np.int32), (n, 1)),
        class_names=tuple(f"c{k}" for k in range(c)),
        videos=None if videos is None else np.asarray(videos, dtype=object),
        frame_index=None if frame_index is None else np.asarray(frame_index, np.int64),
        divergence_maps=None if divergence_maps is None else tuple(np.asarray(m, np.float32) for m in divergence_maps),
        metadata={k: np.asarray(v) for k, v in (metadata or {}).items()},
        **flip,
    )


def _flat(per_image: Sequence[Sequence[Sequence[float]]], empty: tuple[int, int]) -> np.ndarray:
    rows = [np.asarray(r, np.float32) for b in per_image for r in b]
    return np.stack(rows).astype(np.float32) if rows else np.zeros(empty, np.float32)


def random_pool(
    rng: np.random.Generator,
    num_images: int,
    *,
    max_boxes: int = 4,
    num_classes: int = 3,
    num_videos: int = 2,
    embedding_dim: int = 4,
    box_embedding_dim: int = 4,
    with_maps: bool = True,
    with_flip: bool = True,
) -> ScoredPool:
    """A random pool with every optional field (videos, frame numbers, maps, flipped pass, metadata).

    Vectorised, so it also builds benchmark-size pools. Some images get zero boxes; some frames
    are still images (video "").
    """
    n = num_images
    sizes = rng.integers(0, max_boxes + 1, n)
    m = int(sizes.sum())
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    probs = rng.random((m, num_classes), dtype=np.float32)
    xy = rng.random((m, 2), dtype=np.float32) * 600
    wh = 5 + rng.random((m, 2), dtype=np.float32) * 60
    xyxy = np.concatenate([xy, xy + wh], axis=1)
    video_of = rng.integers(0, num_videos + 1, n)  # num_videos stands for "a still image"
    videos = np.where(video_of == num_videos, "", np.char.add("v", video_of.astype(str))).astype(object)
    frame_index = rng.permutation(3 * n + 1)[:n].astype(np.int64)
    fields: dict[str, object] = {}
    if with_maps:
        fields["divergence_maps"] = tuple(rng.random((4, 6), dtype=np.float32) * (i % 3) for i in range(n))
    if with_flip:
        keep = rng.random(m) < 0.7
        jitter = rng.normal(0, 3, (m, 4)).astype(np.float32)
        fsizes = np.bincount(np.repeat(np.arange(n), sizes)[keep], minlength=n)
        fields["flip_offsets"] = np.concatenate([[0], np.cumsum(fsizes)]).astype(np.int64)
        fields["flip_xyxy"] = (xyxy + jitter)[keep]
        fields["flip_probs"] = np.clip(probs + rng.normal(0, 0.1, probs.shape), 0, 1).astype(np.float32)[keep]
    return ScoredPool(
        frame_ids=np.array([f"f{i}" for i in range(n)], dtype=object),
        box_offsets=offsets,
        box_xyxy=xyxy,
        box_conf=probs.max(axis=1) if m else np.zeros(0, np.float32),
        box_probs=probs,
        box_embeddings=rng.standard_normal((m, box_embedding_dim), dtype=np.float32),
        image_embeddings=rng.standard_normal((n, embedding_dim), dtype=np.float32),
        image_sizes=np.tile(np.array([[640, 480]], np.int32), (n, 1)),
        class_names=tuple(f"c{k}" for k in range(num_classes)),
        videos=videos,
        frame_index=frame_index,
        metadata={"scene": np.array(["day", "night", "dusk"])[rng.integers(0, 3, n)]},
        **fields,  # type: ignore[arg-type]
    )


def pick(name: str, pool: ScoredPool, budget: Budget | int, state: CycleState | None = None, **params) -> Selection:
    """`select` with an int as shorthand for ``Budget(frames=...)`` and an empty state by default."""
    from strategies.registry import select

    if isinstance(budget, int):
        budget = Budget(frames=budget)
    return select(name, pool, budget, state or CycleState(), **params)
