"""Import a dataset described by its settings (a ``datasets.<name>`` block of params.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ImportLog
from .labelmap import LabelMap
from .manifest import Manifest, ManifestBuilder
from .readers.coco import read_coco
from .readers.labelstudio import read_labelstudio, read_labelstudio_tasks
from .readers.mot import read_mot
from .readers.video import read_frame_folders, read_video_files
from .readers.voc import read_voc
from .readers.yolo import read_yolo

FORMATS = ("voc", "yolo", "coco", "mot", "labelstudio", "video", "frames", "multi")


def import_dataset(
    name: str,
    config: Mapping[str, Any],
    base: Path,
    *,
    strict: bool = True,
    verify: str = "full",
) -> tuple[Manifest, ImportLog]:
    """Read one dataset into a Manifest. Paths in ``config`` are relative to ``base`` (the repo root).

    Config keys: ``format`` (one of FORMATS), ``root``, ``labels`` (names or a named set such as
    ``coco80``), optional ``aliases``; per format: ``splits`` (yolo), ``json`` and ``images``
    (coco), ``split`` (coco, mot), ``classes`` (mot), ``document_root`` and ``image_key``
    (labelstudio), ``source_names`` (yolo: the names of the class ids in the txt files), ``every``
    and ``frames_dir`` (video: keep every n-th frame, decoded into this folder);
    ``degenerate_boxes: drop`` drops zero-area boxes with a warning instead of failing. ``multi``
    reads a list of ``sources`` (each a format block with its own ``split``) into one manifest.
    """
    fmt = config.get("format")
    if fmt not in FORMATS:
        raise ValueError(f"dataset {name!r}: unknown format {fmt!r}; supported: {', '.join(FORMATS)}")
    labels = LabelMap.from_config(config.get("labels") or [], config.get("aliases"))
    builder = ManifestBuilder(labels, base, ImportLog(strict=strict), verify)
    builder.drop_degenerate = config.get("degenerate_boxes", "error") == "drop"
    if fmt == "multi":
        for i, source in enumerate(config.get("sources") or []):
            if source.get("format") not in set(FORMATS) - {"multi"}:
                raise ValueError(f"dataset {name!r} sources[{i}]: unknown format {source.get('format')!r}")
            _read(name, source, base, builder)
    else:
        _read(name, config, base, builder)
    return builder.build(), builder.log


def _read(name: str, config: Mapping[str, Any], base: Path, builder: ManifestBuilder) -> None:
    fmt = config["format"]

    def path(key: str) -> Path:
        value = config.get(key)
        if value is None:
            raise ValueError(f"dataset {name!r} ({fmt}) needs {key!r}")
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    split = config.get("split", "train")
    if fmt == "voc":
        optional = {key: path(key) for key in ("annotations", "images") if config.get(key)}
        read_voc(path("root"), builder, name, **optional)
    elif fmt == "yolo":
        read_yolo(path("root"), builder, name, config.get("splits"), config.get("source_names"))
    elif fmt == "coco":
        read_coco(path("json"), path("images"), builder, name, split)
    elif fmt == "mot":
        read_mot(path("root"), builder, name, split, config.get("classes", (1,)))
    elif fmt == "video":
        frames_dir = path("frames_dir") if config.get("frames_dir") else base / "data" / "frames" / name
        read_video_files(path("root"), builder, name, frames_dir, int(config.get("every", 1)), split)
    elif fmt == "frames":
        read_frame_folders(path("root"), builder, name, split)
    else:
        doc_root = path("document_root") if config.get("document_root") else None
        image_key = config.get("image_key", "image")
        if config.get("project"):  # a live project, through the SDK
            from pipelines.labelstudio.project import client, connection, export_tasks

            url, _, project = connection(dict(config))
            tasks = export_tasks(client(dict(config)), project)
            read_labelstudio_tasks(tasks, f"{url} project {project}", builder, name, image_key, doc_root, url)
        else:
            read_labelstudio(path("json"), builder, name, image_key, doc_root)
