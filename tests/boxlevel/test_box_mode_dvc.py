"""`strategy: box_level` through two real `dvc repro` cycles in simulation, in a temporary git repo.

Cycle 1 trains on the seed frames, then `select` picks BOXES boxes and the box oracle answers them;
cycle 2 exports those answers, trains on the answered frames with their other predicted boxes as
noisy labels (weight lambda_d, a 6th label column), counts cost in boxes touched, and asks about
boxes that no cycle-1 answer covers. Small: BCCD, 1 epoch, imgsz 160."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.boxlevel.partial_labels import XYXY, iou_matrix
from tests.cycle.scratch import Repo, small_params

pytestmark = pytest.mark.slow

SEED_FRAMES, BOXES, NOISY_WEIGHT, COVER_IOU = 8, 10, 0.5, 0.5


@pytest.fixture(scope="module")
def box_cycles(tmp_path_factory, shared):
    params = small_params(shared, seed_frames=SEED_FRAMES)
    params["strategy"] = {"name": "box_level", "params": {"measure": "least_confidence", "min_conf": 0.05}}
    params["budget"].update(frames=None, boxes=BOXES)
    # a model trained 1 epoch at imgsz 160 is rarely confident: take its low-confidence boxes as noisy labels
    params["box_level"].update(noisy_weight=NOISY_WEIGHT, noisy_conf=0.05, cover_iou=COVER_IOU)
    repo = Repo(tmp_path_factory.mktemp("boxmode"), params)
    repo.run("dvc repro -q import")
    repo.run("alod seed")
    repo.run("dvc repro")
    repo.commit_cycle("cycle-1")
    repo.run("dvc repro")
    repo.commit_cycle("cycle-2")
    return repo


def test_each_cycle_queries_the_box_budget(box_cycles):
    queries = box_cycles.read("data/annotations/box/queries.parquet")
    assert queries.groupby("cycle").size().to_dict() == {1: BOXES, 2: BOXES}
    assert queries["query_id"].is_unique
    selection = box_cycles.json("data/selection/selection.json")
    assert selection["cycle"] == 2 and selection["boxes"] == BOXES
    assert selection["frames"] == queries.loc[queries["cycle"] == 2, "frame_id"].nunique()
    manifest = box_cycles.read("data/manifest/frames.parquet").set_index("frame_id")
    assert set(manifest.loc[queries["frame_id"], "split"]) == {"train"}
    seeds = set(box_cycles.read("data/snapshot/labeled_frames.parquet")["frame_id"])
    assert not seeds & set(queries["frame_id"])  # fully labeled frames are never asked about


def test_the_box_oracle_answers_every_query_from_the_ground_truth(box_cycles):
    answers = box_cycles.read("data/annotations/box/box_answers.parquet")
    queries = box_cycles.read("data/annotations/box/queries.parquet")
    assert sorted(answers["query_id"]) == sorted(queries["query_id"])
    assert set(answers["outcome"]) <= {"accepted", "corrected", "rejected"}
    gt = box_cycles.read("data/manifest/gt_boxes.parquet")
    for a in answers[answers["outcome"] != "rejected"].itertuples():
        truth = gt[gt["frame_id"] == a.frame_id]
        same = (truth[XYXY].to_numpy() == [a.x1, a.y1, a.x2, a.y2]).all(axis=1)
        assert same.any() and int(truth.loc[same, "class_id"].iloc[0]) == a.class_id  # snapped to an object
    assert (answers.loc[answers["outcome"] == "rejected", "class_id"] == -1).all()


def test_cycle_2_asks_about_no_box_a_cycle_1_answer_covers(box_cycles):
    queries = box_cycles.read("data/annotations/box/queries.parquet")
    answers = box_cycles.read("data/snapshot/box_answers.parquet")
    assert set(answers["cycle"]) == {1}  # the snapshot of cycle 2 holds cycle 1's answers
    for q in queries[queries["cycle"] == 2].itertuples():
        earlier = answers.loc[answers["frame_id"] == q.frame_id, XYXY].to_numpy(np.float64)
        if len(earlier):
            assert iou_matrix(np.array([[q.x1, q.y1, q.x2, q.y2]]), earlier).max() < COVER_IOU


def test_cycle_2_trains_on_answered_frames_with_noisy_boxes_at_lambda_d(box_cycles):
    answers = box_cycles.read("data/snapshot/box_answers.parquet")
    noisy = box_cycles.read("data/snapshot/noisy_boxes.parquet")
    answered = set(answers["frame_id"])  # the paper's rule: every frame with an answer, rejections included
    assert len(noisy) > 0 and set(noisy["frame_id"]) <= answered
    trained = box_cycles.json("data/model/train.json")
    assert trained["cycle"] == 2 and trained["frames"] == SEED_FRAMES + len(answered)
    assert trained["noisy_weighted"] == len(noisy)
    labels = box_cycles.path / "data/train_set/labels/train"
    weighted = [p for p in labels.glob("*.txt") if any(len(line.split()) == 6 for line in p.read_text().splitlines())]
    assert weighted, "no label file carries a weight column"
    weights = {float(line.split()[5]) for p in weighted for line in p.read_text().splitlines()}
    assert weights == {1.0, NOISY_WEIGHT}  # answers weigh 1, noisy boxes lambda_d
    weighted_lines = sum(1 for p in weighted for line in p.read_text().splitlines() if float(line.split()[5]) < 1)
    assert weighted_lines == len(noisy)


def test_cost_is_counted_in_boxes_touched(box_cycles):
    gt = box_cycles.read("data/manifest/gt_boxes.parquet")
    seeds = box_cycles.read("data/snapshot/labeled_frames.parquet")["frame_id"]
    seed_boxes = int(gt["frame_id"].isin(set(seeds)).sum())
    history = pd.read_csv(box_cycles.path / "data/history/cycles.csv").set_index("cycle")
    # cycle 1 trained before any query; cycle 2 after BOXES queries, each one box whatever its answer
    assert history.loc[1, "boxes_labeled"] == seed_boxes and history.loc[1, "boxes_queried"] == 0
    assert history.loc[2, "boxes_labeled"] == seed_boxes + BOXES == history.loc[2, "boxes_touched"]
    answers = box_cycles.read("data/snapshot/box_answers.parquet")["outcome"].value_counts()
    for outcome in ("accepted", "corrected", "rejected"):
        assert history.loc[2, f"boxes_{outcome}"] == answers.get(outcome, 0)
    assert history.loc[2, "cumulative_cost"] == SEED_FRAMES + seed_boxes + BOXES  # frame_cost = box_cost = 1
    assert history.loc[2, "boxes_noisy"] == len(box_cycles.read("data/snapshot/noisy_boxes.parquet"))
    summary = box_cycles.run("alod summary").stdout
    assert "boxes_queried" in summary and f"{BOXES} boxes queried" in summary
