"""Label Studio JSON export (tasks with annotations), both ways.

Reading: for each task, the ground-truth annotation if one is marked, else the most recent
annotation that was not cancelled; its ``rectanglelabels`` regions become boxes (percent
coordinates times the original size). ``frame_id``, ``video``, ``frame`` and ``split`` in the
task data are kept; every other data key goes to ``meta``. Writing does the reverse, so a
manifest survives import -> export -> import.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from ..errors import DatasetError
from ..formats import Source, register_format
from ..manifest import Manifest, ManifestBuilder, SourceBox

LOCAL_FILES_PREFIX = "/data/local-files/?d="
RESERVED_KEYS = ("frame_id", "video", "frame", "split")


def read_labelstudio(
    json_path: Path,
    builder: ManifestBuilder,
    dataset: str,
    image_key: str = "image",
    document_root: Path | None = None,
    label_studio_url: str | None = None,
) -> None:
    """A JSON export file. ``document_root``: Label Studio's LOCAL_FILES_DOCUMENT_ROOT, to read
    local-files images from disk. ``label_studio_url``: prefix for /data/upload/... paths."""
    try:
        tasks = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(json_path, f"invalid JSON ({e.msg})", e.lineno) from e
    if not isinstance(tasks, list):
        raise DatasetError(json_path, "a Label Studio JSON export is a list of tasks")
    read_labelstudio_tasks(tasks, str(json_path), builder, dataset, image_key, document_root, label_studio_url)


def read_labelstudio_tasks(
    tasks: list[dict[str, Any]],
    source: str,
    builder: ManifestBuilder,
    dataset: str,
    image_key: str = "image",
    document_root: Path | None = None,
    label_studio_url: str | None = None,
) -> None:
    """Tasks as Label Studio exports them (from a file, or through the SDK); ``source`` names them in errors."""
    base_url = label_studio_url or os.environ.get("LABEL_STUDIO_URL", "http://localhost:8080")
    for i, task in enumerate(tasks):
        where = f"{source} task {task.get('id', f'#{i}')}"
        data = task.get("data") or {}
        if image_key not in data:
            raise DatasetError(where, f"task data has no {image_key!r} key (keys: {sorted(data)})")
        image = _image_location(str(data[image_key]), document_root, base_url)
        annotation = _chosen_annotation(task)
        boxes, size = _boxes(annotation, where) if annotation else ([], None)
        meta = {k: v for k, v in data.items() if k not in (image_key, *RESERVED_KEYS)}
        meta["ls_task_id"] = task.get("id")
        meta["annotated"] = annotation is not None
        if annotation is not None:
            meta["ls_annotation_id"] = annotation.get("id")
            if annotation.get("lead_time") is not None:
                meta["lead_time"] = float(annotation["lead_time"])
        builder.add_frame(
            str(data.get("frame_id") or f"{dataset}/task-{task.get('id', i)}"),
            image,
            boxes,
            split=str(data.get("split", "train")),
            video=str(data.get("video", "")),
            frame=int(data.get("frame", 0)),
            size=size,
            meta=meta,
            listed_from_folder=False,
            where=(where, None),
        )


def _image_location(value: str, document_root: Path | None, base_url: str) -> str | Path:
    if value.startswith(LOCAL_FILES_PREFIX):
        rel = parse_qs(urlparse(value).query).get("d", [""])[0]
        if document_root is not None:
            return document_root / rel
        return base_url.rstrip("/") + value
    if value.startswith("/data/"):
        return base_url.rstrip("/") + value
    if "://" in value or value.startswith("data:"):
        return value
    return Path(value)


def _chosen_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    valid = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not valid:
        return None
    ground_truth = [a for a in valid if a.get("ground_truth")]
    pool = ground_truth or valid
    return max(pool, key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0))


def _boxes(annotation: dict[str, Any], where: str) -> tuple[list[SourceBox], tuple[int, int] | None]:
    boxes, size = [], None
    for j, region in enumerate(annotation.get("result") or []):
        if region.get("type") != "rectanglelabels":
            continue
        here = (f"{where} annotation {annotation.get('id')} result[{j}]", None)
        v = region.get("value") or {}
        labels = v.get("rectanglelabels") or []
        if len(labels) != 1:
            raise DatasetError(here[0], f"a box needs exactly one label, got {labels!r}")
        if abs(float(v.get("rotation") or 0.0)) > 1e-9:
            raise DatasetError(here[0], "rotated boxes are not supported for detection")
        w, h = int(region.get("original_width") or 0), int(region.get("original_height") or 0)
        if not (w and h):
            raise DatasetError(here[0], "region has no original_width/original_height")
        size = (w, h)
        x, y = float(v["x"]) / 100 * w, float(v["y"]) / 100 * h
        boxes.append(
            SourceBox(x, y, x + float(v["width"]) / 100 * w, y + float(v["height"]) / 100 * h, labels[0], here)
        )
    return boxes, size


def to_labelstudio_tasks(
    manifest: Manifest,
    root: Path,
    document_root: Path | None = None,
    image_key: str = "image",
    from_name: str = "label",
    to_name: str = "image",
) -> list[dict[str, Any]]:
    """Tasks (with the ground-truth boxes as annotations) that Label Studio imports.

    Local images under ``document_root`` become local-files URLs; others keep their path or URL.
    """
    boxes_by_frame = {k: g for k, g in manifest.boxes.groupby("frame_id", sort=False)}
    tasks = []
    for row in manifest.frames.itertuples(index=False):
        data: dict[str, Any] = {**json.loads(row.meta or "{}")}
        for key in ("ls_task_id", "ls_annotation_id", "annotated", "lead_time"):
            data.pop(key, None)
        data.update(
            {
                image_key: _task_image(row.image, root, document_root),
                "frame_id": row.frame_id,
                "split": row.split,
                "video": row.video,
                "frame": int(row.frame),
            }
        )
        result = []
        frame_boxes = boxes_by_frame.get(row.frame_id)
        for k, b in enumerate(frame_boxes.itertuples(index=False) if frame_boxes is not None else []):
            result.append(
                {
                    "id": f"{k}",
                    "type": "rectanglelabels",
                    "from_name": from_name,
                    "to_name": to_name,
                    "original_width": int(row.width),
                    "original_height": int(row.height),
                    "image_rotation": 0,
                    "value": {
                        "x": b.x1 / row.width * 100,
                        "y": b.y1 / row.height * 100,
                        "width": (b.x2 - b.x1) / row.width * 100,
                        "height": (b.y2 - b.y1) / row.height * 100,
                        "rotation": 0,
                        "rectanglelabels": [b.label],
                    },
                }
            )
        tasks.append({"data": data, "annotations": [{"result": result, "ground_truth": True}]})
    return tasks


def _task_image(image: str, root: Path, document_root: Path | None) -> str:
    if "://" in image or image.startswith("data:"):
        return image
    path = (root / image).resolve()
    if document_root is not None:
        return LOCAL_FILES_PREFIX + quote(os.path.relpath(path, document_root.resolve()))
    return str(path)


@register_format("labelstudio")
def read_labelstudio_source(source: Source) -> None:
    """A JSON export (``json:``) or a live project (``project:``, through the SDK)."""
    config, doc_root = dict(source.config), source.optional_path("document_root")
    image_key = config.get("image_key", "image")
    if config.get("project"):
        from pipelines.labelstudio.project import client, connection, export_tasks

        url, _, project = connection(config)
        tasks = export_tasks(client(config), project)
        read_labelstudio_tasks(tasks, f"{url} project {project}", source.builder, source.name, image_key, doc_root, url)
    else:
        read_labelstudio(source.path("json"), source.builder, source.name, image_key, doc_root)
