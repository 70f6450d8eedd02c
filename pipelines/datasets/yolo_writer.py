"""Write a manifest (or a labeled subset of it) as a YOLO dataset that ultralytics trains on.

Images are symlinked, never copied. The folder is built beside the target and swapped in
with a rename, so an interrupted write leaves the previous dataset intact.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import yaml

from .manifest import resolve_image


def safe_name(frame_id: str) -> str:
    """A file stem for a frame id (ids contain '/'); unique as long as ids are."""
    return frame_id.replace("__", "_-_").replace("/", "__")


def write_yolo_dataset(
    out_dir: Path,
    names: Sequence[str],
    splits: Mapping[str, pd.DataFrame],
    boxes: pd.DataFrame,
    root: Path,
) -> Path:
    """``splits`` maps a split name (train, val, test) to manifest frame rows; ``boxes`` are the labels
    to write (x1, y1, x2, y2 in pixels and class_id). Frames with no boxes become background images.
    Returns the data.yaml path."""
    out_dir = out_dir.resolve()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    boxes_by_frame = {k: g for k, g in boxes.groupby("frame_id", sort=False)}
    for split, frames in splits.items():
        (tmp / "images" / split).mkdir(parents=True)
        (tmp / "labels" / split).mkdir(parents=True)
        for row in frames.itertuples(index=False):
            source = resolve_image(row.image, root)
            if "://" in source or source.startswith("data:"):
                raise ValueError(
                    f"frame {row.frame_id}: cannot train on a remote image ({source}); cache it locally first"
                )
            stem = safe_name(row.frame_id)
            os.symlink(source, tmp / "images" / split / f"{stem}{Path(source).suffix.lower()}")
            lines = _label_lines(boxes_by_frame.get(row.frame_id), row.width, row.height)
            (tmp / "labels" / split / f"{stem}.txt").write_text("".join(lines))
    data = {"path": str(out_dir), **{s: f"images/{s}" for s in splits}, "names": dict(enumerate(names))}
    if "train" not in data and splits:  # ultralytics requires the key even for evaluation-only sets
        data["train"] = f"images/{next(iter(splits))}"
    (tmp / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir / "data.yaml"


def _label_lines(frame_boxes: pd.DataFrame | None, width: int, height: int) -> list[str]:
    if frame_boxes is None:
        return []
    lines = []
    for b in frame_boxes.itertuples(index=False):
        cx, cy = (b.x1 + b.x2) / 2 / width, (b.y1 + b.y2) / 2 / height
        w, h = (b.x2 - b.x1) / width, (b.y2 - b.y1) / height
        lines.append(f"{int(b.class_id)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return lines
