"""Bad input over real HTTP to the backend under gunicorn: a 4xx with a message or a per-task error, never a crash.

After every case the same worker still answers (no restart in the gunicorn log), and a good task in
the same batch as a bad one still gets its prediction.
"""

from __future__ import annotations

import pytest
import requests
from label_studio_sdk.core.api_error import ApiError

pytestmark = pytest.mark.slow


def post(server, path: str, **kwargs) -> requests.Response:
    return requests.post(f"{server.url}{path}", timeout=60, **kwargs)


@pytest.fixture(scope="module")
def good_task(file_server) -> dict:
    return {"id": 1, "data": {"image": f"{file_server.url}/000000000094.jpg"}}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b'{"tasks": [', 400, "not valid JSON"),
        (b"[1, 2, 3]", 400, "must be a JSON object"),
        (b'{"label_config": "<View/>"}', 400, "needs 'tasks'"),
        (b'{"tasks": "all of them"}', 400, "needs 'tasks'"),
        (b'{"tasks": [{"id": 1, "data": {}}]}', 400, "label_config"),
        (b'{"tasks": [], "label_config": "<View><Image name=\\"i\\" value=\\"$i\\"/></View>"}', 400, "RectangleLabels"),
        (b'{"tasks": [], "label_config": "<View><Image"}', 400, "cannot be parsed"),
    ],
    ids=[
        "malformed-json",
        "not-an-object",
        "no-tasks",
        "tasks-not-a-list",
        "no-label-config",
        "no-rectanglelabels",
        "broken-xml",
    ],
)
def test_malformed_requests_get_400_with_a_message(backend_server, body, status, message):
    r = post(backend_server, "/predict", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status
    assert message in r.json()["error"]


def test_setup_with_a_config_without_rectanglelabels_is_a_clear_400(backend_server):
    r = post(backend_server, "/setup", json={"schema": '<View><Text name="t" value="$t"/></View>', "project": "1.0"})
    assert r.status_code == 400
    assert "no <RectangleLabels> on an <Image>" in r.json()["error"]


def test_a_10000_task_batch_is_refused_with_a_pointer_to_push_predictions(backend_server, rect_config, good_task):
    tasks = [dict(good_task, id=i) for i in range(10_000)]
    r = post(backend_server, "/predict", json={"tasks": tasks, "label_config": rect_config})
    assert r.status_code == 413
    assert "alod push-predictions" in r.json()["error"]


def test_an_oversized_body_is_refused(backend_server):
    body = b"{" + b" " * (65 << 20) + b"}"  # over backend.max_request_mb (64)
    r = post(backend_server, "/predict", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (None, "has no 'image' field"),
        ("http://127.0.0.1:1/unreachable.jpg", "cannot read the image at this URL"),
        ("{files}/missing.jpg", "cannot read the image at this URL"),
        ("{files}/notes.jpg", "not an image format the backend reads"),
        ("{files}/big.jpg", "image too large"),
        ("{files}/bomb.png", "6000x6000 pixels"),
        ("data:image/png;base64,!!!not-base64", "malformed data: URL"),
        ("data:image/png;base64,aGVsbG8gd29ybGQ=", "not an image format the backend reads"),
        ("data:image/png;base64" + "A" * 100, "malformed data: URL"),
        ("/data/upload/1/secret.jpg", "cannot read the image at this URL"),
        ("ftp://example.com/a.jpg", "unsupported image reference"),
        (12345, "not a string"),
    ],
    ids=[
        "no-image-field",
        "unreachable",
        "http-404",
        "not-an-image",
        "too-many-bytes",
        "too-many-pixels",
        "bad-base64",
        "data-url-not-an-image",
        "data-url-without-comma",
        "missing-upload",
        "unsupported-scheme",
        "not-a-string",
    ],
)
def test_a_bad_task_gets_a_per_task_error_and_the_rest_of_the_batch_succeeds(
    backend_server, file_server, rect_config, good_task, image, reason
):
    data = {} if image is None else {"image": image.format(files=file_server.url) if isinstance(image, str) else image}
    tasks = [{"id": 7, "data": data}, good_task]
    r = post(backend_server, "/predict", json={"tasks": tasks, "label_config": rect_config})
    assert r.status_code == 200, r.text
    bad, good = r.json()["results"]
    assert "result" not in bad and bad["task"] == 7
    assert reason in bad["error"]
    assert good["result"] and good["model_version"]


def test_a_task_that_is_not_an_object_gets_a_per_task_error(backend_server, rect_config, good_task):
    r = post(backend_server, "/predict", json={"tasks": ["not a task", good_task], "label_config": rect_config})
    assert r.status_code == 200
    bad, good = r.json()["results"]
    assert "no data object" in bad["error"] and good["result"]


def test_unknown_webhook_actions_are_acknowledged_and_bad_ones_rejected(backend_server):
    assert post(backend_server, "/webhook", json={"action": "TASKS_CREATED"}).json()["status"] == "ignored"
    r = post(backend_server, "/webhook", json={"project": {"id": 1}})
    assert r.status_code == 400 and "action" in r.json()["error"]


def test_the_worker_survived_every_bad_request(backend_server):
    # runs last in this module: the one worker booted once and never timed out or exited
    assert requests.get(f"{backend_server.url}/health", timeout=5).json()["status"] == "UP"
    log = backend_server.log_text()
    assert log.count("Booting worker") == 1, log[-3000:]
    assert "WORKER TIMEOUT" not in log and "Worker exiting" not in log


# -- basic auth -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_backend(backend_factory):
    env = {"BASIC_AUTH_USER": "labeler", "BASIC_AUTH_PASS": "s3cret", "ALOD__BACKEND__WARMUP": "false"}
    return backend_factory(env, wait_model=False)


@pytest.mark.parametrize(
    ("auth", "status"),
    [(None, 401), (("labeler", "wrong"), 401), (("someone", "s3cret"), 401), (("labeler", "s3cret"), 200)],
    ids=["none", "wrong-password", "wrong-user", "right"],
)
def test_basic_auth_guards_every_endpoint_but_health(auth_backend, auth, status):
    r = requests.post(f"{auth_backend.url}/setup", json={}, auth=auth, timeout=10)
    assert r.status_code == status
    if status == 401:
        assert "basic auth" in r.json()["error"] and r.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(f"{auth_backend.url}/health", timeout=5).status_code == 200
    assert requests.get(f"{auth_backend.url}/metrics", auth=auth, timeout=5).status_code == status


def test_label_studio_connects_with_basic_auth_and_fails_without(label_studio, auth_backend, rect_config):
    ls = label_studio.client()
    project = ls.projects.create(title="alod basic auth", label_config=rect_config)
    good = ls.ml.create(
        url=auth_backend.url,
        project=project.id,
        title="ok",
        auth_method="BASIC_AUTH",
        basic_auth_user="labeler",
        basic_auth_pass="s3cret",
    )
    assert good.readable_state == "Connected", good.error_message
    with pytest.raises(ApiError) as refused:
        ls.ml.create(
            url=auth_backend.url,
            project=project.id,
            title="bad",
            auth_method="BASIC_AUTH",
            basic_auth_user="labeler",
            basic_auth_pass="nope",
        )
    assert "401" in str(refused.value.body)
