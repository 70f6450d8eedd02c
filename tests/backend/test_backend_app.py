"""The Flask app in-process (Flask's test client, the real model): protocol details beyond the end-to-end runs."""

from __future__ import annotations

import re
import sys
import time

import pytest

from backend.app import create_app
from core.backend_settings import BackendSettings


@pytest.fixture(scope="module")
def app(params, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    script = "import pathlib, sys; pathlib.Path(sys.argv[1]).open('a').write('run\\n')"
    backend = {
        "train_dir": str(tmp / "train"),
        "train_command": [sys.executable, "-c", script, str(tmp / "runs.txt")],
        "train_after_annotations": 2,
        "model_poll_s": 0,
    }
    settings = BackendSettings.load(
        {**params, "backend": {**params["backend"], **backend}}, environ={"ALOD_INSECURE_NO_AUTH": "1"}
    )
    app = create_app(settings)
    app.config["runs"] = tmp / "runs.txt"
    return app


@pytest.fixture(scope="module")
def http(app):
    return app.test_client()


def test_nothing_is_loaded_before_the_first_prediction(http):
    body = http.get("/health").json
    assert body["status"] == "UP" and body["model_loaded"] is False


def test_predict_works_before_setup_and_answers_each_task(http, rect_config, coco_dir, to_data_url):
    tasks = [{"id": 1, "data": {"image": to_data_url(coco_dir / "000000000074.jpg")}}]
    r = http.post("/predict", json={"tasks": tasks, "label_config": rect_config})
    assert r.status_code == 200
    (prediction,) = r.json["results"]
    labels = [x["value"]["rectanglelabels"][0] for x in prediction["result"]]
    assert labels[0] == "DOG" and set(labels) == {"DOG", "Person"}  # bicycles have no label: dropped
    assert prediction["model_version"] == r.json["model_version"] == http.get("/health").json["model_version"]
    assert http.get("/health").json["model_loaded"] is True


def test_setup_reports_the_version_predictions_carry(http, rect_config):
    version = http.post(
        "/setup", json={"project": "1.1700000000", "schema": rect_config, "hostname": "http://x", "access_token": "t"}
    ).json["model_version"]
    assert version == http.get("/versions").json["versions"][0]
    assert re.fullmatch(r"yolo11n-coco\.pt@[0-9a-f]{8}", version)


def test_empty_predict_batch_is_an_empty_answer(http, rect_config):
    r = http.post("/predict", json={"tasks": [], "label_config": rect_config})
    assert r.status_code == 200 and r.json["results"] == []


def test_annotation_webhooks_start_a_run_every_n_events(app, http):
    payload = {"action": "ANNOTATION_CREATED", "annotation": {"id": 1}, "task": {"id": 1}, "project": {"id": 1}}
    assert http.post("/webhook", json=payload).json == {"status": "ok", "action": "ANNOTATION_CREATED"}
    r = http.post("/webhook", json=dict(payload, action="ANNOTATION_UPDATED"))
    assert r.status_code == 201 and r.json["status"] == "started"
    assert r.json["reason"] == "2 annotation events"
    deadline = time.monotonic() + 20
    while http.get("/training").json["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert app.config["runs"].read_text() == "run\n"


def test_legacy_train_endpoint_uses_the_same_runner(app, http):
    r = http.post("/train", json={"annotations": [], "project": "1.0"})
    assert r.status_code in (200, 201) and r.json["status"] in ("started", "already running")


def test_metrics_are_prometheus_text(http):
    text = http.get("/metrics").get_data(as_text=True)
    assert "# TYPE alod_requests_total counter" in text
    assert re.search(r'alod_request_seconds_bucket\{endpoint="/predict",le="\+Inf"\} \d+', text)
    assert re.search(r'alod_predicted_tasks_total\{outcome="ok"\} [1-9]', text)
    assert 'alod_webhooks_total{action="ANNOTATION_CREATED"} 1' in text
    assert re.search(r'alod_model_info\{model_version="yolo11n-coco\.pt@[0-9a-f]{8}",worker="\d+"\} 1', text)


def test_unknown_paths_and_methods_answer_json(http):
    assert http.get("/nope").status_code == 404 and "error" in http.get("/nope").json
    assert http.get("/predict").status_code == 405
