"""The whole loop inside a real Label Studio, from an empty project and an empty registry, no manual step.

Connect the backend (its registry alias does not exist yet), retrieve predictions, see the Data
Manager ordered by informativeness, annotate train and test tasks through the API, start training
from Label Studio, and get the new model served and the queue re-ranked, without a restart. With
the live queue, ``/api/projects/ID/next`` serves the most informative unlabeled task, then the next.
"""

from __future__ import annotations

import time

import pytest
import requests

from core.model_store import file_version
from tests.backend.conftest import bccd_project, start_backend, stop
from tests.cycle.scratch import Repo, small_params

pytestmark = pytest.mark.slow

CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image">
<Label value="RBC"/><Label value="WBC"/><Label value="Platelets"/>
</RectangleLabels></View>"""
POOL, LABELED, TEST = 12, 6, 6
MODEL = "alod-live"


def wait_until(check, timeout: float, what: str, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)


def ordered(ls_url: str, token: str, project: int, view: int) -> list[dict]:
    r = requests.get(
        f"{ls_url}/api/tasks",
        params={"view": view, "project": project, "page_size": 100},
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    r.raise_for_status()
    body = r.json()
    return body["tasks"] if isinstance(body, dict) else body


@pytest.fixture(scope="module")
def loop(label_studio, shared, tmp_path_factory):
    ls, project_id, tasks, task_of = bccd_project(label_studio, shared, "alod live loop", CONFIG, POOL, TEST)
    truth = {task["data"]["frame_id"]: task for task in tasks}

    params = small_params(shared)
    params["dataset"]["name"] = "live"
    params["datasets"] = {
        "live": {
            "format": "labelstudio",
            "project": project_id,
            "url": label_studio.url,
            "api_key": label_studio.token,
            "document_root": str(label_studio.document_root),
            "labels": ["RBC", "WBC", "Platelets"],
        }
    }
    params["cycle"]["source"] = "labelstudio"
    params["mlflow"]["registered_model"] = MODEL
    params["evaluate"]["min_labeled_frames"] = TEST
    repo = Repo(tmp_path_factory.mktemp("live"), params)
    env = {
        "ALOD_PARAMS": str(repo.path / "params.yaml"),
        "MODEL_URI": f"models:/{MODEL}@champion",  # nothing is registered yet
        "LABEL_STUDIO_URL": label_studio.url,
        "LABEL_STUDIO_API_KEY": label_studio.token,
        "LOCAL_FILES_DOCUMENT_ROOT": str(label_studio.document_root),
        "ALOD__MODEL__IMGSZ": "160",
        "ALOD__BACKEND__TRAIN_COMMAND": "dvc repro",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    backend = start_backend(tmp_path_factory.mktemp("live-backend"), env)
    try:
        ml = ls.ml.create(url=backend.url, project=project_id, title="alod")
        yield {
            "ls": ls,
            "url": label_studio.url,
            "token": label_studio.token,
            "project": project_id,
            "ml": ml,
            "backend": backend,
            "repo": repo,
            "truth": truth,
            "task_of": task_of,
            "shared": shared,
        }
    finally:
        stop(backend.proc)


def retrieve_and_view(loop, version: str) -> list[dict]:
    ls, pid = loop["ls"], loop["project"]
    ls.actions.create(id="retrieve_tasks_predictions", project=pid, selected_items={"all": True, "excluded": []})
    wait_until(lambda: ls.projects.get(id=pid).model_version == version, 30, f"project model version {version}")
    view = ls.views.create(project=pid, data={"title": f"by score {version}", "ordering": ["tasks:predictions_score"]})
    return ordered(loop["url"], loop["token"], pid, view.id)


def test_the_loop_from_an_empty_project_and_an_empty_registry(loop):
    ls, pid, backend, truth, task_of = loop["ls"], loop["project"], loop["backend"], loop["truth"], loop["task_of"]
    assert loop["ml"].readable_state == "Connected", loop["ml"].error_message  # the alias does not exist yet
    base_version = file_version(loop["shared"] / "weights/yolo11n-coco.pt")
    assert requests.get(f"{backend.url}/health", timeout=5).json()["model_version"] == base_version

    tasks = retrieve_and_view(loop, base_version)  # no manual step: the backend set the project's version
    scores = [t["predictions_score"] for t in tasks]
    assert len(tasks) == POOL + TEST and None not in scores
    assert scores == sorted(scores) and len(set(scores)) > 1  # lowest score (most informative) first
    by_task = {p.task: p.score for p in ls.predictions.list(project=pid) if p.model_version == base_version}
    assert [t["id"] for t in tasks] == sorted(by_task, key=lambda t: (by_task[t], t))  # the strategy's order

    pool = [f for f, t in truth.items() if t["data"]["split"] == "train"]
    test = [f for f, t in truth.items() if t["data"]["split"] == "test"]
    for frame in pool[:LABELED] + test:  # annotators at work: train tasks and the test set, from ground truth
        ls.annotations.create(id=task_of[frame], result=truth[frame]["annotations"][0]["result"], lead_time=5.0)

    ls.ml.train(loop["ml"].id)  # "Start training" -> START_TRAINING -> one `dvc repro` cycle
    state = wait_until(
        lambda: (
            (s := requests.get(f"{backend.url}/training", timeout=5).json())["status"] in ("finished", "failed")
            and not s["running"]
            and s
        ),
        600,
        "the training run",
    )
    assert state["status"] == "finished", open(state["log"]).read()[-3000:]
    new_version = f"{MODEL}:1"
    health = wait_until(
        lambda: (h := requests.get(f"{backend.url}/health", timeout=5).json())["model_version"] == new_version and h,
        60,
        "the new model served",
    )
    assert health["model_loaded"]  # no restart: the run's end switched the model
    assert loop["repo"].json("data/metrics/eval.json")["test_frames"] == TEST

    tasks = retrieve_and_view(loop, new_version)  # a second retrieval carries the new version and still sorts
    scores = [t["predictions_score"] for t in tasks]
    assert None not in scores and scores == sorted(scores)
    assert {p.model_version for p in ls.predictions.list(project=pid)} >= {base_version, new_version}

    project = ls.projects.get(id=pid)
    assert project.sampling == "Uncertainty sampling"  # the live queue
    unlabeled = [t["id"] for t in tasks if not t.get("total_annotations")]
    first = requests.get(
        f"{loop['url']}/api/projects/{pid}/next", headers={"Authorization": f"Token {loop['token']}"}, timeout=30
    ).json()
    assert first["id"] == unlabeled[0]
    frame = next(f for f, t in task_of.items() if t == first["id"])
    ls.annotations.create(id=first["id"], result=truth[frame]["annotations"][0]["result"], lead_time=5.0)
    second = requests.get(
        f"{loop['url']}/api/projects/{pid}/next", headers={"Authorization": f"Token {loop['token']}"}, timeout=30
    ).json()
    assert second["id"] == unlabeled[1]
