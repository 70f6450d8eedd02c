"""`strategy: box_level` with `cycle.source: labelstudio`: one cycle against a real Label Studio.

`dvc repro` trains on the fully annotated tasks and pushes BOXES queried boxes as review regions;
an annotator keeps one, moves one and deletes one through the API; the next `dvc repro evaluate`
reads them back as accepted / corrected / rejected, trains on them with the dampened loss and
counts the cost in boxes touched. Small: BCCD, 1 epoch, imgsz 160."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.datasets.yolo_writer import safe_name
from pipelines.labelstudio.box_queries import REGION_PREFIX, REVIEW_NOTE
from tests.backend.conftest import bccd_project
from tests.cycle.scratch import Repo, small_params

pytestmark = pytest.mark.slow

CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image">
<Label value="RBC"/><Label value="WBC"/><Label value="Platelets"/>
</RectangleLabels></View>"""
POOL, LABELED, TEST, BOXES = 12, 6, 6, 3
MOVE_PCT = 5.0  # the annotator drags the second query sideways by 5 % of the image width


def project_with_annotations(label_studio, shared) -> tuple[object, int, dict[str, int]]:
    ls, project_id, tasks, created = bccd_project(label_studio, shared, "alod box mode", CONFIG, POOL, TEST)
    annotated = [t for t in tasks if t["data"]["split"] == "test"]
    annotated += [t for t in tasks if t["data"]["split"] == "train"][:LABELED]
    for task in annotated:
        ls.annotations.create(id=created[task["data"]["frame_id"]], result=task["annotations"][0]["result"])
    return ls, project_id, created


def moved(value: dict) -> dict:
    """The region dragged MOVE_PCT of the width right, else left; a box as wide as the image is narrowed."""
    if value["x"] + value["width"] + MOVE_PCT <= 100:
        return {**value, "x": value["x"] + MOVE_PCT}
    if value["x"] >= MOVE_PCT:
        return {**value, "x": value["x"] - MOVE_PCT}
    return {**value, "width": value["width"] - MOVE_PCT}


def answer_through_the_api(ls, project: int) -> dict[str, str]:
    """Keep the first queried region, move the second, delete the third; returns region id -> what was done."""
    predictions = [p for p in ls.predictions.list(project=project) if p.model_version == "alod-box-cycle-1"]
    done, k = {}, 0
    for prediction in sorted(predictions, key=lambda p: p.task):
        kept = []
        for region in prediction.result:
            action = ("keep", "move", "delete")[k % 3]
            k += 1
            done[region["id"]] = action
            if action == "move":
                region = {**region, "value": moved(region["value"])}
            if action != "delete":
                kept.append(region)
        ls.annotations.create(id=prediction.task, result=kept, lead_time=3.0)
    return done


@pytest.fixture(scope="module")
def box_cycle(label_studio, shared, tmp_path_factory):
    ls, pid, created = project_with_annotations(label_studio, shared)
    params = small_params(shared)
    params["dataset"]["name"] = "lsproj"
    params["datasets"] = {
        "lsproj": {
            "format": "labelstudio",
            "project": pid,
            "url": label_studio.url,
            "api_key": label_studio.token,
            "document_root": str(label_studio.document_root),
            "labels": ["RBC", "WBC", "Platelets"],
        }
    }
    params["cycle"]["source"] = "labelstudio"
    params["strategy"] = {"name": "box_level", "params": {"measure": "least_confidence", "min_conf": 0.05}}
    params["budget"].update(frames=None, boxes=BOXES)
    params["box_level"].update(noisy_conf=0.05)
    repo = Repo(tmp_path_factory.mktemp("lsboxes"), params)
    repo.run("dvc repro")
    pushed = repo.json("data/push/receipt.json")
    queries = repo.read("data/annotations/box/queries.parquet")
    done = answer_through_the_api(ls, pid)
    repo.run("dvc repro evaluate")  # export reads the answers back, train, evaluate
    return repo, ls, pid, created, pushed, queries, done


def test_the_queries_are_pushed_as_review_regions(box_cycle):
    repo, ls, pid, created, pushed, queries, done = box_cycle
    assert pushed["model_version"] == "alod-box-cycle-1" and pushed["boxes"] == BOXES == len(queries)
    assert ls.projects.get(id=pid).model_version == "alod-box-cycle-1"  # annotators see the queries prelabeled
    predictions = [p for p in ls.predictions.list(project=pid) if p.model_version == "alod-box-cycle-1"]
    assert sorted(p.task for p in predictions) == sorted(created[f] for f in queries["frame_id"].unique())
    regions = [r for p in predictions for r in p.result]
    assert sorted(r["id"] for r in regions) == sorted(f"{REGION_PREFIX}{q}" for q in queries["query_id"])
    assert all(r["meta"]["text"] == [REVIEW_NOTE] for r in regions)


def test_the_answers_read_back_as_accepted_corrected_rejected(box_cycle):
    repo, ls, pid, created, pushed, queries, done = box_cycle
    answers = repo.read("data/snapshot/box_answers.parquet").set_index("query_id")
    expected = {"keep": "accepted", "move": "corrected", "delete": "rejected"}
    assert {q: answers.loc[q, "outcome"] for q in answers.index} == {
        region.removeprefix(REGION_PREFIX): expected[action] for region, action in done.items()
    }
    changed = [r.removeprefix(REGION_PREFIX) for r, a in done.items() if a == "move"][0]
    asked = queries.set_index("query_id")
    shift = (answers.loc[changed, ["x1", "x2"]] - asked.loc[changed, ["x1", "x2"]]).abs().max()
    assert shift > 5  # the moved box, not the predicted one
    assert answers.loc[changed, "y1"] == pytest.approx(asked.loc[changed, "y1"], abs=1e-3)


def test_the_answers_are_trained_on_and_cost_boxes(box_cycle):
    repo, ls, pid, created, pushed, queries, done = box_cycle
    snapshot = repo.json("data/snapshot/snapshot.json")
    assert snapshot["cycle"] == 2 and snapshot["frames"] == LABELED  # queried tasks are not fully labeled frames
    assert (
        snapshot["boxes_queried"],
        snapshot["boxes_accepted"],
        snapshot["boxes_corrected"],
        snapshot["boxes_rejected"],
    ) == (BOXES, 1, 1, 1)
    answers = repo.read("data/snapshot/box_answers.parquet")
    answered = set(answers["frame_id"])  # the paper's rule: every frame with an answer trains, rejections too
    trained = repo.json("data/model/train.json")
    assert trained["cycle"] == 2 and trained["frames"] == LABELED + len(answered)
    sizes = repo.read("data/manifest/frames.parquet").set_index("frame_id")[["width", "height"]]
    for a in answers[answers["outcome"] != "rejected"].itertuples():  # each answered box is a training label
        w, h = sizes.loc[a.frame_id]
        want = [a.class_id, (a.x1 + a.x2) / 2 / w, (a.y1 + a.y2) / 2 / h, (a.x2 - a.x1) / w, (a.y2 - a.y1) / h]
        lines = (repo.path / "data/train_set/labels/train" / f"{safe_name(a.frame_id)}.txt").read_text().splitlines()
        rows = [[float(v) for v in line.split()[:5]] for line in lines]
        assert any(all(abs(x - y) < 1e-4 for x, y in zip(row, want, strict=True)) for row in rows), a.query_id
    history = pd.read_csv(repo.path / "data/history/cycles.csv").set_index("cycle")
    assert history.loc[2, "boxes_touched"] == history.loc[1, "boxes_touched"] + BOXES
    assert history.loc[2, "boxes_queried"] == BOXES
