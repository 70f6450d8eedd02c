"""The canonical pool manifest: one row per frame, ground-truth boxes kept apart for the oracle.

On disk (a folder, e.g. ``data/manifest``):
- ``frames.parquet``: frame_id, image, width, height, video, frame, split, meta (JSON text)
- ``gt_boxes.parquet``: frame_id, x1, y1, x2, y2 (pixels), label, class_id
- ``labels.yaml``: the label map

Training and selection read ``frames.parquet`` only; ``gt_boxes.parquet`` is for the
oracle of the simulation and for evaluation on the test split.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DatasetError, ImportLog
from .images import image_size
from .labelmap import LabelMap

log = logging.getLogger("alod.import")

FRAME_COLUMNS = ["frame_id", "image", "width", "height", "video", "frame", "split", "meta"]
BOX_COLUMNS = ["frame_id", "x1", "y1", "x2", "y2", "label", "class_id"]
SPLITS = ("train", "val", "test")
# Boxes may overshoot the image by this many pixels (1-based VOC coordinates, rounding).
BORDER_TOLERANCE_PX = 1.0


@dataclass
class Manifest:
    frames: pd.DataFrame
    boxes: pd.DataFrame
    labels: LabelMap

    def summary(self) -> dict[str, Any]:
        per_class = self.boxes["label"].value_counts()
        return {
            "frames": len(self.frames),
            "boxes": len(self.boxes),
            "classes": len(self.labels.names),
            "videos": int((self.frames["video"] != "").sum() and self.frames["video"].nunique()),
            "splits": {str(k): int(v) for k, v in self.frames["split"].value_counts().sort_index().items()},
            "boxes_per_class": {n: int(per_class.get(n, 0)) for n in self.labels.names},
        }

    def save(self, folder: Path) -> None:
        """Write atomically (temp file + rename), so an interrupted import never leaves half a manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, df in (("frames.parquet", self.frames), ("gt_boxes.parquet", self.boxes)):
            tmp = folder / f".{name}.tmp"
            df.to_parquet(tmp, index=False)
            os.replace(tmp, folder / name)
        self.labels.save(folder / "labels.yaml")

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        missing = [n for n in ("frames.parquet", "gt_boxes.parquet", "labels.yaml") if not (folder / n).exists()]
        if missing:
            raise FileNotFoundError(f"{folder} is not a manifest (missing {missing}); run `alod import` first")
        return cls(
            pd.read_parquet(folder / "frames.parquet"),
            pd.read_parquet(folder / "gt_boxes.parquet"),
            LabelMap.load(folder / "labels.yaml"),
        )

    def boxes_of(self, frame_ids: Iterable[str]) -> pd.DataFrame:
        return self.boxes[self.boxes["frame_id"].isin(set(frame_ids))]


@dataclass
class SourceBox:
    """A box as a reader found it, before label mapping and checks."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    where: tuple[str, int | None]  # (file, line) for error messages


@dataclass
class ManifestBuilder:
    """Readers feed frames here; it maps labels, checks images and boxes, and builds the Manifest.

    ``clip_boxes``: boxes that cross the image border are clipped to it (MOTChallenge boxes
    cover the full extent of partly visible people); a box entirely outside is dropped with
    a warning. Without it a box outside the image is an error. ``drop_degenerate`` does the same
    for zero-area boxes (points), which BCCD has two of.
    """

    labels: LabelMap
    root: Path  # image paths are stored relative to this folder (the repo root)
    log: ImportLog = field(default_factory=ImportLog)
    verify: str = "full"
    clip_boxes: bool = False
    drop_degenerate: bool = False  # zero-area boxes: dropped with a warning instead of an error
    _frames: list[dict[str, Any]] = field(default_factory=list)
    _boxes: list[dict[str, Any]] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set)

    def add_frame(
        self,
        frame_id: str,
        image: str | Path,
        boxes: list[SourceBox],
        *,
        split: str = "train",
        video: str = "",
        frame: int = 0,
        size: tuple[int, int] | None = None,
        meta: dict[str, Any] | None = None,
        listed_from_folder: bool = True,
        where: tuple[str | Path, int | None] | None = None,
    ) -> bool:
        """Add one frame; returns False if it was skipped (and logged).

        ``listed_from_folder``: the image was found by listing a folder, so an unreadable
        file is skipped with a warning; an image named by an annotation must exist and
        decode, or it is an error naming the annotation (``where``).
        """
        if frame_id in self._ids:
            raise DatasetError(where[0] if where else image, f"duplicate frame id {frame_id!r}")
        if split not in SPLITS:
            raise DatasetError(where[0] if where else image, f"unknown split {split!r}; use one of {SPLITS}")
        location = str(image)
        if "://" not in location and not location.startswith("data:"):
            width, height, ok = self._check_image(Path(image), size, listed_from_folder, where)
            if not ok:
                return False
            location = os.path.relpath(Path(image).resolve(), self.root)
        elif size is not None:
            width, height = size
        else:
            width, height = 0, 0  # a URL: the size is learned when the image is first read
        self.log.boxes_read += len(boxes)
        try:
            checked = [self._check_box(b, width, height) for b in boxes]
        except DatasetError as error:
            self.log.fail(error, "bad annotation")
            return False
        self._ids.add(frame_id)
        self._frames.append(
            {
                "frame_id": frame_id,
                "image": location,
                "width": int(width),
                "height": int(height),
                "video": video,
                "frame": int(frame),
                "split": split,
                "meta": json.dumps(meta or {}, sort_keys=True),
            }
        )
        self._boxes.extend({"frame_id": frame_id, **b} for b in checked if b is not None)
        return True

    def _check_image(
        self, path: Path, size: tuple[int, int] | None, listed: bool, where: tuple[str | Path, int | None] | None
    ) -> tuple[int, int, bool]:
        try:
            actual = image_size(path, self.verify)
        except DatasetError as error:
            if listed:
                self.log.skip(str(error), "unreadable image")
            elif where is not None:
                self.log.fail(DatasetError(where[0], f"{error.message}: {path}", where[1]), "unreadable image")
            else:
                self.log.fail(error, "unreadable image")
            return 0, 0, False
        if actual == (0, 0):  # verify="none"
            if size is None:
                raise DatasetError(path, "image size unknown: the annotation gives none and verify is 'none'")
            return size[0], size[1], True
        if size is not None and tuple(size) != actual:
            self.log.warn(f"{path}: annotation says size {size}, the image is {actual}; using the image", "size")
        return actual[0], actual[1], True

    def _check_box(self, box: SourceBox, width: int, height: int) -> dict[str, Any] | None:
        file, line = box.where
        label = self.labels.canonical(box.label)
        if label is None:
            raise DatasetError(file, f"unknown class name {box.label!r}; label map has {list(self.labels.names)}", line)
        x1, y1, x2, y2 = box.x1, box.y1, box.x2, box.y2
        if not (x2 > x1 and y2 > y1):
            if self.drop_degenerate:
                self.log.warn(f"{file}:{line}: zero-area box ({x1}, {y1}, {x2}, {y2}) dropped", "box dropped")
                return None
            raise DatasetError(file, f"degenerate box ({x1}, {y1}, {x2}, {y2}): needs x2 > x1 and y2 > y1", line)
        if width > 0 and height > 0:
            outside = x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height
            crosses = (
                x1 < -BORDER_TOLERANCE_PX
                or y1 < -BORDER_TOLERANCE_PX
                or x2 > width + BORDER_TOLERANCE_PX
                or y2 > height + BORDER_TOLERANCE_PX
            )
            if self.clip_boxes and outside:
                self.log.warn(f"{file}:{line}: box entirely outside the {width}x{height} image, dropped", "box dropped")
                return None
            if (outside or crosses) and not self.clip_boxes:
                raise DatasetError(file, f"box ({x1}, {y1}, {x2}, {y2}) outside the {width}x{height} image", line)
            if crosses:
                self.log.counts["box clipped to the image"] += 1
            x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
            y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
        return {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "label": label, "class_id": self.labels.class_id(label)}

    def build(self) -> Manifest:
        frames = pd.DataFrame(self._frames, columns=FRAME_COLUMNS).astype(
            {"width": "int32", "height": "int32", "frame": "int64"}
        )
        boxes = pd.DataFrame(self._boxes, columns=BOX_COLUMNS).astype(
            {"x1": "float64", "y1": "float64", "x2": "float64", "y2": "float64", "class_id": "int32"}
        )
        return Manifest(frames, boxes, self.labels)


def resolve_image(image: str, root: Path) -> str:
    """A manifest image as a local absolute path (URLs are returned unchanged)."""
    if "://" in image or image.startswith("data:"):
        return image
    p = Path(image)
    return str(p if p.is_absolute() else (root / p).resolve())
