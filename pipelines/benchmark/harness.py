"""`alod benchmark`: strategies against random on real data, the papers' protocol.

For each seed: one random initial labeled set shared by every strategy; then K cycles of
train -> evaluate on the fixed test split -> score the pool -> select -> the oracle answers.
Training, evaluation and scoring are cached by *lineage* (seed + the labeled batches so far), so
strategies whose labeled sets coincide (all of them at cycle 0) share one model and one scored
pool. Every step is written to disk as it finishes: an interrupted benchmark resumes where it
stopped. Results: `results.csv` plus the report (`alod benchmark --report-only` redraws it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from core.settings import load_params, resolve_path
from pipelines.cycle.layout import read_json, write_json
from pipelines.cycle.oracle import initial_frames
from pipelines.cycle.recipe import Recipe, split_frames, train_and_evaluate
from pipelines.datasets import Manifest, import_dataset
from pipelines.datasets.manifest import resolve_image
from strategies.pool import Budget, CycleState
from strategies.registry import select
from strategies.temporal import close_pairs

log = logging.getLogger("alod.benchmark")


@dataclass
class BenchmarkConfig:
    name: str
    dataset: str
    strategies: dict[str, dict[str, Any]]  # label -> {name, params}
    seeds: list[int]
    cycles: int
    initial_frames: int
    budget: dict[str, Any]
    epochs: int = 5
    imgsz: int = 320
    batch: int = 16
    warm_start: str = "previous"  # previous | base
    pool_split: str = "train"
    test_split: str = "test"
    val_split: str = "val"
    val_limit: int = 16
    pool_limit: int | None = None
    score_subset: int | None = None  # score only this many random unlabeled pool frames each cycle
    test_limit: int | None = None
    device: str = "auto"
    weights: str | None = None  # default: model.base_weights
    out_dir: str = "benchmarks/runs"
    report_dir: str | None = None  # default: docs/benchmarks/<name>
    parallel_seeds: int = 1  # seeds run in this many processes at once (a GPU is mostly idle on small models)
    log_mlflow: bool = True  # False: no MLflow runs, and mlflow is never imported (a bare GPU machine)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, overrides: dict[str, Any] | None = None) -> BenchmarkConfig:
        data = {**yaml.safe_load(path.read_text()), **(overrides or {})}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown benchmark settings {unknown}; valid: {sorted(known)}")
        return cls(**data)

    def recipe(self) -> Recipe:
        """How every step of this benchmark trains and evaluates (`pipelines.cycle.recipe`)."""
        return Recipe(
            epochs=self.epochs,
            imgsz=self.imgsz,
            batch=self.batch,
            device=self.device,
            val_split=self.val_split,
            val_limit=self.val_limit,
        )

    def train_key(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("epochs", "imgsz", "batch", "warm_start", "val_limit", "weights")}


class Benchmark:
    def __init__(self, cfg: BenchmarkConfig, params: dict[str, Any]) -> None:
        self.cfg, self.params = cfg, params
        self.root = Path(params["_root"])
        self.out = resolve_path(params, cfg.out_dir) / cfg.name  # type: ignore[operator]
        self.manifest = self._manifest()
        self.weights = str(resolve_path(params, cfg.weights or params["model"]["base_weights"]))
        self.boxes_of = self.manifest.boxes.groupby("frame_id").size().to_dict()

    def _manifest(self) -> Manifest:
        folder = self.out / "manifest"
        if (folder / "frames.parquet").exists() and _stale(Manifest.load(folder), self.root):
            log.warning("%s: the cached manifest names images that are not there (moved?): importing again", folder)
            (folder / "frames.parquet").unlink()
        if not (folder / "frames.parquet").exists():
            config = self.params["datasets"][self.cfg.dataset]
            manifest, import_log = import_dataset(self.cfg.dataset, config, self.root)
            manifest.save(folder)
            log.info("imported %s: %s", self.cfg.dataset, import_log.summary())
        return Manifest.load(folder)

    # -- one lineage step: train, evaluate, score (cached on disk) ------------------------------
    def lineage_dir(self, seed: int, batches: list[list[str]]) -> Path:
        key = json.dumps([seed, self.cfg.train_key(), [sorted(b) for b in batches]], sort_keys=True)
        return self.out / "steps" / hashlib.sha1(key.encode()).hexdigest()[:16]

    def step(self, seed: int, batches: list[list[str]]) -> Path:
        folder = self.lineage_dir(seed, batches)
        if not (folder / "eval.json").exists():
            self._train_and_evaluate(folder, seed, batches)
        return folder

    def _train_and_evaluate(self, folder: Path, seed: int, batches: list[list[str]]) -> None:
        cfg = self.cfg
        labeled = [f for b in batches for f in b]
        start = self.weights
        if cfg.warm_start == "previous" and len(batches) > 1:
            start = str(self.step(seed, batches[:-1]) / "model.pt")
        test = self.test_frames()
        quality = train_and_evaluate(
            cfg.recipe(),
            folder,
            self.manifest,
            self.root,
            start=start,
            seed=seed,
            train_ids=labeled,
            train_boxes=self.manifest.boxes_of(labeled),
            test=test,
        )
        if cfg.extra.get("miss_rate_fppi") is not None:  # pedestrians: miss rate at N false positives per image
            from pipelines.benchmark.miss_rate import model_miss_rate

            quality["miss_rate"] = model_miss_rate(
                folder / "model.pt",
                test,
                self.manifest.boxes_of(test["frame_id"]),
                self.root,
                imgsz=cfg.imgsz,
                device=cfg.device,
                fppi=float(cfg.extra["miss_rate_fppi"]),
            )
        write_json(folder / "eval.json", {**quality, "frames": len(labeled)})

    def test_frames(self) -> pd.DataFrame:
        """The fixed test split every step is measured on."""
        test = split_frames(self.manifest, self.cfg.test_split, self.cfg.test_limit)
        if test.empty:
            raise ValueError(f"{self.cfg.dataset}: no frames in the test split {self.cfg.test_split!r}")
        return test

    def scored_pool(self, folder: Path, seed: int = 0, labeled: list[str] | tuple[str, ...] = ()):
        from core.detector import Detector
        from core.scoring import detection_options
        from pipelines.scoring.score import score_frames
        from pipelines.scoring.store import read_scored_pool, read_summary

        scores = folder / "scores"
        if read_summary(scores) is None:
            pool = self.manifest.frames[self.manifest.frames["split"] == self.cfg.pool_split]
            if self.cfg.pool_limit:
                pool = pool.head(self.cfg.pool_limit)
            pool = score_subset(pool, self.cfg.score_subset, seed, set(labeled))
            detector = Detector.from_params(self.params, folder / "model.pt", device=self.cfg.device)
            options = detection_options(self.params)
            score_frames(
                pool.reset_index(drop=True),
                detector,
                scores,
                conf=options.conf,
                tta_flip=options.tta_flip,
                divergence_radius=options.divergence_radius,
                root=self.root,
                progress=False,
            )
        return read_scored_pool(scores)

    # -- one strategy over one seed, resumable ---------------------------------------------------
    def run_strategy(self, seed: int, label: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
        if spec.get("level") == "box":  # box-level queries: docs/box_level.md
            from pipelines.benchmark.boxes import run_box_strategy

            return run_box_strategy(self, seed, label, spec)
        state_file = self.out / "state" / f"seed{seed}" / f"{label}.json"
        state = read_json(state_file) or {
            "batches": [
                initial_frames(
                    self.manifest,
                    self.cfg.initial_frames,
                    seed,
                    self.cfg.pool_split,
                    str(self.cfg.extra.get("initial_selection", "random")),
                )
            ],
            "blocked": [],
            "rows": [],
        }
        if 0 < len(state["rows"]) <= self.cfg.cycles and len(state["batches"]) == len(state["rows"]):
            # recorded by a run with fewer cycles, whose last cycle selected nothing: more cycles now
            self._select_after(seed, spec, state)
            write_json(state_file, state)
        while len(state["rows"]) <= self.cfg.cycles:
            cycle = len(state["rows"])
            folder = self.step(seed, state["batches"])
            quality = read_json(folder / "eval.json")
            labeled = [f for b in state["batches"] for f in b]
            row = {
                "seed": seed,
                "strategy": label,
                "cycle": cycle,
                "frames": len(labeled),
                "boxes": int(sum(self.boxes_of.get(f, 0) for f in labeled)),
                "map50": quality["map50"],
                "map50_95": quality["map50_95"],
                "train_seconds": quality["train_seconds"],
                **({"miss_rate": quality["miss_rate"]} if "miss_rate" in quality else {}),
                **{f"ap50_95.{k}": v for k, v in quality["per_class_ap50_95"].items()},
            }
            if cycle < self.cfg.cycles and len(state["batches"]) == cycle + 1:
                picks, blocked = self._select(seed, cycle, spec, folder, labeled, state["blocked"])
                row.update(self._selection_stats(picks))
                state["batches"].append(picks)
                state["blocked"] = sorted(set(state["blocked"]) | blocked)
            state["rows"].append(row)
            write_json(state_file, state)
            log.info(
                "seed %d %-22s cycle %d: %4d frames %5d boxes  mAP50-95 %.3f",
                seed,
                label,
                cycle,
                row["frames"],
                row["boxes"],
                row["map50_95"],
            )
        return state["rows"][: self.cfg.cycles + 1]

    def _select_after(self, seed: int, spec: dict[str, Any], state: dict[str, Any]) -> None:
        """The selection after the last recorded cycle, added to its row and to the batches."""
        folder = self.step(seed, state["batches"])
        labeled = [f for b in state["batches"] for f in b]
        picks, blocked = self._select(seed, len(state["rows"]) - 1, spec, folder, labeled, state["blocked"])
        state["rows"][-1].update(self._selection_stats(picks))
        state["batches"].append(picks)
        state["blocked"] = sorted(set(state["blocked"]) | blocked)

    def _select(self, seed, cycle, spec, folder, labeled, blocked) -> tuple[list[str], set[str]]:
        pool = self.scored_pool(folder, seed, labeled)
        counts = np.bincount(self.manifest.boxes_of(labeled)["class_id"].astype(int), minlength=pool.num_classes)[
            : pool.num_classes
        ]
        state = CycleState(
            cycle=cycle, labeled=frozenset(labeled), labeled_class_counts=counts, blocked=frozenset(blocked)
        )
        budget = Budget(**{k: v for k, v in (spec.get("budget") or self.cfg.budget).items() if v is not None})
        selection = select(spec["name"], pool, budget, state, seed=seed * 1000 + cycle, **(spec.get("params") or {}))
        return selection.frame_ids(pool), set(selection.blocked)

    def _selection_stats(self, picks: list[str]) -> dict[str, Any]:
        boxes = self.manifest.boxes_of(picks)
        per_class = boxes["label"].value_counts()
        frames = self.manifest.frames.set_index("frame_id").loc[picks]
        window = int(self.cfg.extra.get("close_window", 5))
        return {
            "selected_frames": len(picks),
            "selected_boxes": len(boxes),
            "close_pairs": close_pairs(frames["video"].to_numpy(), frames["frame"].to_numpy(), window),
            **{f"selected.{n}": int(per_class.get(n, 0)) for n in self.manifest.labels.names},
        }

    def run_seed(self, seed: int) -> list[dict[str, Any]]:
        rows = []
        for label, spec in self.cfg.strategies.items():
            rows.extend(self.run_strategy(seed, label, spec))
        return rows

    def run(self) -> pd.DataFrame:
        workers = min(self.cfg.parallel_seeds, len(self.cfg.seeds))
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a fresh interpreter per worker (no forked CUDA state); each rebuilds the Benchmark,
            # whose manifest this process has already imported
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_logging) as pool:
                per_seed = list(pool.map(_run_seed, [(self.cfg, self.params, s) for s in self.cfg.seeds]))
        else:
            per_seed = [self.run_seed(seed) for seed in self.cfg.seeds]
        results = pd.DataFrame([row for rows in per_seed for row in rows])
        results.to_csv(self.out / "results.csv", index=False)
        return results


def _worker_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run_seed(job: tuple[BenchmarkConfig, dict[str, Any], int]) -> list[dict[str, Any]]:
    cfg, params, seed = job
    return Benchmark(cfg, params).run_seed(seed)


def score_subset(pool: pd.DataFrame, size: int | None, seed: int, labeled: set[str]) -> pd.DataFrame:
    """The labeled ``pool`` frames plus a random ``size`` of its unlabeled ones (all when ``size`` is None).

    The aggregation paper's remedy when scoring the whole pool each cycle costs too much: the
    strategy then ranks only this subset. Labeled frames stay in (coreset measures distances to
    them). The draw depends on the seed and the labeled set, so it is the same for every arm that
    shares a lineage (and so its cached scores) and differs from cycle to cycle.
    """
    unlabeled = ~pool["frame_id"].isin(labeled)
    if not size or size >= int(unlabeled.sum()):
        return pool
    key = hashlib.sha1(json.dumps([seed, sorted(labeled)]).encode()).hexdigest()
    drawn = pool[unlabeled].sample(n=size, random_state=int(key[:8], 16))
    return pool[~unlabeled | pool.index.isin(drawn.index)]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="benchmark settings (YAML), e.g. benchmarks/configs/bccd.yaml")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting (YAML value), e.g. --set seeds=[0] --set cycles=1",
    )
    parser.add_argument(
        "--report-only",
        nargs="?",
        const=True,
        default=False,
        metavar="DIR",
        help="redraw the report from results.csv: of the --config run, or in the report folder DIR "
        "(e.g. docs/benchmarks/bccd); no training, no MLflow",
    )


def report_only(folder: Path) -> int:
    """Rebuild report.md, summary.csv and the plots in ``folder`` from its results.csv.

    The settings come from ``folder/config.yaml`` (written by every run), else from
    benchmarks/configs/<folder name>.yaml; the wall time and machine from ``folder/run.json``.
    """
    from pipelines.benchmark.machine import read_run
    from pipelines.benchmark.report import write_report

    config = folder / "config.yaml"
    if not config.exists():
        config = Path(__file__).resolve().parents[2] / "benchmarks" / "configs" / f"{folder.name}.yaml"
    cfg = BenchmarkConfig.load(config) if config.exists() else None
    write_report(pd.read_csv(folder / "results.csv"), cfg, folder, run=read_run(folder))
    log.info("report redrawn in %s", folder)
    return 0


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from pipelines.benchmark.machine import WallClock, read_run
    from pipelines.benchmark.report import write_report

    if isinstance(args.report_only, str):
        return report_only(Path(args.report_only))
    if not args.config:
        raise SystemExit("alod benchmark: --config is required (or --report-only DIR)")
    params = load_params()
    overrides = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    cfg = BenchmarkConfig.load(Path(args.config), overrides)
    bench = Benchmark(cfg, params)
    if args.report_only:
        results = pd.read_csv(bench.out / "results.csv")
    else:
        clock = WallClock(bench.out)
        results = bench.run()
        clock.stop()
    report = resolve_path(params, cfg.report_dir or f"docs/benchmarks/{cfg.name}")
    report.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    (report / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))  # type: ignore[operator]
    run_info = read_run(bench.out)
    if run_info:
        write_json(report / "run.json", run_info)  # type: ignore[operator]
    write_report(results, cfg, report, bench.manifest.labels.names, run_info)  # type: ignore[arg-type]
    from pipelines.benchmark.paper_tables import write_paper_tables

    frames = bench.manifest.frames
    pool_ids = frames.loc[frames["split"] == cfg.pool_split, "frame_id"]
    per_class = bench.manifest.boxes_of(pool_ids)["label"].value_counts()
    pool_counts = {n: int(per_class.get(n, 0)) for n in bench.manifest.labels.names}
    write_paper_tables(results, pool_counts, report, float(cfg.extra.get("miss_rate_fppi", 1.0)))  # type: ignore[arg-type]
    if cfg.log_mlflow:
        from pipelines.benchmark.report import log_to_mlflow

        run_id = log_to_mlflow(results, cfg, params, report)  # type: ignore[arg-type]
        log.info("report written to %s; MLflow parent run %s", report, run_id)
    else:
        log.info("report written to %s (MLflow off)", report)
    return 0


def _stale(manifest: Manifest, root: Path, sample: int = 5) -> bool:
    """True when the first local images of a cached manifest do not exist (the run folder or the
    data moved): the manifest is derived data, imported again; the lineage cache keys on frame ids."""
    images = [resolve_image(i, root) for i in manifest.frames["image"].head(sample)]
    return any(not Path(i).exists() for i in images if "://" not in i and not i.startswith("data:"))
