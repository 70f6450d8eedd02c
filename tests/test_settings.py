"""Settings come from params.yaml; ALOD__SECTION__KEY environment variables override them."""

from __future__ import annotations

from core.settings import apply_env_overrides, load_params, resolve_path
from pipelines.datasets.labelmap import LabelMap


def test_env_overrides_are_yaml_parsed_and_nested():
    params = {"train": {"epochs": 10}, "dataset": {"name": "bccd"}}
    env = {"ALOD__TRAIN__EPOCHS": "3", "ALOD__DATASET__NAME": "coco128", "ALOD__NEW__DEEP__KEY": "[1, 2]", "OTHER": "x"}
    out = apply_env_overrides(params, env)
    assert out == {"train": {"epochs": 3}, "dataset": {"name": "coco128"}, "new": {"deep": {"key": [1, 2]}}}
    assert params["train"]["epochs"] == 10  # the input is not modified


def test_repo_params_name_the_shared_weights_and_resolve_relative_to_the_repo(shared):
    params = load_params(environ={})
    weights = resolve_path(params, params["model"]["base_weights"])
    assert weights == shared / "weights/yolo11n-coco.pt" and weights.exists()
    assert params["datasets"][params["dataset"]["name"]]["format"] in ("voc", "yolo", "coco", "mot", "labelstudio")


def test_label_map_maps_aliases_then_exact_then_case_insensitive_names():
    labels = LabelMap.from_config(["pedestrian", "car"], {"person": "pedestrian"})
    assert labels.canonical("person") == "pedestrian"
    assert labels.canonical("car") == "car" and labels.canonical("CAR") == "car"
    assert labels.canonical("truck") is None
    assert LabelMap.from_config("coco80").names[0] == "person"
