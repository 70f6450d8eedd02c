"""`alod push-predictions` writes a whole project's predictions through the SDK, in batches, idempotently."""

from __future__ import annotations

import json

import pytest

from pipelines.cli import main

pytestmark = pytest.mark.slow

IMAGES = ("000000000036.jpg", "000000000042.jpg", "000000000061.jpg", "000000000074.jpg", "000000000094.jpg")


@pytest.fixture(scope="module")
def project(label_studio, coco_dir, rect_config):
    ls = label_studio.client()
    p = ls.projects.create(title="alod push", label_config=rect_config)
    storage = ls.import_storage.local.create(
        project=p.id,
        path=str(coco_dir.resolve()),
        regex_filter="|".join(n.replace(".", r"\.") for n in IMAGES),
        use_blob_urls=True,
        title="coco128",
    )
    ls.import_storage.local.sync(id=storage.id)
    ls.projects.import_tasks(p.id, request=[{"data": {"image": "http://127.0.0.1:1/gone.jpg"}}])
    return ls, p.id


def push(label_studio, project_id: int, *extra: str) -> int:
    argv = [
        "push-predictions",
        "--project",
        str(project_id),
        "--url",
        label_studio.url,
        "--api-key",
        label_studio.token,
        "--batch",
        "2",
        *extra,
    ]
    return main(argv)


def test_push_writes_one_prediction_per_readable_task_and_sets_the_project_version(label_studio, project, caplog):
    ls, pid = project
    caplog.set_level("INFO")
    assert push(label_studio, pid) == 0
    predictions = list(ls.predictions.list(project=pid))
    assert len(predictions) == len(IMAGES)  # the unreachable task has none, and a logged reason
    assert "gone.jpg" in caplog.text and "cannot read the image at this URL" in caplog.text
    versions = {p.model_version for p in predictions}
    assert len(versions) == 1
    assert ls.projects.get(id=pid).model_version == versions.pop()
    assert all(p.score is not None for p in predictions)
    assert sum(len(p.result) for p in predictions) > 0

    query = json.dumps({"ordering": ["tasks:predictions_score"]})
    ordered = [t.id for t in ls.tasks.list(project=pid, query=query)]
    score = {p.task: p.score for p in predictions}
    assert [score[t] for t in ordered[: len(IMAGES)]] == sorted(score.values())


def test_a_second_push_skips_tasks_that_have_this_version(label_studio, project, caplog):
    ls, pid = project
    caplog.set_level("INFO")
    before = len(list(ls.predictions.list(project=pid)))
    assert push(label_studio, pid) == 0
    assert len(list(ls.predictions.list(project=pid))) == before
    assert f"{len(IMAGES)} already had" in caplog.text


def test_push_refuses_a_project_whose_config_has_no_rectanglelabels(label_studio, capsys):
    ls = label_studio.client()
    p = ls.projects.create(
        title="alod text",
        label_config='<View><Text name="t" value="$t"/>'
        '<Choices name="c" toName="t"><Choice value="a"/></Choices></View>',
    )
    assert push(label_studio, p.id) == 1
    assert "no <RectangleLabels> on an <Image>" in capsys.readouterr().err
