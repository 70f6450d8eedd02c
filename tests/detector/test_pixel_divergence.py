"""Spatial divergence in pixels of the original frame, one implementation for `/predict` and `alod score`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from core.divergence import Divergence, divergence_setting
from core.features import level_divergence, pixel_divergence, pixel_divergence_batch
from core.images import load_image
from core.scoring import TaskScorer, detection_options, pool_from_detections
from strategies import CycleState
from strategies.registry import frame_scores
from strategies.spatial import divergence_map, neighbourhood_mean, region_maxima


def test_settings_come_from_params_with_the_paper_defaults():
    assert divergence_setting({}) == {"radius": 9.0, "region": 30, "units": "pixels"}
    assert divergence_setting({"divergence_radius": 4, "divergence_region": 16}) == {
        "radius": 4.0,
        "region": 16,
        "units": "pixels",
    }
    assert Divergence.parse(1) == Divergence(radius=1, units="grid")  # an int: the earlier grid rule
    with pytest.raises(ValueError, match="units"):
        Divergence(units="cells")


def test_the_torch_pixel_map_is_the_numpy_reference_pooled_over_regions():
    rng = np.random.default_rng(0)
    levels = [rng.random((2, 12, 16)).astype(np.float32) for _ in range(2)]  # already at the input size
    settings = Divergence(radius=2, region=4)
    got = pixel_divergence([torch.tensor(m) for m in levels], (12, 16), (0, 0, 12, 16), 1.0, settings).numpy()
    want = region_maxima(divergence_map(levels, radius=2), 4)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5)
    # the two-class sum (Eq. 4) holds in the port as well
    one, two = (level_divergence(torch.tensor(levels[0][k : k + 1]), 2) for k in (0, 1))
    np.testing.assert_allclose(level_divergence(torch.tensor(levels[0]), 2), one + two, rtol=1e-5, atol=1e-6)


def test_radius_and_region_are_counted_in_original_pixels():
    # a 640-wide frame letterboxed to 320: gain 0.5, so r = 9 px -> 4.5 -> 4 input pixels (round half
    # to even), 30 px regions -> 15 input pixels; a 480-row content of 240 input rows gives 16 x 22 regions
    levels = [torch.rand(1, 40, 40), torch.rand(1, 20, 20)]
    out = pixel_divergence(levels, (320, 320), (40, 0, 280, 320), 0.5, Divergence())
    assert tuple(out.shape) == (16, 22)


def test_predict_and_score_give_the_same_spatial_divergence(detector, bccd_images, tmp_path):
    from pipelines.scoring.score import score_frames
    from pipelines.scoring.store import read_scored_pool

    det_cfg = {"divergence_radius": 9, "divergence_region": 30, "divergence_units": "pixels"}
    image = load_image(bccd_images[0])
    # /predict: core.predictor runs the TaskScorer's settings through the detector, then scores the task
    options = detection_options({"detector": {**det_cfg, "conf_score": 0.05, "tta_flip": False}}, "spatial_divergence")
    scorer = TaskScorer("spatial_divergence")
    dets = detector.detect([image], conf=options.conf, divergence_radius=options.divergence_radius)
    predict_value = scorer.values(pool_from_detections(["t1"], dets, detector.names), ["t1"])[0]
    # alod score: the same params through scoring_arguments' divergence_setting into the Parquet pool
    frames = pd.DataFrame(
        {
            "frame_id": ["t1"],
            "image": [str(bccd_images[0])],
            "width": [640],
            "height": [480],
            "video": [""],
            "frame": [0],
            "split": ["train"],
            "meta": ["{}"],
        }
    )
    score_frames(
        frames,
        detector,
        tmp_path / "scores",
        conf=0.05,
        divergence_radius=divergence_setting(det_cfg),
        root=tmp_path,
        progress=False,
    )
    pool = read_scored_pool(tmp_path / "scores")
    score_value = frame_scores("spatial_divergence", pool, CycleState(), np.random.default_rng(0))[0]
    assert pool.divergence_maps[0].shape == (16, 22)  # 480 x 640 px in 30 px regions
    assert predict_value > 0 and score_value == pytest.approx(predict_value, rel=1e-5)


def test_the_backend_predictor_takes_the_divergence_settings_of_params_yaml():
    from core.backend_settings import BackendSettings
    from core.predictor import Predictor
    from core.settings import load_params

    params = load_params()
    params["strategy"] = {"name": "spatial_divergence", "params": {}}
    params["detector"] = {**params["detector"], "divergence_radius": 5, "divergence_region": 20}
    predictor = Predictor.from_settings(BackendSettings.load(params, environ={}))
    assert predictor.options.divergence_radius == {"radius": 5.0, "region": 20, "units": "pixels"}


@pytest.mark.parametrize("budget", [0, 2**24], ids=["one image at a time", "the batch at once"])
def test_each_image_of_a_batch_gets_what_it_gets_alone(budget):
    # two images of one shape whose classes differ: the first has 3 classes above the negligible level on
    # the fine level, the second 1 (its others stay below 1e-3), so the batch pads the second's classes
    rng = np.random.default_rng(1)
    fine, coarse = rng.random((2, 3, 12, 16)).astype(np.float32), rng.random((2, 3, 6, 8)).astype(np.float32)
    fine[1, 1:] *= 1e-4
    coarse[0, :2] *= 1e-4
    levels = [torch.tensor(fine), torch.tensor(coarse)]
    settings = Divergence(radius=2, region=4)
    batch = pixel_divergence_batch(levels, (24, 32), (0, 0, 24, 30), 2.0, settings, budget=budget)
    for b in range(2):
        alone = pixel_divergence([m[b] for m in levels], (24, 32), (0, 0, 24, 30), 2.0, settings)
        np.testing.assert_array_equal(batch[b].numpy(), alone.numpy())
    assert batch.shape == (2, 3, 4) and (batch > 0).all()  # 24 x 30 input pixels in regions of 8 (4 x gain 2)


@pytest.mark.parametrize("pooled", [True, False], ids=["avg_pool2d (the GPU's)", "box sums (the CPU's)"])
@pytest.mark.parametrize("radius", [1, 4, 9])
def test_both_window_means_are_the_specification(pooled, radius):
    from core.features import _window_mean

    x = np.random.default_rng(radius).random((2, 3, 11, 23)).astype(np.float32)
    got = _window_mean(torch.tensor(x), radius, pooled=pooled).numpy()
    np.testing.assert_allclose(got, neighbourhood_mean(x, radius), rtol=1e-5, atol=1e-6)


def test_a_zero_radius_has_no_divergence():
    m = torch.tensor(np.random.default_rng(2).random((4, 6, 7)).astype(np.float32))
    assert not level_divergence(m, 0).any() and not level_divergence(m.clone(), 0, scratch=True).any()
