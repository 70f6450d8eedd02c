"""The device check's label-studio-sdk stand-in reads labeling configs as the real SDK does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from label_studio_sdk.label_interface import LabelInterface

from tests.backend.conftest import RECT_CONFIG
from tests.backend.test_batching import CONFIG_A, CONFIG_B

STUB = Path(__file__).resolve().parents[2] / "benchmarks" / "device_stub" / "label_studio_sdk" / "label_interface.py"


def stub_interface() -> type:
    spec = importlib.util.spec_from_file_location("device_stub_label_interface", STUB)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.LabelInterface


def summary(interface: object) -> list[tuple]:
    """What core/labels.py reads: control tag and name, its objects, labels and predicted_values."""
    return [
        (
            c.tag.lower(),
            c.name,
            [(o.tag.lower(), o.name, o.value) for o in c.objects],
            list(c.labels),
            [c.labels_attrs[label].attr.get("predicted_values") for label in c.labels],
        )
        for c in interface.controls
    ]


def test_the_stub_sees_the_same_controls_objects_and_labels_as_the_sdk():
    stub = stub_interface()
    for config in (RECT_CONFIG, CONFIG_A, CONFIG_B):
        assert summary(stub(config)) == summary(LabelInterface(config))
