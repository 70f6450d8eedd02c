"""One `dvc repro` cycle against the real Label Studio of the backend tests: annotations made through the
API are exported into the snapshot, and the push writes predictions of the cycle's registered model
with the strategy's ranking as score, plus a Data Manager tab listing the selected tasks in rank order."""

from __future__ import annotations

import json

import pytest

from tests.backend.conftest import bccd_project
from tests.cycle.scratch import Repo, small_params

pytestmark = pytest.mark.slow

CONFIG = """<View><Image name="image" value="$image"/>
<RectangleLabels name="label" toName="image">
<Label value="RBC"/><Label value="WBC"/><Label value="Platelets"/>
</RectangleLabels></View>"""
POOL, LABELED, TEST, BUDGET = 14, 6, 6, 4


@pytest.fixture(scope="module")
def cycle(label_studio, shared, tmp_path_factory):
    ls, project_id, tasks, created = bccd_project(label_studio, shared, "alod cycle", CONFIG, POOL, TEST)
    annotated = [t for t in tasks if t["data"]["split"] == "test"]
    annotated += [t for t in tasks if t["data"]["split"] == "train"][:LABELED]
    for task in annotated:  # annotators at work, through the API
        ls.annotations.create(
            id=created[task["data"]["frame_id"]], result=task["annotations"][0]["result"], lead_time=12.5
        )

    params = small_params(shared, budget=BUDGET)
    params["dataset"]["name"] = "lsproj"
    params["datasets"] = {
        "lsproj": {
            "format": "labelstudio",
            "project": project_id,
            "url": label_studio.url,
            "api_key": label_studio.token,
            "document_root": str(label_studio.document_root),
            "labels": ["RBC", "WBC", "Platelets"],
        }
    }
    params["cycle"]["source"] = "labelstudio"
    repo = Repo(tmp_path_factory.mktemp("lscycle"), params)
    repo.run("dvc repro")
    return repo, ls, project_id, created


def test_the_snapshot_holds_the_annotations_made_in_label_studio(cycle):
    repo, ls, pid, created = cycle
    snapshot = repo.json("data/snapshot/snapshot.json")
    assert snapshot["frames"] == LABELED and snapshot["cycle"] == 1 and snapshot["lead_time_s"] == LABELED * 12.5
    frames = repo.read("data/snapshot/labeled_frames.parquet")
    assert sorted(frames["task_id"]) == sorted(created[f] for f in frames["frame_id"])
    annotation_ids = {a.id for f in frames["frame_id"] for a in ls.annotations.list(id=created[f])}
    assert set(frames["annotation_id"]) == annotation_ids


def test_predictions_of_the_registered_model_carry_the_ranking_as_score(cycle):
    repo, ls, pid, created = cycle
    receipt = repo.json("data/push/receipt.json")
    assert receipt["model_version"] == "alod-lsproj:1" and receipt["errors"] == 0
    assert ls.projects.get(id=pid).model_version == "alod-lsproj:1"
    predictions = list(ls.predictions.list(project=pid))
    pool = set(repo.read("data/scores/shard-00000.parquet")["frame_id"])
    assert len(predictions) == len(pool) == POOL  # the test split gets none
    priority = repo.read("data/selection/priority.parquet").set_index("frame_id")["priority"]
    frame_of = {task: frame for frame, task in created.items()}
    for p in predictions:
        assert p.model_version == "alod-lsproj:1"
        assert p.score == pytest.approx(1.0 - priority[frame_of[p.task]])


def test_the_ranked_tab_lists_the_selected_tasks_in_rank_order(cycle):
    repo, ls, pid, created = cycle
    view = repo.json("data/push/receipt.json")["view"]
    listed = [t.id for t in ls.tasks.list(project=pid, view=view)]
    selection = repo.read("data/selection/selection.parquet").sort_values("rank")
    assert listed == [created[f] for f in selection["frame_id"]]
    assert len(listed) == BUDGET
    assert json.loads(json.dumps(ls.views.get(id=view).data))["title"] == "alod cycle 1: uncertainty"
