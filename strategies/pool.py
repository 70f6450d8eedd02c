"""The data model that flows from scoring to selection to push.

`ScoredPool` is what ONE forward pass over the candidate frames produces (see
`pipelines.scoring.score`); every strategy reads it and returns a `Selection`. Boxes are
stored flat, CSR style: the boxes of image ``i`` are rows
``box_offsets[i]:box_offsets[i + 1]`` of every ``box_*`` array. Arrays only, so
strategies stay pure functions that are easy to test with tiny constructed pools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class ScoredPool:
    frame_ids: np.ndarray  # (N,) str, stable frame ids from the manifest
    box_offsets: np.ndarray  # (N + 1,) int64, CSR offsets into the box arrays
    box_xyxy: np.ndarray  # (M, 4) float32, pixels of the original image
    box_conf: np.ndarray  # (M,) float32, equals box_probs.max(axis=1)
    box_probs: np.ndarray  # (M, C) float32, independent sigmoid per class (YOLO head)
    box_embeddings: np.ndarray  # (M, Db) float32, neck features pooled inside the box
    image_embeddings: np.ndarray  # (N, D) float32, global pool of the deepest neck level
    image_sizes: np.ndarray  # (N, 2) int32, (width, height) in pixels
    class_names: tuple[str, ...] = ()
    videos: np.ndarray | None = None  # (N,) str, "" for still images
    frame_index: np.ndarray | None = None  # (N,) int64, frame number within its video
    # one map per image on its stride-8 grid, cropped to the image (so shapes vary with aspect ratio);
    # see strategies.spatial.divergence_map. None when not scored.
    divergence_maps: tuple[np.ndarray, ...] | None = None
    # Test-time augmentation (horizontal flip), mapped back to original coordinates.
    flip_offsets: np.ndarray | None = None  # (N + 1,)
    flip_xyxy: np.ndarray | None = None  # (F, 4)
    flip_probs: np.ndarray | None = None  # (F, C)
    metadata: Mapping[str, np.ndarray] = field(default_factory=dict)  # per-frame keys: scene, weather...

    def __post_init__(self) -> None:
        n, m = len(self.frame_ids), len(self.box_conf)
        if self.box_offsets.shape != (n + 1,) or self.box_offsets[0] != 0 or self.box_offsets[-1] != m:
            raise ValueError(f"box_offsets must have {n + 1} entries from 0 to {m}")
        for name in ("box_xyxy", "box_probs", "box_embeddings"):
            if len(getattr(self, name)) != m:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, expected {m}")
        if len(self.image_embeddings) != n or len(self.image_sizes) != n:
            raise ValueError("image_embeddings and image_sizes need one row per frame")

    @property
    def num_images(self) -> int:
        return len(self.frame_ids)

    @property
    def num_boxes(self) -> int:
        return len(self.box_conf)

    @property
    def num_classes(self) -> int:
        return self.box_probs.shape[1] if self.box_probs.ndim == 2 else len(self.class_names)

    @property
    def boxes_per_image(self) -> np.ndarray:
        return np.diff(self.box_offsets)

    @property
    def box_image_index(self) -> np.ndarray:
        """(M,) index of the image each box belongs to."""
        return np.repeat(np.arange(self.num_images), self.boxes_per_image)

    def boxes_of(self, i: int) -> slice:
        return slice(int(self.box_offsets[i]), int(self.box_offsets[i + 1]))

    def video_ids(self) -> np.ndarray:
        """(N,) video of each frame; a still image is its own one-frame video."""
        if self.videos is None:
            return np.asarray(self.frame_ids, dtype=object)
        return np.where(self.videos == "", self.frame_ids, self.videos)

    def index_of(self, frame_ids: object) -> np.ndarray:
        """Positions of the given frame ids that are in the pool (unknown ids are ignored)."""
        wanted = set(frame_ids)  # type: ignore[arg-type]
        return np.flatnonzero([f in wanted for f in self.frame_ids])


@dataclass(frozen=True)
class Budget:
    """What one cycle may spend: frames, boxes and/or cost; a None limit does not apply.

    Before labeling, the boxes of a frame are estimated by its predicted boxes with
    confidence >= ``box_conf_threshold``; the oracle's true boxes are counted afterwards.
    Cost model: ``frame_cost * frames + box_cost * boxes <= cost``. Selection fills the budget
    greedily in rank order, skipping a frame that would overflow a limit (`strategies.budget`).
    """

    frames: int | None = None
    boxes: int | None = None
    box_conf_threshold: float = 0.25
    # Cost model: a frame costs frame_cost + box_cost * its (estimated) boxes; `cost` caps the sum.
    cost: float | None = None
    frame_cost: float = 1.0
    box_cost: float = 1.0

    def __post_init__(self) -> None:
        if self.frames is None and self.boxes is None and self.cost is None:
            raise ValueError("a budget needs frames, boxes or cost (any combination)")
        for name in ("frames", "boxes", "cost", "frame_cost", "box_cost"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"budget {name} must be >= 0, got {value}")

    def spent(self, frames: int, boxes: int) -> float:
        """Cost of labeling ``frames`` frames holding ``boxes`` boxes under this cost model."""
        return self.frame_cost * frames + self.box_cost * boxes


@dataclass(frozen=True)
class CycleState:
    """What earlier cycles leave behind for selection: no model, no files, just ids and counts."""

    cycle: int = 0
    labeled: frozenset[str] = frozenset()  # frame ids that have labels
    labeled_class_counts: np.ndarray | None = None  # (C,) labeled boxes per class, for class weights
    blocked: frozenset[str] = frozenset()  # frame ids no later cycle may select (temporal rule dt2)

    def labeled_mask(self, pool: ScoredPool) -> np.ndarray:
        return np.fromiter((f in self.labeled for f in pool.frame_ids), bool, pool.num_images)

    def selectable_mask(self, pool: ScoredPool) -> np.ndarray:
        taken = self.labeled | self.blocked
        return np.fromiter((f not in taken for f in pool.frame_ids), bool, pool.num_images)

    def with_labeled(self, frame_ids: object) -> CycleState:
        return replace(self, labeled=self.labeled | frozenset(frame_ids))  # type: ignore[arg-type]

    def advance(
        self, pool: ScoredPool, selection: Selection, labeled_class_counts: np.ndarray | None = None
    ) -> CycleState:
        """The state of the next cycle: the selected frames labeled, the selection's blocked frames kept.

        ``labeled_class_counts`` (boxes per class among all labeled frames, from the oracle or the
        annotations) replaces the old counts when given.
        """
        counts = self.labeled_class_counts if labeled_class_counts is None else labeled_class_counts
        return replace(
            self,
            cycle=self.cycle + 1,
            labeled=self.labeled | frozenset(selection.frame_ids(pool)),
            blocked=self.blocked | selection.blocked,
            labeled_class_counts=counts,
        )


@dataclass(frozen=True)
class Selection:
    """A strategy's answer: which frames (or boxes) to ask for, most informative first."""

    strategy: str
    indices: np.ndarray  # (K,) pool positions of the selected frames, in rank order
    values: np.ndarray  # (K,) acquisition value of each selected frame (higher = more informative)
    priority: np.ndarray  # (N,) every frame: higher = show sooner (Label Studio task order)
    box_indices: np.ndarray | None = None  # (Q,) flat box rows queried by box-level strategies
    blocked: frozenset[str] = frozenset()  # frame ids later cycles must skip (temporal rule dt2)

    def frame_ids(self, pool: ScoredPool) -> list[str]:
        return [str(f) for f in pool.frame_ids[self.indices]]
