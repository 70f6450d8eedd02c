"""A real gunicorn backend on 127.0.0.1 as an attacker meets it: closed by default, keys kept, state bounded,
and a crowd of half-open connections cannot stop it from answering."""

from __future__ import annotations

import base64
import json
import socket
import sys
import time

import pytest
import requests

from core.settings import REPO_ROOT
from tests.backend.conftest import start_backend, stop

pytestmark = pytest.mark.slow

AUTH = ("alod", "correct horse battery staple")
KEY = "env-secret-key-0123456789"
CONFIG = (
    '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
    '<Label value="Person"/></RectangleLabels></View>'
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory, shared):
    tmp = tmp_path_factory.mktemp("exposed")
    script = "import json, os, pathlib, sys; pathlib.Path(sys.argv[1]).write_text(json.dumps(dict(os.environ)))"
    env = {
        "BASIC_AUTH_USER": AUTH[0],
        "BASIC_AUTH_PASS": AUTH[1],
        "LABEL_STUDIO_API_KEY": KEY,  # from the environment, with no LABEL_STUDIO_URL beside it
        "ALOD__BACKEND__TRAIN_COMMAND": json.dumps([sys.executable, "-c", script, str(tmp / "child-env.json")]),
    }
    server = start_backend(tmp, env)
    yield server, tmp
    stop(server.proc)


def image_task(shared, task_id: int = 1) -> dict:
    data = (shared / "data/coco128/images/train2017/000000000036.jpg").read_bytes()
    return {"id": task_id, "data": {"image": "data:image/jpeg;base64," + base64.b64encode(data).decode()}}


def test_without_credentials_everything_but_health_is_refused(backend):
    server, tmp = backend
    assert requests.get(f"{server.url}/health", timeout=5).ok
    for method, path in (
        ("post", "/webhook"),
        ("post", "/predict"),
        ("post", "/setup"),
        ("get", "/metrics"),
        ("post", "/train"),
        ("get", "/training"),
    ):
        answer = getattr(requests, method)(f"{server.url}{path}", json={"action": "START_TRAINING"}, timeout=5)
        assert answer.status_code == 401, path
    assert not (tmp / "child-env.json").exists()  # the anonymous START_TRAINING started nothing


def test_the_default_is_closed_and_on_loopback(monkeypatch):
    from backend.app import create_app
    from core.backend_settings import BackendSettings
    from core.settings import load_params

    with pytest.raises(RuntimeError, match="BASIC_AUTH_USER and BASIC_AUTH_PASS"):
        create_app(BackendSettings.load(load_params(), environ={}))
    monkeypatch.delenv("HOST", raising=False)
    conf: dict = {"__file__": str(REPO_ROOT / "backend/gunicorn_conf.py")}
    exec(compile((REPO_ROOT / "backend/gunicorn_conf.py").read_text(), "gunicorn_conf.py", "exec"), conf)
    assert conf["bind"].startswith("127.0.0.1:")


def test_a_key_from_the_environment_never_goes_to_a_host_named_by_setup(backend, targets):
    server, _ = backend
    attacker = targets("127.0.0.3")
    setup = requests.post(
        f"{server.url}/setup",
        auth=AUTH,
        timeout=30,
        json={"project": "1.1", "schema": CONFIG, "hostname": attacker.url, "access_token": ""},
    )
    assert setup.ok
    tasks = [
        {"id": 1, "data": {"image": "/data/upload/1/a.jpg"}},
        {"id": 2, "data": {"image": f"{attacker.url}/api/current-user/token"}},
    ]
    body = {"tasks": tasks, "label_config": CONFIG}
    answer = requests.post(f"{server.url}/predict", auth=AUTH, json=body, timeout=60)
    assert answer.ok and all("error" in r for r in answer.json()["results"])
    assert all(KEY not in str(hit["authorization"]) for hit in attacker.seen)


def test_malformed_bodies_of_any_depth_get_a_400_without_internals(backend):
    server, _ = backend
    deep = "[" * 200_000 + "]" * 200_000
    answer = requests.post(
        f"{server.url}/predict", auth=AUTH, data=deep, timeout=30, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert "Traceback" not in answer.text and "RecursionError" not in answer.text


def test_untrusted_webhook_actions_do_not_grow_the_metrics(backend):
    server, _ = backend
    before = len(requests.get(f"{server.url}/metrics", auth=AUTH, timeout=10).text)
    for i in range(50):
        requests.post(f"{server.url}/webhook", auth=AUTH, json={"action": f"X{i:03d}" * 1000}, timeout=10)
    metrics = requests.get(f"{server.url}/metrics", auth=AUTH, timeout=10).text
    assert "X000" not in metrics and len(metrics) < before + 2000
    assert 'action="other"' in metrics


def test_a_huge_labeling_config_is_refused(backend, shared):
    server, _ = backend
    config = CONFIG.replace('<Label value="Person"/>', '<Label value="Person"/>' * 20_000)
    answer = requests.post(
        f"{server.url}/predict", auth=AUTH, timeout=30, json={"tasks": [image_task(shared)], "label_config": config}
    )
    assert answer.status_code == 400 and "larger than" in answer.json()["error"]


def test_the_training_child_gets_no_backend_credentials_and_a_long_reason_is_cut(backend):
    server, tmp = backend
    answer = requests.post(
        f"{server.url}/webhook",
        auth=AUTH,
        timeout=10,
        json={"action": "START_TRAINING", "project": {"id": "9" * 100_000}},
    )
    assert answer.ok and answer.json()["status"] == "started"
    deadline = time.monotonic() + 30
    while not (tmp / "child-env.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(0.5)
    child = json.loads((tmp / "child-env.json").read_text())
    assert "BASIC_AUTH_PASS" not in child and "BASIC_AUTH_USER" not in child
    assert len(child["ALOD_TRAIN_REASON"]) <= 200
    state = requests.get(f"{server.url}/training", auth=AUTH, timeout=10).json()
    assert len(state["reason"]) <= 200


def test_64_half_open_connections_do_not_stop_it_answering(backend, shared):
    server, _ = backend
    host, port = server.url.removeprefix("http://").split(":")
    crowd = []
    try:
        for i in range(64):  # headers never finished, or a body announced and never sent
            s = socket.create_connection((host, int(port)), timeout=5)
            partial = (
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le"
                if i % 2
                else (b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{"tasks"')
            )
            s.sendall(partial)
            crowd.append(s)
        time.sleep(1.0)
        started = time.monotonic()
        assert requests.get(f"{server.url}/health", timeout=5).ok
        health_s = time.monotonic() - started
        started = time.monotonic()
        answer = requests.post(
            f"{server.url}/predict", auth=AUTH, timeout=30, json={"tasks": [image_task(shared)], "label_config": CONFIG}
        )
        predict_s = time.monotonic() - started
        assert answer.ok and "result" in answer.json()["results"][0]
        assert health_s < 1.0 and predict_s < 3.0, (health_s, predict_s)
    finally:
        for s in crowd:
            s.close()
