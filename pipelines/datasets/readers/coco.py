"""COCO json: ``images``, ``annotations`` (bbox = [x, y, w, h] in pixels) and ``categories``."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ..errors import DatasetError
from ..formats import Source, register_format
from ..manifest import ManifestBuilder, SourceBox


def read_coco(json_path: Path, images_dir: Path, builder: ManifestBuilder, dataset: str, split: str = "train") -> None:
    try:
        data = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(json_path, f"invalid JSON ({e.msg})", e.lineno) from e
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DatasetError(json_path, f"not a COCO file: no {key!r}")
    category = {c["id"]: c["name"] for c in data["categories"]}
    boxes_of: dict[int, list[SourceBox]] = defaultdict(list)
    for i, ann in enumerate(data["annotations"]):
        where = (f"{json_path} annotations[{i}] (id {ann.get('id')})", None)
        if ann.get("category_id") not in category:
            raise DatasetError(where[0], f"unknown category_id {ann.get('category_id')!r}")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4):
            raise DatasetError(where[0], f"bbox must be [x, y, w, h], got {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        boxes_of[ann["image_id"]].append(SourceBox(x, y, x + w, y + h, category[ann["category_id"]], where))
    for i, img in enumerate(data["images"]):
        file_name = Path(img["file_name"])
        size = (int(img["width"]), int(img["height"])) if img.get("width") and img.get("height") else None
        builder.add_frame(
            f"{dataset}/{file_name.with_suffix('').as_posix()}",
            images_dir / file_name,
            boxes_of.get(img["id"], []),
            split=split,
            size=size,
            listed_from_folder=False,
            where=(f"{json_path} images[{i}] (id {img['id']})", None),
        )


@register_format("coco")
def read_coco_source(source: Source) -> None:
    read_coco(source.path("json"), source.path("images"), source.builder, source.name, source.split)
