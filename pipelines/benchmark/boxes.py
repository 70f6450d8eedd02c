"""The box-level arm of `alod benchmark`: each cycle asks about K boxes instead of whole frames.

`Benchmark.run` calls `run_box_strategy` for a strategy whose spec says ``level: box``:

    box_level: {name: box_level, level: box, params: {measure: least_confidence}, box: {noisy_weight: 0.5}}

(``box`` overrides `params.yaml`'s ``box_level`` section; see `BoxSettings`.) Cycle 0 is the
image-level arms' shared step: the same random initial frames, fully labeled, the same model.
Then per cycle: the cycle's model scores the pool (the harness's cached scored pool); boxes an
earlier answer covers are dropped; the strategy picks the budget's boxes; the oracle snaps or
rejects them (`pipelines.boxlevel.oracle`); the next model is fine-tuned on the initial frames plus
every frame with an answered box, whose other predicted boxes are noisy labels weighing
lambda_d (`pipelines.boxlevel.partial_labels`, `pipelines.boxlevel.dampened_training`), and evaluated on the
same test split. Steps are cached by content under ``steps/box-<hash>`` and the state is saved
after every cycle, so an interrupted run resumes.

Rows have the columns of `Benchmark.run_strategy` with ``boxes`` = boxes labeled so far: the
initial frames' boxes plus one per query (whatever the answer), so the arms compare at equal
labeling cost. ``frames`` counts the frames trained on; ``selected_boxes`` the queries of the
cycle, ``selected.<class>`` their answered classes. Added: ``boxes_accepted``,
``boxes_corrected``, ``boxes_rejected`` (cumulative) and ``boxes_noisy`` (noisy labels the
cycle's model trained on; never part of ``boxes``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipelines.boxlevel.oracle import answer_queries
from pipelines.boxlevel.partial_labels import (
    ANSWER_COLUMNS,
    ANSWERED,
    answered_frames,
    covered_boxes,
    labeling_cost,
    noisy_boxes,
    queries_from_selection,
    restrict,
    training_boxes,
)
from pipelines.boxlevel.settings import BoxSettings
from pipelines.cycle.layout import read_json, write_json
from pipelines.cycle.oracle import initial_frames
from pipelines.cycle.recipe import train_and_evaluate
from strategies.pool import Budget, CycleState, ScoredPool
from strategies.registry import select
from strategies.temporal import close_pairs

if TYPE_CHECKING:
    from pipelines.benchmark.harness import Benchmark

log = logging.getLogger("alod.benchmark")

COST_COLUMNS = ("boxes_accepted", "boxes_corrected", "boxes_rejected", "boxes_noisy")


def run_box_strategy(bench: Benchmark, seed: int, label: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One box-level strategy over one seed, resumable; rows as `Benchmark.run_strategy` returns them."""
    cfg = bench.cfg
    settings = BoxSettings.resolve(bench.params, spec)
    budget = Budget(**{k: v for k, v in cfg.budget.items() if v is not None})
    noisy_conf = budget.box_conf_threshold if settings.noisy_conf is None else settings.noisy_conf
    state_file = bench.out / "state" / f"seed{seed}" / f"{label}.json"
    state = read_json(state_file) or {
        "initial": initial_frames(
            bench.manifest, cfg.initial_frames, seed, cfg.pool_split, str(cfg.extra.get("initial_selection", "random"))
        ),
        "answers": [],
        "rows": [],
    }
    initial = state["initial"]
    initial_boxes = int(sum(bench.boxes_of.get(f, 0) for f in initial))
    answers = pd.DataFrame(state["answers"], columns=ANSWER_COLUMNS)
    folder = bench.step(seed, [initial])  # the image-level arms' shared cycle 0
    for cycle in range(cfg.cycles + 1):
        before = answers[answers["cycle"] < cycle]
        if cycle > 0:
            folder = _step(bench, seed, folder, initial, before, settings, noisy_conf)
        if cycle < len(state["rows"]):
            continue  # recorded by an earlier, interrupted run
        quality = read_json(folder / "eval.json")
        cost = labeling_cost(before)
        row = {
            "seed": seed,
            "strategy": label,
            "cycle": cycle,
            "frames": quality["frames"],
            "boxes": initial_boxes + cost["boxes_cost"],
            "map50": quality["map50"],
            "map50_95": quality["map50_95"],
            "train_seconds": quality["train_seconds"],
            **{f"ap50_95.{k}": v for k, v in quality["per_class_ap50_95"].items()},
            **{k: cost[k] for k in COST_COLUMNS[:3]},
            "boxes_noisy": quality.get("noisy_boxes", 0),
        }
        if cycle < cfg.cycles:
            pool = bench.scored_pool(folder, seed, [*initial, *answered_frames(before)])
            new = _query(bench, pool, seed, cycle, spec, budget, initial, answers, settings)
            row.update(_selection_stats(bench, new))
            answers = pd.concat([answers, new], ignore_index=True) if len(answers) else new
            state["answers"] = answers.to_dict("records")
        state["rows"].append(row)
        write_json(state_file, state)
        log.info(
            "seed %d %-22s cycle %d: %4d frames %5d boxes (%d noisy) mAP50-95 %.3f",
            seed,
            label,
            cycle,
            row["frames"],
            row["boxes"],
            row["boxes_noisy"],
            row["map50_95"],
        )
    return state["rows"]


def _query(
    bench: Benchmark,
    pool: ScoredPool,
    seed: int,
    cycle: int,
    spec: dict[str, Any],
    budget: Budget,
    initial: list[str],
    answers: pd.DataFrame,
    settings: BoxSettings,
) -> pd.DataFrame:
    """The strategy's queries on the boxes no answer covers yet, answered by the oracle."""
    open_pool, _ = restrict(pool, ~covered_boxes(pool, answers, settings.cover_iou))
    answered = answers.loc[answers["outcome"].isin(ANSWERED), "class_id"] if len(answers) else pd.Series(dtype=int)
    classes = np.concatenate([bench.manifest.boxes_of(initial)["class_id"].to_numpy(int), answered.to_numpy(int)])
    counts = np.bincount(classes, minlength=pool.num_classes)[: pool.num_classes]
    # frames with an answered box stay selectable: their other boxes may still be asked about
    state = CycleState(cycle=cycle, labeled=frozenset(initial), labeled_class_counts=counts)
    selection = select(spec["name"], open_pool, budget, state, seed=seed * 1000 + cycle, **(spec.get("params") or {}))
    if selection.box_indices is None:
        raise ValueError(f"strategy {spec['name']!r} selects frames, not boxes: it cannot run with level: box")
    queries = queries_from_selection(open_pool, selection, cycle)
    truth = bench.manifest.boxes_of(queries["frame_id"])
    return answer_queries(queries, truth, iou_snap=settings.iou_snap, accept_iou=settings.accept_iou, earlier=answers)


def _step(
    bench: Benchmark,
    seed: int,
    previous: Path,
    initial: list[str],
    answers: pd.DataFrame,
    settings: BoxSettings,
    noisy_conf: float,
) -> Path:
    """Train and evaluate on the partial labels after ``answers`` (cached by content)."""
    # the latest model's predictions give the noisy labels; `previous` was scored when it was queried
    pool = bench.scored_pool(previous, seed, initial)
    frames = answered_frames(answers, settings.train_background_answers)
    noisy = noisy_boxes(pool, frames, ~covered_boxes(pool, answers, settings.cover_iou), noisy_conf)
    boxes = training_boxes(
        bench.manifest.boxes_of(initial), answers, noisy, settings.noisy_weight, settings.train_background_answers
    )
    start = str(previous / "model.pt") if bench.cfg.warm_start == "previous" else bench.weights
    content = boxes.round(2).to_csv(index=False)
    key = json.dumps(
        [
            seed,
            bench.cfg.train_key(),
            "box",
            start,
            sorted(initial),
            sorted(frames),
            content,
            settings.loss_normalisation,
        ],
        sort_keys=True,
    )
    folder = bench.out / "steps" / f"box-{hashlib.sha1(key.encode()).hexdigest()[:16]}"
    if not (folder / "eval.json").exists():
        n_noisy = int(noisy["frame_id"].isin(set(frames)).sum())
        _train_and_evaluate(
            bench, folder, seed, start, [*initial, *frames], boxes, n_noisy, settings.loss_normalisation
        )
    return folder


def _train_and_evaluate(
    bench: Benchmark,
    folder: Path,
    seed: int,
    start: str,
    train_ids: list[str],
    boxes: pd.DataFrame,
    n_noisy: int,
    normalisation: str,
) -> None:
    quality = train_and_evaluate(
        bench.cfg.recipe().with_box_loss(normalisation),
        folder,
        bench.manifest,
        bench.root,
        start=start,
        seed=seed,
        train_ids=train_ids,
        train_boxes=boxes,
        test=bench.test_frames(),
    )
    frames = bench.manifest.frames
    trained = int(frames["frame_id"].isin(set(train_ids)).sum())
    write_json(
        folder / "eval.json",
        {**quality, "frames": trained, "noisy_boxes": n_noisy, "labeled_boxes": len(boxes) - n_noisy},
    )


def _selection_stats(bench: Benchmark, answers: pd.DataFrame) -> dict[str, Any]:
    """`Benchmark._selection_stats` for a box query: frames asked about, queries, answered classes."""
    names = bench.manifest.labels.names
    answered = answers.loc[answers["outcome"].isin(ANSWERED), "class_id"].astype(int).value_counts()
    frames = bench.manifest.frames.set_index("frame_id").loc[list(dict.fromkeys(answers["frame_id"]))]
    window = int(bench.cfg.extra.get("close_window", 5))
    return {
        "selected_frames": len(frames),
        "selected_boxes": len(answers),
        "close_pairs": close_pairs(frames["video"].to_numpy(), frames["frame"].to_numpy(), window),
        **{f"selected.{n}": int(answered.get(i, 0)) for i, n in enumerate(names)},
    }
