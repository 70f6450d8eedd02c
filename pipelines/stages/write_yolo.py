"""`alod write-yolo`: the manifest's ground truth as a YOLO dataset (symlinked images) for ultralytics."""

from __future__ import annotations

import argparse
import logging

from core.settings import load_params, resolve_path
from pipelines.datasets import Manifest
from pipelines.datasets.yolo_writer import write_yolo_dataset

log = logging.getLogger("alod.write_yolo")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", help="manifest folder (default: dataset.manifest_dir)")
    parser.add_argument("--out", help="output folder (default: dataset.yolo_dir)")
    parser.add_argument("--splits", default="train,val,test", help="comma-separated splits to write")


def run(args: argparse.Namespace) -> int:
    params = load_params()
    manifest = Manifest.load(resolve_path(params, args.manifest or params["dataset"]["manifest_dir"]))
    wanted = [s.strip() for s in args.splits.split(",") if s.strip()]
    splits = {s: manifest.frames[manifest.frames["split"] == s] for s in wanted}
    splits = {s: f for s, f in splits.items() if len(f)}
    out = resolve_path(params, args.out or params["dataset"]["yolo_dir"])
    data_yaml = write_yolo_dataset(out, manifest.labels.names, splits, manifest.boxes, resolve_path(params, "."))
    log.info("wrote %s (%s)", data_yaml, ", ".join(f"{s}: {len(f)} frames" for s, f in splits.items()))
    print(data_yaml)
    return 0
