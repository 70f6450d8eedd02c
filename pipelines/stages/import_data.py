"""`alod import`: read a dataset into the pool manifest (frames.parquet, gt_boxes.parquet, labels.yaml)."""

from __future__ import annotations

import argparse
import json
import logging

from core.settings import load_params, resolve_path
from pipelines.datasets import import_dataset
from pipelines.datasets.images import VERIFY_MODES
from pipelines.datasets.splits import hash_split, needs_split

log = logging.getLogger("alod.import")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="a name under `datasets:` in params.yaml (default: dataset.name)")
    parser.add_argument("--out", help="manifest folder (default: dataset.manifest_dir)")
    parser.add_argument("--lenient", action="store_true", help="skip frames with bad annotations instead of failing")
    parser.add_argument("--verify", choices=VERIFY_MODES, default="full", help="how hard to check images")


def run(args: argparse.Namespace) -> int:
    params = load_params()
    name = args.dataset or params["dataset"]["name"]
    known = params.get("datasets") or {}
    if name not in known:
        raise SystemExit(f"unknown dataset {name!r}; params.yaml defines: {', '.join(sorted(known))}")
    manifest, import_log = import_dataset(
        name, known[name], resolve_path(params, "."), strict=not args.lenient, verify=args.verify
    )
    auto = params["dataset"]["auto_split"]
    if auto and needs_split(manifest.frames):
        fractions = float(auto["val"]), float(auto["test"])
        manifest.frames["split"] = hash_split(manifest.frames, *fractions, seed=int(auto["seed"]))
        log.info(
            "%s brings no split: a deterministic one by hash (dataset.auto_split %s): %s",
            name,
            auto,
            manifest.frames["split"].value_counts().to_dict(),
        )
        if known[name].get("format") == "labelstudio" and known[name].get("project"):
            from pipelines.labelstudio.project import write_splits

            write_splits(known[name], manifest.frames)
    out = resolve_path(params, args.out or params["dataset"]["manifest_dir"])
    manifest.save(out)
    log.info("imported %s into %s: %s", name, out, json.dumps(manifest.summary()))
    log.info("import log: %s", import_log.summary())
    print(json.dumps({"dataset": name, **manifest.summary(), "import_log": import_log.summary()}, indent=2))
    return 0
