"""Detections -> Label Studio regions and task scores, on small constructed detections with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.detector import ImageDetections
from core.labels import build_label_map
from core.predictions import regions, task_prediction
from core.scoring import DetectionOptions, TaskScorer, detection_options, pool_from_detections, to_ls_score
from strategies import Budget, CycleState, select

CLASSES = ("person", "car", "dog")
CONFIG = (
    '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
    '<Label value="Human" predicted_values="person"/><Label value="car"/></RectangleLabels></View>'
)


Row = tuple[float, float, float, float, int, list[float]]


def det(boxes: list[Row], w: int = 200, h: int = 100) -> ImageDetections:
    """Detections from (x1, y1, x2, y2, cls, probs) rows; conf = max(probs)."""
    probs = np.array([b[5] for b in boxes], np.float32).reshape(-1, len(CLASSES))
    return ImageDetections(
        width=w,
        height=h,
        xyxy=np.array([b[:4] for b in boxes], np.float32).reshape(-1, 4),
        conf=probs.max(axis=1) if len(boxes) else np.zeros(0, np.float32),
        cls=np.array([b[4] for b in boxes], np.int64),
        probs=probs,
        embeddings=np.ones((len(boxes), 4), np.float32) / 2,
        image_embedding=np.ones(8, np.float32) / math.sqrt(8),
    )


@pytest.fixture(scope="module")
def label_map():
    return build_label_map(CONFIG, CLASSES)


def test_regions_are_percent_of_the_image_clipped_labeled_and_sorted_by_confidence(label_map):
    d = det(
        [
            (20, 10, 120, 60, 1, [0.1, 0.6, 0.0]),  # car
            (-10, -5, 40, 120, 0, [0.9, 0.0, 0.1]),  # person, crossing the border
            (0, 0, 10, 10, 2, [0.0, 0.1, 0.95]),  # dog: no label -> dropped
            (50, 50, 60, 60, 1, [0.1, 0.2, 0.0]),  # car below the pre-annotation threshold -> dropped
        ]
    )
    out = regions(d, label_map, min_conf=0.25)
    assert [r["value"]["rectanglelabels"] for r in out] == [["Human"], ["car"]]
    human, car = (r["value"] for r in out)
    assert (human["x"], human["y"], human["width"], human["height"]) == (0.0, 0.0, 20.0, 100.0)
    assert car["x"] == pytest.approx(10) and car["y"] == pytest.approx(10)
    assert car["width"] == pytest.approx(50) and car["height"] == pytest.approx(50)
    assert [r["score"] for r in out] == pytest.approx([0.9, 0.6])
    assert {(r["from_name"], r["to_name"], r["type"], r["original_width"]) for r in out} == {
        ("label", "image", "rectanglelabels", 200)
    }
    assert len({r["id"] for r in out}) == 2


def test_a_task_prediction_carries_score_and_model_version(label_map):
    p = task_prediction(det([]), label_map, 0.25, score=0.7, model_version="alod:3")
    assert p == {"result": [], "score": 0.7, "model_version": "alod:3"}


def test_ls_score_is_strictly_decreasing_in_the_acquisition_value_and_nan_sorts_last():
    values = [-1e9, -3.0, -0.1, 0.0, 1e-6, 0.5, 2.0, 40.0, 1e9]
    scores = [to_ls_score(v) for v in values]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert all(0.0 < s < 1.0 for s in scores)
    assert to_ls_score(float("nan")) == 1.0 > max(scores)
    assert to_ls_score(float("inf")) == 0.0


def random_detections(rng: np.random.Generator, n: int) -> list[ImageDetections]:
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 5))
        boxes = []
        for _ in range(k):
            p = rng.dirichlet(np.ones(3)).tolist()
            boxes.append((10, 10, 50, 50, int(np.argmax(p)), p))
        out.append(det(boxes))
    return out


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"measure": "margin", "aggregation": "mean"},
        {"include_empty": True},
        {"measure": "least_confidence", "aggregation": "sum", "min_conf": 0.4},
    ],
)
def test_per_task_scores_order_tasks_exactly_as_the_strategy_ranks_the_pool(label_map, params):
    rng = np.random.default_rng(3)
    dets = random_detections(rng, 30)
    ids = [str(i) for i in range(30)]
    pool = pool_from_detections(ids, dets, CLASSES, list(label_map.class_to_label))
    ls_scores = [to_ls_score(v) for v in TaskScorer("uncertainty", params).values(pool, ids)]
    selection = select("uncertainty", pool, Budget(frames=30), CycleState(), seed=0, **params)
    picked = list(selection.indices)
    ranked = [i for i, v in zip(picked, selection.values, strict=True) if v > 0]  # ties at 0: seeded random order
    shown_first = sorted(range(30), key=lambda i: ls_scores[i])
    assert shown_first[: len(ranked)] == ranked  # the frames the strategy would pick, in its order
    assert set(shown_first[: len(picked)]) == set(picked)
    empty = [i for i in range(30) if pool.boxes_per_image[i] == 0]
    assert empty and set(shown_first[-len(empty) :]) == set(empty)  # empty images come last either way


def test_boxes_of_classes_without_a_label_do_not_count(label_map):
    only_dog = det([(0, 0, 10, 10, 2, [0.3, 0.3, 0.4])])
    pool = pool_from_detections(["a"], [only_dog], CLASSES, list(label_map.class_to_label))
    assert pool.num_boxes == 0
    assert TaskScorer("uncertainty").values(pool, ["a"])[0] == 0.0  # no box: scored 0 (the paper's default)
    assert math.isnan(TaskScorer("uncertainty", {"include_empty": False}).values(pool, ["a"])[0])


@pytest.mark.parametrize(
    ("strategy", "params", "used", "used_params"),
    [
        ("coreset", {}, "uncertainty", {}),
        ("box_level", {"measure": "margin"}, "uncertainty", {}),
        ("balanced_video", {}, "uncertainty", {}),
        (
            "hybrid",
            {"score": "uncertainty", "score_params": {"measure": "margin"}},
            "uncertainty",
            {"measure": "margin"},
        ),
        ("hybrid", {"score": "coreset"}, "uncertainty", {}),
        ("uncertainty", {"measure": "margin", "temporal": {"dt1": 3}}, "uncertainty", {"measure": "margin"}),
        ("tta_consistency", {}, "tta_consistency", {}),
    ],
)
def test_pool_level_strategies_fall_back_to_a_per_frame_score(strategy, params, used, used_params):
    scorer = TaskScorer(strategy, params)
    assert (scorer.name, scorer.params) == (used, used_params)
    assert detection_options(PARAMS, scorer.name).tta_flip == (used == "tta_consistency")


PARAMS = {
    "detector": {"conf_score": 0.05, "tta_flip": False, "divergence_radius": 2},
    "strategy": {"name": "uncertainty"},
}


DIVERGENCE = {"radius": 2.0, "region": 30, "units": "pixels"}  # detector.divergence_* with the defaults


def test_detection_options_compute_what_the_strategy_declares_it_needs():
    assert detection_options(PARAMS, "uncertainty") == DetectionOptions(0.05, False, None)
    assert detection_options(PARAMS, "spatial_divergence") == DetectionOptions(0.05, False, DIVERGENCE)
    assert detection_options(PARAMS, "tta_consistency") == DetectionOptions(0.05, True, None)


def test_the_stored_pool_has_divergence_maps_for_any_strategy_and_the_flip_when_asked():
    assert detection_options(PARAMS) == DetectionOptions(0.05, False, DIVERGENCE)
    flip = {**PARAMS, "strategy": {"name": "tta_consistency"}}
    assert detection_options(flip) == DetectionOptions(0.05, True, DIVERGENCE)


def test_random_scores_differ_between_tasks_and_repeat_for_a_task(label_map):
    dets = random_detections(np.random.default_rng(0), 5)
    pool = pool_from_detections(list("abcde"), dets, CLASSES)
    scorer = TaskScorer("random", seed=7)
    first, again = scorer.values(pool, list("abcde")), scorer.values(pool, list("abcde"))
    assert np.array_equal(first, again) and len(set(first.tolist())) == 5


def test_a_bad_strategy_parameter_fails_at_start_up():
    with pytest.raises(ValueError, match="measure"):
        TaskScorer("uncertainty", {"measure": "vibes"})
    with pytest.raises(ValueError, match="unknown strategy"):
        TaskScorer("oracle")
