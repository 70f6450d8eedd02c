"""Which Label Studio label each model class becomes, read from the project's labeling config.

The first registered labeling control (`control`; built in: ``<RectangleLabels>``) that points
at an ``<Image>`` is used; the control decides the type and the geometry of the prediction
regions. A model class maps to:

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from label_studio_sdk.label_interface import LabelInterface

log = logging.getLogger(__name__)


class LabelConfigError(ValueError):
    """The labeling config cannot be used for box pre-annotations (answered with HTTP 400)."""


# A control's geometry: a box as x, y, width, height in percent of the image -> the geometry
# fields of the region's ``value`` (the label list is added under the region type).
Geometry = Callable[[float, float, float, float], dict[str, float]]


@dataclass(frozen=True)
class Control:
    tag: str  # as written in labeling configs, e.g. "RectangleLabels"
    region_type: str  # the region ``type`` Label Studio gives it: the tag in lower case
    geometry: Geometry


CONTROLS: dict[str, Control] = {}  # tag in lower case -> control


def control(tag: str) -> Callable[[Geometry], Geometry]:
    """Register a labeling control the backend can pre-annotate with; decorates its geometry.

    @control("KeyPointLabels")
    def keypoint(x, y, width, height):
        return {"x": x + width / 2, "y": y + height / 2, "width": 0.5}
    """
    key = tag.lower()
    if key in CONTROLS:
        raise ValueError(f"labeling control {tag!r} is already registered")

    def register(geometry: Geometry) -> Geometry:
        CONTROLS[key] = Control(tag, key, geometry)
        return geometry

    return register


@control("RectangleLabels")
def rectangle(x: float, y: float, width: float, height: float) -> dict[str, float]:
    return {"x": x, "y": y, "width": width, "height": height, "rotation": 0}


@dataclass(frozen=True)
class ClassLabels:
    """Which label of one labeling config each model class becomes (not the dataset's
    `pipelines.datasets.labelmap.LabelMap`, which maps source names to class ids)."""

    from_name: str  # the control tag's name
    to_name: str  # the Image tag's name
    data_key: str  # the task data field holding the image URL ($image -> "image")
    labels: tuple[str, ...]  # every label of the control, in config order
    class_to_label: dict[int, str]  # model class index -> label
    dropped: tuple[str, ...]  # model classes with no label
    unknown_predicted_values: tuple[str, ...] = ()  # predicted_values naming no model class
    control: Control = CONTROLS["rectanglelabels"]

    def label_of(self, cls: int) -> str | None:
        return self.class_to_label.get(int(cls))


def _box_control(interface: LabelInterface) -> tuple[Any, Any]:
    for tag in interface.controls:
        if tag.tag.lower() not in CONTROLS:
            continue
        for obj in tag.objects:
            if obj.tag.lower() == "image":
                return tag, obj
    tags = sorted({c.tag for c in interface.controls})
    wanted = " or ".join(f"<{c.tag}>" for c in CONTROLS.values())
    raise LabelConfigError(
        f"the labeling config has no {wanted} on an <Image>; this backend pre-annotates objects "
        f"(config controls: {tags or 'none'})"
    )


MAX_CONFIG_BYTES = 256 << 10  # a labeling config is a few KB; anything near this is not one
CACHE_SIZE = 64
_cache: OrderedDict[str, ClassLabels] = OrderedDict()  # by a digest of config and classes: no config text kept
_cache_lock = threading.Lock()


def build_label_map(label_config: str, class_names: Sequence[str]) -> ClassLabels:
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
    """Raise LabelConfigError unless the config has a registered control on an Image."""
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
    control, image = _box_control(interface)
    value = str(getattr(image, "value", "") or "")
    if not value.startswith("$") or len(value) < 2:
        raise LabelConfigError(f'<Image name="{image.name}"> needs value="$field" naming the task data field')
    if not control.labels:
        raise LabelConfigError(f'<RectangleLabels name="{control.name}"> has no <Label> children')
    return control, image, value[1:]


def _build(label_config: str, class_names: tuple[str, ...]) -> ClassLabels:
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
    return ClassLabels(
        from_name=control.name,
        to_name=image.name,
        data_key=data_key,
        labels=labels,
        class_to_label=dict(sorted(mapping.items())),
        dropped=tuple(n for i, n in enumerate(class_names) if i not in mapping),
        unknown_predicted_values=tuple(unknown),
        control=CONTROLS[control.tag.lower()],
    )
