"""The `score` stage and the backend's ``/predict`` give every frame the same acquisition value.

Both paths start from the same images and settings (a non-default divergence radius, so a setting
that reaches only one of them shows up): the stage scores the pool into shards, reads them back and
asks the strategy for per-frame values; the backend answers ``/predict`` with a task score that is
`to_ls_score` of the same value. `random` is left out: the stage draws from the cycle's seed, the
backend from the task id, by design.
"""

from __future__ import annotations

import argparse
import base64

import numpy as np
import pandas as pd
import pytest

from backend.app import create_app
from core.backend_settings import BackendSettings
from core.detector import Detector
from core.scoring import to_ls_score
from pipelines.scoring.engine import scoring_arguments
from pipelines.scoring.score import score_frames
from pipelines.scoring.store import read_scored_pool
from strategies.pool import CycleState
from strategies.registry import frame_scores

IMAGES = ["000000000074.jpg", "000000000049.jpg", "000000000077.jpg", "000000000009.jpg"]
PER_FRAME = [
    ("uncertainty", {"measure": "entropy", "aggregation": "max"}),
    ("uncertainty", {"measure": "least_confidence", "aggregation": "sum"}),
    ("uncertainty", {"measure": "margin", "aggregation": "mean", "include_empty": True}),
    ("spatial_divergence", {}),
    ("tta_consistency", {}),
]


@pytest.fixture(scope="module")
def settings(params, shared, tmp_path_factory) -> dict:
    detector = {**params["detector"], "divergence_radius": 2, "tta_flip": True, "device": "cpu"}
    out = tmp_path_factory.mktemp("parity")
    return {
        **params,
        "model": {**params["model"], "imgsz": 224},
        "detector": detector,
        "score": {**params["score"], "out_dir": str(out / "scores")},
        "backend": {
            **params["backend"],
            "model_uri": params["model"]["base_weights"],
            "model_poll_s": 0,
            "warmup": False,
            "model_cache_dir": str(out / "cache"),
        },
    }


@pytest.fixture(scope="module")
def images(shared):
    folder = shared / "data" / "coco128" / "images" / "train2017"
    return [folder / name for name in IMAGES]


@pytest.fixture(scope="module")
def stage_pool(settings, images):
    frames = pd.DataFrame({"frame_id": [p.stem for p in images], "image": [str(p) for p in images]})
    detector = Detector.from_params(settings, settings["model"]["base_weights"])
    args = argparse.Namespace(no_progress=True, tta_flip=None, out=None)
    score_frames(frames, detector, **scoring_arguments(settings, args))
    return read_scored_pool(settings["score"]["out_dir"])


def label_config(names: list[str]) -> str:
    labels = "".join(f'<Label value="{name}"/>' for name in names)  # every model class has its label
    return f'<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">{labels}</RectangleLabels></View>'  # noqa: E501


@pytest.mark.parametrize(("strategy", "strategy_params"), PER_FRAME, ids=lambda x: str(x))
def test_predict_and_the_score_stage_agree_on_every_frame(settings, images, stage_pool, strategy, strategy_params):
    expected = frame_scores(strategy, stage_pool, CycleState(), np.random.default_rng(0), **strategy_params)
    params = {**settings, "strategy": {"name": strategy, "params": strategy_params}}
    http = create_app(BackendSettings.load(params, environ={"ALOD_INSECURE_NO_AUTH": "1"})).test_client()
    tasks = [
        {"id": i + 1, "data": {"image": "data:image/jpeg;base64," + base64.b64encode(p.read_bytes()).decode()}}
        for i, p in enumerate(images)
    ]
    reply = http.post("/predict", json={"tasks": tasks, "label_config": label_config(list(stage_pool.class_names))})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    scores = [prediction["score"] for prediction in reply.json["results"]]
    assert list(stage_pool.frame_ids) == [p.stem for p in images]
    assert scores == pytest.approx([to_ls_score(v) for v in expected], abs=1e-6)
    assert len(set(np.round(scores, 6))) > 1  # the frames differ: the comparison is not of constants
