"""Which Label Studio label each model class becomes, read from the project's labeling config.

The first ``<RectangleLabels>`` that points at an ``<Image>`` is used. A model class maps to:

1. the label whose ``predicted_values="car,truck"`` attribute lists it (several classes, one label);
2. else the label with exactly its name;
3. else the label with its name up to case.

Model classes that match no label are dropped (their boxes are neither shown nor scored).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from label_studio_sdk.label_interface import LabelInterface

log = logging.getLogger(__name__)


class LabelConfigError(ValueError):
    """The labeling config cannot be used for box pre-annotations (answered with HTTP 400)."""


@dataclass(frozen=True)
class LabelMap:
    from_name: str  # the RectangleLabels tag's name
    to_name: str  # the Image tag's name
    data_key: str  # the task data field holding the image URL ($image -> "image")
    labels: tuple[str, ...]  # every label of the RectangleLabels tag, in config order
    class_to_label: dict[int, str]  # model class index -> label
    dropped: tuple[str, ...]  # model classes with no label
    unknown_predicted_values: tuple[str, ...] = ()  # predicted_values naming no model class

    def label_of(self, cls: int) -> str | None:
        return self.class_to_label.get(int(cls))


def _rectangle_labels(interface: LabelInterface) -> tuple[Any, Any]:
    for control in interface.controls:
        if control.tag.lower() != "rectanglelabels":
            continue
        for obj in control.objects:
            if obj.tag.lower() == "image":
                return control, obj
    tags = sorted({c.tag for c in interface.controls})
    raise LabelConfigError(
        "the labeling config has no <RectangleLabels> on an <Image>; this backend pre-annotates boxes "
        f"(config controls: {tags or 'none'})"
    )


MAX_CONFIG_BYTES = 256 << 10  # a labeling config is a few KB; anything near this is not one
CACHE_SIZE = 64
_cache: OrderedDict[str, LabelMap] = OrderedDict()  # by a digest of config and classes: no config text kept
_cache_lock = threading.Lock()


def build_label_map(label_config: str, class_names: Sequence[str]) -> LabelMap:
    """The label map of ``label_config`` for a model with ``class_names`` (index = class id)."""
    _check_size(label_config)
    names = tuple(str(n) for n in class_names)
    key = hashlib.sha256("\0".join((label_config, *names)).encode()).hexdigest()
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    label_map = _build(label_config, names)
    with _cache_lock:
        _cache[key] = label_map
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return label_map


def check_label_config(label_config: str) -> None:
    """Raise LabelConfigError unless the config has a usable RectangleLabels on an Image."""
    _check_size(label_config)
    _parse(label_config)


def _check_size(label_config: object) -> None:
    if isinstance(label_config, str) and len(label_config) > MAX_CONFIG_BYTES:
        raise LabelConfigError(f"the labeling config is larger than {MAX_CONFIG_BYTES} bytes")


def _parse(label_config: str) -> tuple[Any, Any, str]:
    if not isinstance(label_config, str) or not label_config.strip():
        raise LabelConfigError("the request has no labeling config (label_config)")
    try:
        interface = LabelInterface(label_config)
    except Exception as exc:  # noqa: BLE001 - the SDK raises several XML / validation error types
        raise LabelConfigError(f"the labeling config cannot be parsed: {exc}") from None
    control, image = _rectangle_labels(interface)
    value = str(getattr(image, "value", "") or "")
    if not value.startswith("$") or len(value) < 2:
        raise LabelConfigError(f'<Image name="{image.name}"> needs value="$field" naming the task data field')
    if not control.labels:
        raise LabelConfigError(f'<RectangleLabels name="{control.name}"> has no <Label> children')
    return control, image, value[1:]


def _build(label_config: str, class_names: tuple[str, ...]) -> LabelMap:
    control, image, data_key = _parse(label_config)
    labels = tuple(control.labels)

    exact = {name: i for i, name in reversed(list(enumerate(class_names)))}
    folded = {name.casefold(): i for i, name in reversed(list(enumerate(class_names)))}
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    for label in labels:
        attr = control.labels_attrs[label].attr.get("predicted_values") or ""
        for raw in attr.split(","):
            name = raw.strip()
            if not name:
                continue
            cls = exact.get(name, folded.get(name.casefold()))
            if cls is None:
                unknown.append(name)
                continue
            if cls in mapping and mapping[cls] != label:
                raise LabelConfigError(
                    f"model class {class_names[cls]!r} is listed in predicted_values of both "
                    f"{mapping[cls]!r} and {label!r}"
                )
            mapping[cls] = label
    for matcher in (lambda n: n, str.casefold):
        by_name = {matcher(label): label for label in reversed(labels)}
        for cls, name in enumerate(class_names):
            if cls not in mapping and matcher(name) in by_name:
                mapping[cls] = by_name[matcher(name)]
    if not mapping:  # a new domain: the model knows none of the project's classes yet
        log.warning(
            "no model class maps to a label of <RectangleLabels name=%r> (labels %s; model classes %s%s): "
            "predictions carry the task score only, no regions, until a model trained on this project is served",
            control.name,
            list(labels),
            list(class_names)[:20],
            " ..." if len(class_names) > 20 else "",
        )
    if unknown:
        log.warning("predicted_values name no model class and are ignored: %s", unknown)
    return LabelMap(
        from_name=control.name,
        to_name=image.name,
        data_key=data_key,
        labels=labels,
        class_to_label=dict(sorted(mapping.items())),
        dropped=tuple(n for i, n in enumerate(class_names) if i not in mapping),
        unknown_predicted_values=tuple(unknown),
    )
