"""Model versions: reported correctly, loaded once, switched without a restart (file and MLflow registry)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from core.backend_settings import BackendSettings
from core.model_store import DIGEST_TAG, ModelStore, file_version, find_weights, resolve, sha256_file

COCO_WEIGHTS = "weights/yolo11n-coco.pt"
BALL_WEIGHTS = "weights/yolov9t-ball.pt"
CONFIG = (
    '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
    '<Label value="Person"/><Label value="Ball"/></RectangleLabels></View>'
)


def test_a_file_version_is_its_name_and_content_hash(tmp_path, shared):
    a = tmp_path / "model.pt"
    shutil.copy(shared / COCO_WEIGHTS, a)
    version = file_version(a)
    assert version.startswith("model.pt@") and len(version) == len("model.pt@") + 8
    assert resolve(str(a)).version == version
    shutil.copy(shared / BALL_WEIGHTS, a)
    assert file_version(a) != version  # retrained weights written over the file: a new version


def test_find_weights_prefers_best_pt_and_refuses_ambiguity(tmp_path):
    (tmp_path / "a" / "weights").mkdir(parents=True)
    (tmp_path / "a" / "weights" / "last.pt").write_bytes(b"x")
    assert find_weights(tmp_path / "a").name == "last.pt"
    (tmp_path / "a" / "weights" / "best.pt").write_bytes(b"x")
    assert find_weights(tmp_path / "a").name == "best.pt"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.pt").write_bytes(b"x")
    (tmp_path / "b" / "y.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="several .pt files"):
        find_weights(tmp_path / "b")
    (tmp_path / "b" / "model.pt").write_bytes(b"x")  # the cycle's model folder: model.pt beside previous.pt
    assert find_weights(tmp_path / "b").name == "model.pt"
    with pytest.raises(FileNotFoundError):
        find_weights(tmp_path / "a" / "weights" / "nothing")


@pytest.mark.parametrize("uri", ["models:/", "models:/a/b/c", "models:/name@"])
def test_malformed_registry_uris_are_refused(uri):
    with pytest.raises(ValueError, match="cannot parse model URI"):
        resolve(uri)


def test_the_model_loads_once_and_a_new_file_version_is_swapped_in_without_a_restart(tmp_path, shared, params):
    from core.detector import Detector

    path = tmp_path / "model.pt"
    shutil.copy(shared / COCO_WEIGHTS, path)
    loads = []

    def load(weights: Path) -> Detector:
        loads.append(weights)
        return Detector.from_params(params, weights)

    store = ModelStore(str(path), load, tmp_path / "cache")
    assert not store.loaded and store.reported_version() == file_version(path)  # resolved, not loaded
    detector, ref = store.model()
    assert store.model()[0] is detector and len(loads) == 1
    assert len(detector.names) == 80

    shutil.copy(shared / BALL_WEIGHTS, path)
    new = store.refresh()
    assert new.version != ref.version
    store.wait_for_switch(60)
    detector2, ref2 = store.model()
    assert ref2.version == new.version and detector2.names == ("ball",)
    assert len(loads) == 2


@pytest.mark.slow
def test_a_moved_registry_alias_is_served_after_setup_and_by_polling(tmp_path, shared, params, monkeypatch):
    from mlflow import MlflowClient

    from backend.app import create_app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("alod-backend-test", artifact_location=str(tmp_path / "artifacts"))
    client.create_registered_model("alod-test")

    def register(weights: Path) -> str:  # what the cycle does: log best.pt with a run, register, move the alias
        run = client.create_run(experiment)
        client.log_artifact(run.info.run_id, str(weights), artifact_path="model")
        client.set_terminated(run.info.run_id)
        source = f"{run.info.artifact_uri}/model"
        tags = {DIGEST_TAG: sha256_file(weights)}  # recorded at registration, checked before serving
        version = client.create_model_version("alod-test", source, run.info.run_id, tags=tags).version
        client.set_registered_model_alias("alod-test", "champion", version)
        return str(version)

    assert register(shared / COCO_WEIGHTS) == "1"
    env = {"MODEL_URI": "models:/alod-test@champion", "MLFLOW_TRACKING_URI": uri, "ALOD_INSECURE_NO_AUTH": "1"}
    settings = BackendSettings.load(
        {
            **params,
            "backend": {
                **params["backend"],
                "model_cache_dir": str(tmp_path / "cache"),
                "model_poll_s": 0.5,
                "insecure_no_auth": True,
            },
        },
        environ=env,
    )
    app = create_app(settings)
    http = app.test_client()
    image = (shared / "data/coco128/images/train2017/000000000036.jpg").read_bytes()
    import base64

    task = {"id": 1, "data": {"image": "data:image/jpeg;base64," + base64.b64encode(image).decode()}}

    def predict() -> dict:
        r = http.post("/predict", json={"tasks": [task], "label_config": CONFIG})
        assert r.status_code == 200, r.json
        return r.json["results"][0]

    assert http.post("/setup", json={"schema": CONFIG}).json["model_version"] == "alod-test:1"
    first = predict()
    assert first["model_version"] == "alod-test:1"
    assert {r["value"]["rectanglelabels"][0] for r in first["result"]} == {"Person"}

    assert register(shared / BALL_WEIGHTS) == "2"  # the cycle registers a new model and moves the alias
    http.post("/setup", json={"schema": CONFIG})  # Label Studio calls /setup before every batch
    app.extensions["alod"].store.wait_for_switch(60)
    assert predict()["model_version"] == "alod-test:2"
    assert http.post("/setup", json={"schema": CONFIG}).json["model_version"] == "alod-test:2"
    assert http.get("/versions").json["versions"] == ["alod-test:2", "alod-test:1"]

    client.set_registered_model_alias("alod-test", "champion", "1")  # rolled back: found by polling alone
    app.extensions["alod"].on_worker_start()
    deadline = time.monotonic() + 30
    while predict()["model_version"] != "alod-test:1":
        assert time.monotonic() < deadline, "the poller did not switch back to version 1"
        time.sleep(0.5)


REGISTER_SCRIPT = """
import hashlib
import sys
from mlflow import MlflowClient
uri, weights, artifacts = sys.argv[1:4]
client = MlflowClient(uri)
experiment = client.create_experiment("cycle", artifact_location=artifacts)
client.create_registered_model("alod-first")
run = client.create_run(experiment)
client.log_artifact(run.info.run_id, weights, artifact_path="model")
client.set_terminated(run.info.run_id)
tags = {"weights_sha256": hashlib.sha256(open(weights, "rb").read()).hexdigest()}  # as the cycle records it
source = run.info.artifact_uri + "/model"
version = client.create_model_version("alod-first", source, run.info.run_id, tags=tags).version
client.set_registered_model_alias("alod-first", "champion", version)
"""


@pytest.mark.slow
def test_an_alias_not_registered_yet_serves_the_base_weights_then_the_champion_right_after_training(
    tmp_path, shared, params
):
    import base64
    import sys

    from backend.app import create_app

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-c", REGISTER_SCRIPT, uri, str(shared / BALL_WEIGHTS), str(tmp_path / "artifacts")]
    backend = {
        "model_cache_dir": str(tmp_path / "cache"),
        "model_poll_s": 0,
        "train_command": command,
        "train_dir": str(tmp_path / "train"),
    }
    env = {"MODEL_URI": "models:/alod-first@champion", "MLFLOW_TRACKING_URI": uri, "ALOD_INSECURE_NO_AUTH": "1"}
    settings = BackendSettings.load({**params, "backend": {**params["backend"], **backend}}, environ=env)
    assert settings.fallback_weights == str((shared / COCO_WEIGHTS).resolve())
    app = create_app(settings)
    http = app.test_client()
    image = (shared / "data/coco128/images/train2017/000000000036.jpg").read_bytes()
    task = {"id": 1, "data": {"image": "data:image/jpeg;base64," + base64.b64encode(image).decode()}}

    assert http.post("/setup", json={"schema": CONFIG}).status_code == 200  # nothing registered is no error
    first = http.post("/predict", json={"tasks": [task], "label_config": CONFIG}).json["results"][0]
    assert first["model_version"] == file_version(shared / COCO_WEIGHTS)
    assert http.post("/setup", json={"schema": CONFIG}).json["model_version"] == file_version(shared / COCO_WEIGHTS)

    assert http.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1}}).json["status"] == "started"
    store = app.extensions["alod"].store
    deadline = time.monotonic() + 90
    while store.known_version != "alod-first:1":  # no /setup, no polling: the run's end switches the model
        assert time.monotonic() < deadline, f"still {store.known_version}: {app.extensions['alod'].runner.state()}"
        time.sleep(0.5)
    store.wait_for_switch(60)
    assert http.get("/health").json["model_version"] == "alod-first:1"
    again = http.post("/predict", json={"tasks": [task], "label_config": CONFIG}).json["results"][0]
    assert again["model_version"] == "alod-first:1"
