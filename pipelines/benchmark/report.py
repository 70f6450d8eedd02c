"""The benchmark's report: tables (CSV + Markdown) with intervals and verdicts, plots, MLflow runs.

The statistics live in `pipelines.benchmark.stats`; this module lays them out. `write_report` only
needs results.csv (plus, when present, the run's settings and wall time), so
`alod benchmark --report-only DIR` redraws any committed report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.benchmark.stats import BASELINE, comparison, fmt_saving, per_budget

log = logging.getLogger("alod.benchmark")

BOX_COST_METRICS = ("boxes_accepted", "boxes_corrected", "boxes_rejected", "boxes_noisy")


def markdown_table(df: pd.DataFrame, floats: str = "{:.3f}") -> str:
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "not reached"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return floats.format(v) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def plot_curves(table: pd.DataFrame, out: Path) -> list[Path]:
    """mAP50-95 against boxes and against frames, the band a 95 % t interval over seeds."""
    import matplotlib.pyplot as plt

    paths = []
    for x, label in (("boxes", "boxes labeled"), ("frames", "frames labeled")):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for strategy, curve in table.groupby("strategy", sort=False):
            curve = curve.sort_values("cycle")
            style = {"color": "black", "linestyle": "--"} if strategy == BASELINE else {}
            ax.plot(curve[x], curve["map50_95"], marker="o", label=strategy, **style)
            band = {"color": "black"} if style else {}
            ax.fill_between(curve[x], curve["ci_low"], curve["ci_high"], alpha=0.12, **band)
        ax.set(
            xlabel=f"{label} (mean over seeds)",
            ylabel="mAP50-95 on the test split",
            title=f"mAP50-95 vs {label} (band: 95 % CI over seeds)",
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"map_vs_{x}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_selections(results: pd.DataFrame, names: tuple[str, ...], out: Path) -> Path:
    """Class distribution of the selected boxes, and objects per selected frame, per strategy."""
    import matplotlib.pyplot as plt

    picked = results.dropna(subset=["selected_frames"]).groupby("strategy", sort=False)
    counts = picked[[f"selected.{n}" for n in names]].sum()
    shares = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    per_frame = picked["selected_boxes"].sum() / picked["selected_frames"].sum()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    bottom = np.zeros(len(shares))
    shown = names if len(names) <= 12 else tuple(counts.sum().sort_values(ascending=False).index.str[9:][:12])
    for name in shown:
        values = shares[f"selected.{name}"].to_numpy()
        left.barh(shares.index, values, left=bottom, label=name)
        bottom += values
    if len(shown) < len(names):
        left.barh(shares.index, 1 - bottom, left=bottom, label="other", color="lightgrey")
    left.set(xlabel="share of selected boxes", title="class distribution of the selections")
    left.legend(fontsize=7, loc="lower right")
    right.barh(per_frame.index, per_frame.to_numpy())
    right.set(xlabel="boxes per selected frame", title="objects per selected frame")
    fig.tight_layout()
    path = out / "selections.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _shown_path(out: Path) -> str:
    from core.settings import REPO_ROOT

    try:
        return str(out.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(out)


def settings_line(cfg: Any) -> str:
    if cfg is None:
        return "Settings: not recorded with these results."
    get = lambda k, d=None: getattr(cfg, k, None) if not isinstance(cfg, dict) else cfg.get(k, d)  # noqa: E731
    parts = [
        f"{len(get('seeds') or [])} seeds {get('seeds')}",
        f"{get('cycles')} cycle(s)",
        f"initial random set of {get('initial_frames')} frames",
        f"budget per cycle {get('budget')}",
        f"{get('epochs')} epochs at imgsz {get('imgsz')}",
        f"warm start: {get('warm_start') or 'previous'}",
    ]
    if get("pool_limit"):
        parts.append(f"pool: the first {get('pool_limit')} images of the `{get('pool_split') or 'train'}` split")
    if get("test_limit"):
        parts.append(f"test: the first {get('test_limit')} images of `{get('test_split') or 'test'}`")
    subset = get("score_subset")
    parts.append(f"scored each cycle: {subset} random unlabeled pool images" if subset else "scored: the whole pool")
    return "Settings: " + "; ".join(parts) + "."


def run_line(run: dict[str, Any], results: pd.DataFrame) -> str:
    if not run:
        steps = results.drop_duplicates(["seed", "frames", "boxes", "map50_95", "train_seconds"])
        return (
            "Wall time and machine: not recorded with these results (run before the harness recorded them); "
            f"training alone took {steps['train_seconds'].sum() / 60:.0f} min (sum over distinct models)."
        )
    minutes = run["wall_seconds"] / 60
    text = f"Wall time {minutes:.1f} min over {run['invocations']} invocation(s) on {run['machine']}"
    if run.get("machines_before"):
        text += f" (earlier invocations: {'; '.join(run['machines_before'])})"
    return text + "."


def _budget_table(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "strategy": table["strategy"],
            "cycle": table["cycle"],
            "seeds": table["seeds"],
            "frames": table["frames"].map("{:.0f}".format),
            "boxes": table["boxes"].map("{:.0f}".format),
            "mAP50-95 [95 % CI]": [
                f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if not np.isnan(lo) else f"{m:.3f}"
                for m, lo, hi in zip(table["map50_95"], table["ci_low"], table["ci_high"], strict=True)
            ],
        }
    )


def comparison_table(results: pd.DataFrame) -> pd.DataFrame:
    """The report's main table: AUCs, the paired verdict and the label savings per strategy."""
    comp = comparison(results)
    shown = pd.DataFrame(
        {
            "strategy": comp["strategy"],
            "seeds": comp["seeds"],
            "AUC (boxes)": comp["auc_boxes"],
            "AUC (frames)": comp["auc_frames"],
        }
    )
    if "verdict" in comp:
        base = comp["strategy"] == BASELINE
        shown["final mAP − random"] = comp["final_minus_random"].map("{:+.3f}".format).mask(base, "")
        shown["p"] = comp["p_value"].map("{:.3f}".format).mask(base, "")
        shown["verdict"] = comp["verdict"].mask(base, "(baseline)")
        for x in ("boxes", "frames"):
            cols = comp[[f"{x}_saving", f"{x}_saving_low", f"{x}_saving_high"]].to_numpy(float)
            saved = pd.Series([fmt_saving(*row) for row in cols], index=comp.index)
            shown[f"{x} saved [95 % CI]"] = saved.mask(base, "")
    return shown


def write_report(
    results: pd.DataFrame, cfg: Any, out: Path, names: tuple[str, ...] | None = None, run: dict[str, Any] | None = None
) -> None:
    """results.csv, summary.csv (per budget), report.md and the plots in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    names = names or tuple(c.removeprefix("selected.") for c in results if c.startswith("selected.")) or ()
    table = per_budget(results)
    table.to_csv(out / "summary.csv", index=False)
    plot_curves(table, out)
    text_objects: list[str] = []
    if "selected_frames" in results and results["selected_frames"].notna().any():
        if names:
            plot_selections(results, names, out)
        per_frame = results.dropna(subset=["selected_frames"]).groupby("strategy", sort=False)
        objects = (per_frame["selected_boxes"].sum() / per_frame["selected_frames"].sum()).rename(
            "boxes_per_selected_frame"
        )
        if "close_pairs" in results:
            window = (getattr(cfg, "extra", None) or {}).get("close_window", 5)
            close = per_frame["close_pairs"].mean().rename(f"pairs_within_{window}_frames_per_cycle")
            objects = pd.concat([objects, close], axis=1)
        text_objects = [
            "## Objects per selected frame (and, for video, selected frames close to each other)",
            "",
            markdown_table(objects.reset_index()),
            "",
            "![selections](selections.png)",
            "",
        ]
    name = getattr(cfg, "name", None) or out.name
    dataset = getattr(cfg, "dataset", None) or ""
    text = [
        f"# Benchmark `{name}`: {dataset}",
        "",
        settings_line(cfg),
        "",
        run_line(run or {}, results),
        "",
        f"## Against `{BASELINE}`, paired by seed",
        "",
        "AUC: area under the mAP50-95 learning curve of each seed (trapezoid over boxes, or frames, "
        "divided by that seed's range), mean over seeds. Verdict: paired two-sided t-test over seeds on the "
        "final-cycle mAP50-95 difference to random, at 5 %. Saved: 1 − (boxes, or frames, a strategy's mean "
        "curve needs to reach random's final mAP50-95) / (random's final amount), interpolated linearly "
        "between cycles; 95 % percentile bootstrap over seeds (the same seeds drawn for both arms, "
        '2,000 draws, generator seed 0). "not reached": the curve stays below random\'s final mAP.',
        "",
        markdown_table(comparison_table(results)),
        "",
        "## mAP50-95 at each budget (mean over seeds, 95 % t interval)",
        "",
        markdown_table(_budget_table(table)),
        "",
        *text_objects,
        "![mAP vs boxes](map_vs_boxes.png) ![mAP vs frames](map_vs_frames.png)",
        "",
        f"Redraw: `alod benchmark --report-only {_shown_path(out)}`",
        "",
    ]
    (out / "report.md").write_text("\n".join(text))


def log_to_mlflow(results: pd.DataFrame, cfg: Any, params: dict[str, Any], report: Path) -> str:
    """A parent run per benchmark, a child run per (strategy, seed) with one metric step per cycle.
    Rerunning replaces the previous runs of the same benchmark (results.csv is the source of truth)."""
    import mlflow
    from mlflow import MlflowClient

    from core.tracking import ensure_reachable, tracking_uri

    uri = tracking_uri(params)
    ensure_reachable(uri)
    mlflow.set_tracking_uri(uri)
    name = f"benchmark-{cfg.dataset}"
    experiment = mlflow.get_experiment_by_name(name)
    client = MlflowClient()
    if experiment is None:
        artifacts = None
        if uri.startswith("sqlite:///"):
            artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts)
    else:
        experiment_id = experiment.experiment_id
    for old in client.search_runs([experiment_id], filter_string=f"tags.`alod.benchmark` = '{cfg.name}'"):
        client.delete_run(old.info.run_id)
    tags = {"alod.benchmark": cfg.name}
    parent = client.create_run(experiment_id, run_name=cfg.name, tags=tags)
    for key in ("dataset", "seeds", "cycles", "initial_frames", "budget", "epochs", "imgsz", "warm_start"):
        client.log_param(parent.info.run_id, key, str(getattr(cfg, key)))
    for (strategy, seed), rows in results.groupby(["strategy", "seed"], sort=False):
        child_tags = {**tags, "mlflow.parentRunId": parent.info.run_id, "strategy": strategy}
        child = client.create_run(experiment_id, run_name=f"{strategy}-seed{seed}", tags=child_tags)
        client.log_param(child.info.run_id, "strategy", strategy)
        client.log_param(child.info.run_id, "seed", int(seed))
        for row in rows.itertuples():
            for metric in ("map50", "map50_95", "frames", "boxes", *BOX_COST_METRICS):
                value = getattr(row, metric, None)
                if value is not None and pd.notna(value):
                    client.log_metric(child.info.run_id, metric, float(value), step=int(row.cycle))
        client.set_terminated(child.info.run_id)
    client.log_artifacts(parent.info.run_id, str(report), artifact_path="report")
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id
