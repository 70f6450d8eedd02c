"""YOLO txt folders: ``images/<split>/*.jpg`` with ``labels/<split>/*.txt`` (class cx cy w h, normalized).

A line with more than five numbers is a polygon (ultralytics' segment format); its bounding
box is used. Images with no label file are background frames with no boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import DatasetError
from ..formats import Source, register_format
from ..images import image_size, list_images
from ..manifest import ManifestBuilder, SourceBox


def read_yolo(
    root: Path,
    builder: ManifestBuilder,
    dataset: str,
    splits: Mapping[str, str] | None = None,
    source_names: Sequence[str] | None = None,
) -> None:
    """``splits`` maps split folder names to train/val/test (default: same name, else train)."""
    img_root = root / "images"
    if not img_root.is_dir():
        raise DatasetError(root, "not a YOLO dataset folder: no images/")
    names = list(source_names) if source_names is not None else list(builder.labels.names)
    folders = [d for d in sorted(img_root.iterdir()) if d.is_dir()] or [img_root]
    for folder in folders:
        sub = folder.relative_to(img_root)
        split = (splits or {}).get(str(sub), str(sub) if str(sub) in ("train", "val", "test") else "train")
        label_dir = root / "labels" / sub
        images = list_images(folder)
        for image in images:
            label_file = label_dir / f"{image.stem}.txt"
            boxes: list[SourceBox] = []
            size = None
            if label_file.exists():  # normalized coordinates: the size is needed to read them
                try:
                    size = image_size(image, "header")
                except DatasetError as error:
                    builder.log.skip(str(error), "unreadable image")
                    continue
                boxes = list(_read_label_file(label_file, *size, names))
            frame_id = f"{dataset}/{sub.as_posix()}/{image.stem}" if str(sub) != "." else f"{dataset}/{image.stem}"
            builder.add_frame(frame_id, image, boxes, split=split, size=size)
        stems = {p.stem for p in images}
        if label_dir.is_dir():
            for orphan in sorted(p for p in label_dir.glob("*.txt") if p.stem not in stems):
                n = sum(1 for line in orphan.read_text().splitlines() if line.strip())
                builder.log.warn(f"{orphan}: label file without an image ({n} boxes), ignored", "orphan label")
                builder.log.orphan_boxes += n


def _read_label_file(path: Path, width: int, height: int, names: Sequence[str]):
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError as e:
            raise DatasetError(path, f"non-numeric value in {line.strip()!r}", line_no) from e
        if len(values) == 5:
            cls, cx, cy, w, h = values
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        elif len(values) >= 7 and len(values) % 2 == 1:
            cls, xs, ys = values[0], values[1::2], values[2::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        else:
            raise DatasetError(
                path, f"expected 5 numbers (class cx cy w h) or a polygon, got {len(values)}: {line.strip()!r}", line_no
            )
        if cls != int(cls) or not 0 <= int(cls) < len(names):
            raise DatasetError(path, f"unknown class id {fields[0]!r}; known ids 0..{len(names) - 1}", line_no)
        yield SourceBox(x1 * width, y1 * height, x2 * width, y2 * height, names[int(cls)], (str(path), line_no))


@register_format("yolo")
def read_yolo_source(source: Source) -> None:
    config = source.config
    read_yolo(source.path("root"), source.builder, source.name, config.get("splits"), config.get("source_names"))
