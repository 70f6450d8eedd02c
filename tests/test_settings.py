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


def test_an_unknown_key_is_refused_with_the_valid_ones_listed(tmp_path):
    import pytest

    from core.sections import SettingsError
    from tests.conftest import settings_file

    path = settings_file(tmp_path / "params.yaml", train={"epoch": 3})  # a typo of epochs
    with pytest.raises(SettingsError, match=r"train: unknown key\(s\) \['epoch'\]; valid: .*'epochs'"):
        load_params(path, environ={})


def test_a_missing_key_and_a_wrong_type_are_named(tmp_path):
    import pytest
    import yaml

    from core.sections import SettingsError
    from tests.conftest import settings_file

    path = settings_file(tmp_path / "params.yaml")
    params = yaml.safe_load(path.read_text())
    del params["budget"]["box_cost"]
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(SettingsError, match=r"missing key\(s\) \['budget.box_cost'\]"):
        load_params(path, environ={})
    with pytest.raises(SettingsError, match="train.epochs: expected int, got 'five'"):
        load_params(settings_file(tmp_path / "p2.yaml"), environ={"ALOD__TRAIN__EPOCHS": "five"})


def test_every_section_of_the_repository_params_loads_typed():
    from core.sections import validate

    settings = validate(load_params(environ={}))
    assert settings.train.epochs == 5 and settings.backend.insecure_no_auth is False
