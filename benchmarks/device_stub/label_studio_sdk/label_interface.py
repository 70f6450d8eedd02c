"""The part of label-studio-sdk's LabelInterface that core/labels.py uses, parsed with ElementTree."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass
class Tag:
    tag: str
    name: str
    attr: dict[str, str]
    value: str = ""


@dataclass
class Control(Tag):
    objects: list[Tag] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    labels_attrs: dict[str, Tag] = field(default_factory=dict)


class LabelInterface:
    def __init__(self, config: str) -> None:
        root = ET.fromstring(config)
        objects = {
            el.get("name", ""): Tag(el.tag, el.get("name", ""), dict(el.attrib), el.get("value", ""))
            for el in root.iter()
            if str(el.get("value", "")).startswith("$")
        }
        self.controls: list[Control] = []
        for el in root.iter():
            if el.get("toName") is None:
                continue
            control = Control(el.tag, el.get("name", ""), dict(el.attrib))
            control.objects = [objects[n] for n in el.get("toName", "").split(",") if n in objects]
            for child in el:
                if child.tag == "Label" and child.get("value") is not None:
                    label = child.get("value", "")
                    control.labels.append(label)
                    control.labels_attrs[label] = Tag("Label", label, dict(child.attrib))
            self.controls.append(control)
