"""`alod seed`: the initial random labeled set of a simulation (cycle 0), answered by the oracle."""

from __future__ import annotations

import argparse
import logging
import shutil

from core.settings import load_params
from pipelines.cycle.layout import CycleLayout
from pipelines.cycle.oracle import AnnotationStore, initial_frames, oracle_answer
from pipelines.datasets import Manifest

log = logging.getLogger("alod.seed")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, help="how many (default: cycle.initial_frames)")
    parser.add_argument(
        "--force", action="store_true", help="start a new simulation: clear the answers and every cycle output"
    )


def run(args: argparse.Namespace) -> int:
    params = load_params()
    layout = CycleLayout.from_params(params)
    store = AnnotationStore(layout.annotations)
    if len(store.load().frames) and not args.force:
        log.info("annotation store %s already holds answers; nothing to do (--force starts over)", layout.annotations)
        return 0
    if args.force:
        for folder in (
            layout.annotations,
            layout.snapshot,
            layout.model,
            layout.history,
            layout.selection,
            layout.metrics,
            layout.push,
            layout.scores,
        ):
            shutil.rmtree(folder, ignore_errors=True)
    manifest = Manifest.load(layout.manifest)
    count = args.frames or int(params["cycle"]["initial_frames"])
    selection = str(params["cycle"]["initial_selection"])
    frame_ids = initial_frames(manifest, count, int(params["seed"]), selection=selection)
    answers = store.add(oracle_answer(manifest, frame_ids, cycle=0))
    log.info("seeded %d frames (%d boxes) into %s", len(answers.frames), len(answers.boxes), layout.annotations)
    return 0
