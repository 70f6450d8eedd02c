"""Miss rate at 1 false positive per image, on constructed detections with a hand-computed curve."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.benchmark.miss_rate import miss_rate_at_fppi, miss_rate_curve

A, B, C = [0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30]
TRUTHS = [np.array([A, B], float), np.array([C], float)]  # image 0: two people; image 1: one
DETECTIONS = [
    (np.array([A, [1, 0, 11, 10], [50, 50, 60, 60], B], float), np.array([0.9, 0.7, 0.5, 0.4])),
    (np.array([[80, 80, 90, 90], C], float), np.array([0.8, 0.6])),
]


def test_the_curve_by_hand():
    # by score: 0.9 TP (A); 0.8 FP; 0.7 FP (A already matched); 0.6 TP (C); 0.5 FP; 0.4 TP (B)
    fppi, miss = miss_rate_curve(DETECTIONS, TRUTHS)
    assert fppi.tolist() == pytest.approx([0, 0.5, 1, 1, 1.5, 1.5])
    assert miss.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0])


def test_miss_rate_at_one_false_positive_per_image():
    assert miss_rate_at_fppi(DETECTIONS, TRUTHS, fppi=1.0) == pytest.approx(1 / 3)
    assert miss_rate_at_fppi(DETECTIONS, TRUTHS, fppi=0.5) == pytest.approx(2 / 3)
    assert miss_rate_at_fppi(DETECTIONS, TRUTHS, fppi=2.0) == pytest.approx(0.0)


def test_no_detection_misses_everything_and_a_low_overlap_is_a_false_positive():
    empty = [(np.zeros((0, 4)), np.zeros(0))] * 2
    assert miss_rate_at_fppi(empty, TRUTHS) == 1.0
    shifted = [(np.array([[6, 0, 16, 10]], float), np.array([0.9])), (np.zeros((0, 4)), np.zeros(0))]  # IoU 0.25
    fppi, miss = miss_rate_curve(shifted, TRUTHS)
    assert fppi.tolist() == [0.5] and miss.tolist() == [1.0]


def test_a_real_model_on_real_frames(shared, tmp_path):
    import pandas as pd

    from pipelines.benchmark.miss_rate import model_miss_rate

    images = sorted((shared / "data" / "mot" / "PETS09-S3MF1" / "img").glob("frame_*.jpg"))[:2]
    test = pd.DataFrame({"frame_id": ["a", "b"], "image": [str(p) for p in images]})
    nobody = pd.DataFrame(columns=["frame_id", "x1", "y1", "x2", "y2"])
    weights = shared / "weights" / "yolo11n-coco.pt"
    # with no ground truth every detection is a false positive: nothing to miss
    assert model_miss_rate(weights, test, nobody, tmp_path, imgsz=160, device="cpu") == 0.0
    far_away = pd.DataFrame({"frame_id": ["a"], "x1": [-500.0], "y1": [-500.0], "x2": [-400.0], "y2": [-400.0]})
    assert model_miss_rate(weights, test, far_away, tmp_path, imgsz=160, device="cpu") == 1.0
