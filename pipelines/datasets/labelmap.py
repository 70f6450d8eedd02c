"""One explicit label map: the ordered class names of the project, and how source names map to them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

COCO80: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)

NAMED_LABEL_SETS: dict[str, tuple[str, ...]] = {"coco80": COCO80}


@dataclass(frozen=True)
class LabelMap:
    names: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)  # source name -> one of names

    def __post_init__(self) -> None:
        if not self.names:
            raise ValueError("a label map needs at least one class name")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate class names in label map: {list(self.names)}")
        unknown = sorted(set(self.aliases.values()) - set(self.names))
        if unknown:
            raise ValueError(f"aliases point at names not in the label map: {unknown}")

    @classmethod
    def from_config(cls, labels: str | Sequence[str], aliases: Mapping[str, str] | None = None) -> LabelMap:
        if isinstance(labels, str):
            if labels not in NAMED_LABEL_SETS:
                raise ValueError(f"unknown label set {labels!r}; known: {sorted(NAMED_LABEL_SETS)}")
            labels = NAMED_LABEL_SETS[labels]
        return cls(tuple(str(n) for n in labels), dict(aliases or {}))

    def canonical(self, source_name: str) -> str | None:
        """The label a source class name maps to: alias, exact name, then case-insensitive name."""
        if source_name in self.aliases:
            return self.aliases[source_name]
        if source_name in self.names:
            return source_name
        folded = {n.casefold(): n for n in self.names}
        return folded.get(source_name.strip().casefold())

    def class_id(self, name: str) -> int:
        return self.names.index(name)

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "aliases": dict(self.aliases)}

    def save(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path) -> LabelMap:
        data = yaml.safe_load(path.read_text())
        return cls(tuple(data["names"]), dict(data.get("aliases") or {}))
