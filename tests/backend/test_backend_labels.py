"""Label mapping from the labeling config: (config, model classes, expected) triples."""

from __future__ import annotations

import pytest

from core.labels import LabelConfigError, build_label_map, check_label_config

COCO_SUBSET = ("person", "bicycle", "car", "motorcycle", "bus", "truck", "dog", "Dog")


def rect(*labels: str, image_value: str = "$image", extra: str = "") -> str:
    body = "".join(f"<Label {a}/>" if "=" in a else f'<Label value="{a}"/>' for a in labels)
    return (
        f'<View><Image name="img" value="{image_value}"/>{extra}'
        f'<RectangleLabels name="box" toName="img">{body}</RectangleLabels></View>'
    )


@pytest.mark.parametrize(
    ("config", "classes", "expected"),
    [
        # exact names
        (rect("person", "car"), COCO_SUBSET, {0: "person", 2: "car"}),
        # case-insensitive when no exact match; an exact match wins over a case-folded one
        (rect("PERSON", "Car", "dog"), COCO_SUBSET, {0: "PERSON", 2: "Car", 6: "dog", 7: "dog"}),
        # predicted_values maps several classes to one label
        (
            rect('value="Vehicle" predicted_values="car,truck, bus"', "person"),
            COCO_SUBSET,
            {0: "person", 2: "Vehicle", 4: "Vehicle", 5: "Vehicle"},
        ),
        # predicted_values beats a label named like the class
        (rect('value="Vehicle" predicted_values="car"', "car"), COCO_SUBSET, {2: "Vehicle"}),
        # predicted_values match model classes up to case, unknown ones are ignored
        (
            rect('value="Wheels" predicted_values="BICYCLE,Motorcycle,hoverboard"'),
            COCO_SUBSET,
            {1: "Wheels", 3: "Wheels"},
        ),
        # a single-class model (the ball detector)
        (rect("Ball", "Player"), ("ball",), {0: "Ball"}),
        # the image field can have any name
        (rect("person", image_value="$url"), COCO_SUBSET, {0: "person"}),
    ],
    ids=[
        "exact",
        "case-insensitive",
        "predicted-values",
        "predicted-values-first",
        "predicted-values-case",
        "single-class",
        "other-field",
    ],
)
def test_model_classes_map_to_labels(config, classes, expected):
    label_map = build_label_map(config, classes)
    assert label_map.class_to_label == expected
    assert label_map.dropped == tuple(n for i, n in enumerate(classes) if i not in expected)
    assert (label_map.from_name, label_map.to_name) == ("box", "img")


def test_the_image_field_and_unknown_predicted_values_are_reported():
    label_map = build_label_map(
        rect('value="Wheels" predicted_values="bicycle,hoverboard"', image_value="$photo"), COCO_SUBSET
    )
    assert label_map.data_key == "photo"
    assert label_map.unknown_predicted_values == ("hoverboard",)
    assert label_map.label_of(1) == "Wheels" and label_map.label_of(0) is None


def test_the_first_rectanglelabels_on_an_image_is_used():
    config = (
        '<View><Text name="t" value="$text"/><Labels name="ner" toName="t"><Label value="person"/></Labels>'
        '<Image name="img" value="$image"/><RectangleLabels name="box" toName="img"><Label value="car"/>'
        "</RectangleLabels></View>"
    )
    label_map = build_label_map(config, COCO_SUBSET)
    assert (label_map.from_name, label_map.class_to_label) == ("box", {2: "car"})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            '<View><Image name="img" value="$image"/>'
            '<Choices name="c" toName="img"><Choice value="a"/></Choices></View>',
            "no <RectangleLabels> on an <Image>",
        ),
        ('<View><Text name="t" value="$t"/></View>', "no <RectangleLabels> on an <Image>"),
        ("<View><Image name=", "cannot be parsed"),
        ("", "no labeling config"),
        (rect('value="A" predicted_values="car"', 'value="B" predicted_values="car"'), "both 'A' and 'B'"),
        (rect("person", image_value="https://example.com/fixed.jpg"), 'needs value="$field"'),
    ],
    ids=["choices-only", "no-image", "broken-xml", "empty", "class-in-two-labels", "literal-image"],
)
def test_unusable_configs_raise_a_clear_error(config, message):
    with pytest.raises(LabelConfigError, match=message.replace("$", r"\$")):
        build_label_map(config, COCO_SUBSET)


def test_setup_check_needs_no_model():
    check_label_config(rect("anything"))  # no class names: only the structure is checked
    with pytest.raises(LabelConfigError, match="RectangleLabels"):
        check_label_config('<View><Image name="img" value="$image"/></View>')


def test_a_project_whose_classes_the_model_lacks_gets_scores_but_no_regions_yet():
    label_map = build_label_map(rect("cat", "horse"), COCO_SUBSET)  # a new domain: nothing maps
    assert label_map.class_to_label == {} and label_map.dropped == tuple(COCO_SUBSET)
