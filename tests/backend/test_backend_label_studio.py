"""A real Label Studio 1.23 project connected to the backend under gunicorn (no mocks).

The project's images come from every kind of source the backend reads: Local Storage (served by
Label Studio; the backend fetches them with the API key), an upload, S3 cloud storage (moto's S3
server; Label Studio presigns and redirects), an http URL with a presigned-style query string, a
data: URL, and one URL that cannot be reached. "Retrieve predictions" must store a
prediction for every readable task whose boxes match ultralytics' own ``predict`` and whose scores
order the Data Manager exactly as the configured strategy ranks the same images.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np
import pytest
import requests

from core.backend_settings import BackendSettings
from core.labels import build_label_map
from core.model_store import file_version
from core.scoring import pool_from_detections

pytestmark = pytest.mark.slow

LOCAL_FILES = ("000000000025.jpg", "000000000036.jpg", "000000000042.jpg", "000000000061.jpg")
UPLOADED = "000000000074.jpg"
UNREACHABLE = "http://127.0.0.1:1/unreachable.jpg"
COCO = "coco128/images/train2017"


@pytest.fixture(scope="module")
def project(label_studio, backend_server, file_server, s3_server, shared, rect_config, to_data_url):
    ls = label_studio.client()
    p = ls.projects.create(title="alod e2e", label_config=rect_config)
    storage = ls.import_storage.local.create(
        project=p.id,
        path=str(label_studio.document_root / COCO),
        regex_filter="|".join(n.replace(".", r"\.") for n in LOCAL_FILES),
        use_blob_urls=True,
        title="coco128",
    )
    ls.import_storage.local.sync(id=storage.id)
    label_studio.upload(p.id, shared / "data" / COCO / UPLOADED)
    s3 = ls.import_storage.s3.create(
        project=p.id,
        bucket=s3_server.bucket,
        prefix=s3_server.prefix,
        regex_filter=r".*\.jpg",
        use_blob_urls=True,
        presign=True,
        s3endpoint=s3_server.endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
        title="s3",
    )
    ls.import_storage.s3.sync(id=s3.id)
    ls.projects.import_tasks(
        p.id,
        request=[
            {"data": {"image": f"{file_server.url}/000000000094.jpg?X-Amz-Expires=600&X-Amz-Signature=0a1b2c"}},
            {"data": {"image": to_data_url(shared / "data" / COCO / "000000000071.jpg")}},
            {"data": {"image": UNREACHABLE}},
        ],
    )
    tasks = {t.id: t.data["image"] for t in ls.tasks.list(project=p.id)}
    assert len(tasks) == 9
    ml = ls.ml.create(url=backend_server.url, project=p.id, title="alod", is_interactive=True)
    assert ml.readable_state == "Connected", ml.error_message
    return {"ls": ls, "id": p.id, "ml": ml, "tasks": tasks}


def source_file(ref: str, shared: Path, file_url: str) -> Path | None:
    """The file on disk behind a task's image reference (what ultralytics is given)."""
    coco = shared / "data" / COCO
    if ref.startswith("/data/local-files/"):
        return (shared / "data" / unquote(parse_qs(urlparse(ref).query)["d"][0])).resolve()
    if ref.startswith("/data/upload/"):
        return coco / ref.rsplit("-", 1)[-1]
    if ref.startswith(file_url):
        return coco / Path(urlparse(ref).path).name
    if ref.startswith("data:"):
        return coco / "000000000071.jpg"
    if ref.startswith("/tasks/"):  # cloud storage as the API shows it: /tasks/<id>/resolve/?fileuri=<base64 s3://...>
        return coco / base64.b64decode(parse_qs(urlparse(ref).query)["fileuri"][0]).decode().rsplit("/", 1)[-1]
    return None


@pytest.fixture(scope="module")
def retrieved(project):
    ls = project["ls"]
    everything = {"all": True, "excluded": []}
    ls.actions.create(id="retrieve_tasks_predictions", project=project["id"], selected_items=everything)
    predictions = list(ls.predictions.list(project=project["id"]))
    return {p.task: p for p in predictions}


@pytest.fixture(scope="module")
def expected_version(params) -> str:
    settings = BackendSettings.load(params, environ={})
    return file_version(Path(settings.model_uri))


def test_retrieve_predictions_stores_one_prediction_per_readable_task(project, retrieved, expected_version):
    unreachable = [tid for tid, ref in project["tasks"].items() if ref == UNREACHABLE]
    assert set(retrieved) == set(project["tasks"]) - set(unreachable)
    for prediction in retrieved.values():
        assert prediction.model_version == expected_version
        assert prediction.score is not None and 0.0 < prediction.score <= 1.0
    assert project["ls"].ml.get(project["ml"].id).model_version == expected_version


def test_stored_boxes_match_ultralytics_predict_with_labels_mapped(project, retrieved, shared, file_server, params):
    from ultralytics import YOLO

    model = YOLO(str(BackendSettings.load(params, environ={}).model_uri))
    mapping = {"car": "Vehicle", "truck": "Vehicle", "bus": "Vehicle", "person": "Person", "dog": "DOG"}
    seen_labels = set()
    conf = params["detector"]["conf_predict"]
    for task_id, prediction in retrieved.items():
        path = source_file(project["tasks"][task_id], shared, file_server.url)
        result = model.predict(
            str(path),
            imgsz=params["model"]["imgsz"],
            conf=conf,
            iou=params["detector"]["iou"],
            max_det=params["detector"]["max_det"],
            verbose=False,
        )[0]
        h, w = result.orig_shape
        expected = []
        for (x1, y1, x2, y2), c, k in zip(
            result.boxes.xyxy.tolist(), result.boxes.conf.tolist(), result.boxes.cls.tolist(), strict=True
        ):
            label = mapping.get(result.names[int(k)])
            if label:
                expected.append((label, 100 * x1 / w, 100 * y1 / h, 100 * (x2 - x1) / w, 100 * (y2 - y1) / h, c))
        stored = [
            (
                r["value"]["rectanglelabels"][0],
                r["value"]["x"],
                r["value"]["y"],
                r["value"]["width"],
                r["value"]["height"],
                r["score"],
            )
            for r in prediction.result
        ]
        assert len(stored) == len(expected), (path.name, stored, expected)
        for region in prediction.result:
            assert (region["from_name"], region["to_name"], region["type"]) == ("label", "image", "rectanglelabels")
            assert (region["original_width"], region["original_height"]) == (w, h)
        for box in expected:
            same_label = [s for s in stored if s[0] == box[0]]
            best = min(same_label, key=lambda s: max(abs(a - b) for a, b in zip(s[1:5], box[1:5], strict=True)))
            assert max(abs(a - b) for a, b in zip(best[1:5], box[1:5], strict=True)) <= 0.5, (path.name, best, box)
            assert best[5] == pytest.approx(box[5], abs=2e-3)
            seen_labels.add(box[0])
    assert seen_labels == {"Vehicle", "Person", "DOG"}  # every mapping rule was exercised


def test_data_manager_order_by_score_equals_the_strategy_ranking(
    project, retrieved, shared, file_server, params, expected_version, rect_config
):
    from core.detector import Detector
    from core.images import load_image
    from strategies import Budget, CycleState, select

    ls = project["ls"]
    ls.projects.update(id=project["id"], model_version=expected_version)  # Settings > Model > version to show
    query = json.dumps({"ordering": ["tasks:predictions_score"]})
    order = [t.id for t in ls.tasks.list(project=project["id"], query=query)]

    ids = sorted(retrieved)
    images = [load_image(source_file(project["tasks"][t], shared, file_server.url)) for t in ids]
    detector = Detector.from_params(params)
    dets = detector.detect(images, conf=params["detector"]["conf_score"])
    label_map = build_label_map(rect_config, detector.names)
    pool = pool_from_detections([str(t) for t in ids], dets, detector.names, list(label_map.class_to_label))
    strategy = params["strategy"]
    selection = select(
        strategy["name"],
        pool,
        Budget(frames=len(ids)),
        CycleState(),
        seed=params.get("seed", 0),
        **(strategy.get("params") or {}),
    )
    ranked = [ids[i] for i in np.argsort(-selection.priority, kind="stable")]

    assert order[: len(ids)] == ranked
    assert order[len(ids) :] == [t for t, ref in project["tasks"].items() if ref == UNREACHABLE]
    empty = [t for t in ids if pool.boxes_per_image[ids.index(t)] == 0]
    assert empty and set(order[len(ids) - len(empty) : len(ids)]) == set(empty)  # empty images are shown last
    scores = [retrieved[t].score for t in order[: len(ids)]]
    assert scores == sorted(scores)


def test_interactive_preannotation_returns_the_task_prediction(project, retrieved, expected_version):
    ls = project["ls"]
    task_id = max(retrieved, key=lambda t: len(retrieved[t].result))
    raw = ls.ml.with_raw_response.predict_interactive(project["ml"].id, task=task_id, context={"result": []})
    body = raw.response.json()
    assert raw.response.status_code == 200, body
    data = body["data"]
    assert data["model_version"] == expected_version

    def boxes(result):  # batched and single-image inference differ in the last float bits
        return [(r["value"]["rectanglelabels"], *(round(r["value"][k], 3) for k in "xy")) for r in result]

    assert boxes(data["result"]) == boxes(retrieved[task_id].result)
    assert data["score"] == pytest.approx(retrieved[task_id].score, abs=1e-4)


def test_start_training_runs_once_while_a_run_is_in_flight(project, backend_server):
    ls = project["ls"]
    runs = backend_server.train_dir.parent / "runs.txt"
    ls.ml.train(project["ml"].id)
    ls.ml.train(project["ml"].id)  # while the first run sleeps: answered "already running"
    state = requests.get(f"{backend_server.url}/training", timeout=5).json()
    assert state["running"] is True
    deadline = time.monotonic() + 30
    while requests.get(f"{backend_server.url}/training", timeout=5).json()["running"]:
        assert time.monotonic() < deadline, "the training run did not finish"
        time.sleep(0.5)
    state = requests.get(f"{backend_server.url}/training", timeout=5).json()
    assert (state["status"], state["returncode"]) == ("finished", 0)
    assert runs.read_text().splitlines() == [f"START_TRAINING project {project['id']}"]
    metrics = requests.get(f"{backend_server.url}/metrics", timeout=5).text
    assert 'alod_training_runs_total{outcome="started"} 1' in metrics
    assert 'alod_training_runs_total{outcome="already running"} 1' in metrics


def test_annotation_webhooks_reach_the_backend(project, retrieved, backend_server):
    ls = project["ls"]
    task_id = next(iter(retrieved))
    ls.annotations.create(id=task_id, result=retrieved[task_id].result, lead_time=3.5)
    deadline = time.monotonic() + 20
    while 'alod_webhooks_total{action="ANNOTATION_CREATED"}' not in (
        text := requests.get(f"{backend_server.url}/metrics", timeout=5).text
    ):
        assert time.monotonic() < deadline, text
        time.sleep(0.5)
