"""Import a dataset described by its settings (a ``datasets.<name>`` block of params.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ImportLog
from .formats import Source, formats
from .labelmap import LabelMap
from .manifest import Manifest, ManifestBuilder


def import_dataset(
    name: str,
    config: Mapping[str, Any],
    base: Path,
    *,
    strict: bool = True,
    verify: str = "full",
) -> tuple[Manifest, ImportLog]:
    """Read one dataset into a Manifest. Paths in ``config`` are relative to ``base`` (the repo root).

    Config keys: ``format`` (a registered format, see `pipelines.datasets.formats`), ``root``,
    ``labels`` (names or a named set such as ``coco80``), optional ``aliases``; per format:
    ``splits`` (yolo), ``json`` and ``images`` (coco), ``split`` (coco, mot), ``classes`` (mot),
    ``document_root`` and ``image_key`` (labelstudio), ``source_names`` (yolo: the names of the
    class ids in the txt files), ``every`` and ``frames_dir`` (video: keep every n-th frame,
    decoded into this folder); ``annotations`` and ``images`` (voc, when not found by layout);
    ``degenerate_boxes: drop`` drops zero-area boxes with a warning instead of failing. ``multi``
    reads a list of ``sources`` (each a format block with its own ``split``) into one manifest.
    """
    fmt, known = config.get("format"), [*formats(), "multi"]
    if fmt not in known:
        raise ValueError(f"dataset {name!r}: unknown format {fmt!r}; supported: {', '.join(known)}")
    labels = LabelMap.from_config(config.get("labels") or [], config.get("aliases"))
    builder = ManifestBuilder(labels, base, ImportLog(strict=strict), verify)
    builder.drop_degenerate = config.get("degenerate_boxes", "error") == "drop"
    if fmt == "multi":
        for i, source in enumerate(config.get("sources") or []):
            if source.get("format") not in formats():
                raise ValueError(f"dataset {name!r} sources[{i}]: unknown format {source.get('format')!r}")
            _read(name, source, base, builder)
    else:
        _read(name, config, base, builder)
    return builder.build(), builder.log


def _read(name: str, config: Mapping[str, Any], base: Path, builder: ManifestBuilder) -> None:
    formats()[config["format"]](Source(name, config, base, builder))
