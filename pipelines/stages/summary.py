"""`alod summary`: the table of cycles so far, and where to look at them in MLflow."""

from __future__ import annotations

import argparse

import pandas as pd

from core.settings import load_params
from core.tracking import experiment_name, registered_model_name, tracking_uri
from pipelines.cycle.layout import CycleLayout, read_json
from pipelines.stages.evaluate import HISTORY_FILE


def configure(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    params = load_params()
    path = CycleLayout.from_params(params).history / HISTORY_FILE
    if not path.exists():
        raise FileNotFoundError(f"no cycles yet ({path} is missing): run `dvc repro`")
    history = pd.read_csv(path)
    columns = ["cycle", "frames_labeled", "boxes_labeled", "cumulative_cost", "map50", "map50_95"]
    columns += ["test_frames"] if "test_frames" in history else []  # labeled test frames the mAP is measured on
    box_columns = ["boxes_queried", "boxes_accepted", "boxes_corrected", "boxes_rejected", "boxes_drawn", "boxes_noisy"]
    columns += [c for c in box_columns if c in history]  # box mode: boxes_labeled counts the boxes touched
    print(f"\n{params['dataset']['name']} / {params['strategy']['name']}")
    print(history[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    picked = read_json(CycleLayout.from_params(params).selection / "selection.json")
    if picked:
        print(
            f"\nqueries of cycle {picked['cycle']} ({picked['strategy']}): {picked['frames']} frames, "
            f"{picked['predicted_boxes']} predicted boxes",
            end="",
        )
        if "boxes" in picked:
            print(f", {picked['boxes']} boxes queried", end="")
        if picked.get("close_window"):
            window = picked["close_window"]
            print(f", {picked['close_pairs']} pairs of frames within {window} frames of each other", end="")
        print()
    uri = tracking_uri(params)
    print(f"\nMLflow: experiment {experiment_name(params)!r}, registered model {registered_model_name(params)!r}")
    if uri.startswith("sqlite:"):
        print(f"  open the UI with:  mlflow ui --backend-store-uri {uri}   (then http://127.0.0.1:5000)")
    else:
        print(f"  tracking server: {uri}")
    return 0
