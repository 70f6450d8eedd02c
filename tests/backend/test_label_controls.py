"""Labeling controls register themselves: the backend pre-annotates with any registered control.

Copy this file when adding a control: register its geometry with `core.labels.control`, build the
label map of a config that uses it, check the regions the predictions get.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.labels import CONTROLS, LabelConfigError, build_label_map, check_label_config, control
from core.predictions import regions

POINTS = (
    '<View><Image name="img" value="$image"/><KeyPointLabels name="kp" toName="img">'
    '<Label value="person"/></KeyPointLabels></View>'
)
BOXES = (
    '<View><Image name="img" value="$image"/><RectangleLabels name="box" toName="img">'
    '<Label value="person"/></RectangleLabels></View>'
)
DETECTION = SimpleNamespace(width=100, height=50, xyxy=np.array([[10, 5, 30, 25]]), conf=np.array([0.9]), cls=[0])


@pytest.fixture
def keypoints():
    @control("KeyPointLabels")
    def centre(x: float, y: float, width: float, height: float) -> dict[str, float]:
        return {"x": x + width / 2, "y": y + height / 2, "width": 0.5}

    yield "keypointlabels"
    CONTROLS.pop("keypointlabels")


def test_rectangle_labels_are_built_in_with_the_box_geometry():
    label_map = build_label_map(BOXES, ["person"])
    (region,) = regions(DETECTION, label_map, 0.25)
    assert region["type"] == "rectanglelabels" and region["value"]["rectanglelabels"] == ["person"]
    assert [region["value"][k] for k in ("x", "y", "width", "height")] == [10.0, 10.0, 20.0, 40.0]
    assert region["score"] == 0.9


def test_an_unregistered_control_is_refused_naming_the_registered_ones():
    with pytest.raises(LabelConfigError, match="no <RectangleLabels> on an <Image>.*KeyPointLabels"):
        check_label_config(POINTS)


def test_a_registered_control_maps_classes_and_shapes_the_regions(keypoints):
    label_map = build_label_map(POINTS, ["person", "car"])
    assert (label_map.from_name, label_map.to_name, label_map.control.region_type) == ("kp", "img", keypoints)
    assert label_map.class_to_label == {0: "person"}
    (region,) = regions(DETECTION, label_map, 0.25)
    assert region["type"] == keypoints and region["value"][keypoints] == ["person"]
    assert (region["value"]["x"], region["value"]["y"]) == (20.0, 30.0)  # the box centre, in percent


def test_a_control_cannot_be_registered_twice(keypoints):
    with pytest.raises(ValueError, match="already registered"):
        control("KeyPointLabels")
