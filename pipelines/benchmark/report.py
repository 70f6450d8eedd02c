"""The benchmark's report: a table (CSV + Markdown), plots, label savings, and MLflow parent/child runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("alod.benchmark")

BASELINE = "random"
BOX_COST_METRICS = ("boxes_accepted", "boxes_corrected", "boxes_rejected", "boxes_noisy")


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over seeds of each strategy at each cycle."""
    grouped = results.groupby(["strategy", "cycle"], sort=False)
    table = grouped.agg(
        seeds=("seed", "nunique"), frames=("frames", "mean"), boxes=("boxes", "mean"),
        map50=("map50", "mean"), map50_95=("map50_95", "mean"), map50_95_std=("map50_95", "std"),
    ).reset_index()  # fmt: skip
    table["map50_95_std"] = table["map50_95_std"].fillna(0.0)
    return table


def amount_to_reach(curve_x: np.ndarray, curve_y: np.ndarray, target: float) -> float | None:
    """Smallest x where the piecewise-linear curve first reaches ``target`` (None if it never does)."""
    for i in range(len(curve_x)):
        if curve_y[i] >= target:
            if i == 0:
                return float(curve_x[0])
            x0, x1, y0, y1 = curve_x[i - 1], curve_x[i], curve_y[i - 1], curve_y[i]
            return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))
    return None


def label_savings(table: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Fraction of random's boxes (and frames) each strategy needs to reach random's final mAP50-95.

    Empty when there is no baseline, or when the baseline's mAP did not rise over the cycles: then every
    curve "reaches" the target at its first point and the fractions would only measure the initial set.
    """
    if baseline not in set(table["strategy"]):
        return pd.DataFrame()
    base = table[table["strategy"] == baseline].sort_values("cycle")
    if base["map50_95"].iloc[-1] <= base["map50_95"].iloc[0]:
        return pd.DataFrame()
    target, base_boxes, base_frames = base["map50_95"].iloc[-1], base["boxes"].iloc[-1], base["frames"].iloc[-1]
    rows = []
    for strategy, curve in table.groupby("strategy", sort=False):
        curve = curve.sort_values("cycle")
        y = curve["map50_95"].to_numpy()
        boxes = amount_to_reach(curve["boxes"].to_numpy(), y, target)
        frames = amount_to_reach(curve["frames"].to_numpy(), y, target)
        rows.append({
            "strategy": strategy, "final_map50_95": y[-1],
            "boxes_fraction": None if boxes is None else boxes / base_boxes,
            "frames_fraction": None if frames is None else frames / base_frames,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _no_savings_reason(table: pd.DataFrame) -> str:
    if BASELINE not in set(table["strategy"]):
        return f"(no `{BASELINE}` baseline in this run)"
    return (
        f"Not defined here: `{BASELINE}`'s mAP50-95 did not rise from the first to the last cycle, so every "
        "strategy \"reaches\" its final mAP with the initial set alone."
    )


def paired_vs_baseline(results: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """mAP50-95 minus random's on the same seed (same initial set), at the final cycle and averaged over
    cycles 1..K. A difference counts as real when a paired two-sided t-test over seeds rejects "no
    difference" at 5% (|mean| > t(0.975, n-1) standard errors: 4.3 SE with 3 seeds)."""
    from scipy.stats import t as student_t

    if baseline not in set(results["strategy"]):
        return pd.DataFrame()
    later = results[results["cycle"] > 0]
    base = later[later["strategy"] == baseline].set_index(["seed", "cycle"])["map50_95"]
    last = int(later["cycle"].max())
    rows = []
    for strategy, group in later.groupby("strategy", sort=False):
        if strategy == baseline:
            continue
        diff = (group.set_index(["seed", "cycle"])["map50_95"] - base).dropna()
        final = diff.xs(last, level="cycle")
        mean_over_cycles = diff.groupby(level="seed").mean()
        n = len(final)
        se = final.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        real = n > 1 and abs(final.mean()) > student_t.ppf(0.975, n - 1) * se
        verdict = ("better" if final.mean() > 0 else "worse") if real else "within noise"
        rows.append({
            "strategy": strategy, "final_minus_random": f"{final.mean():+.3f} ± {final.std(ddof=1):.3f}",
            "seeds_better": f"{int((final > 0).sum())}/{n}",
            "mean_over_cycles_minus_random": f"{mean_over_cycles.mean():+.3f} ± {mean_over_cycles.std(ddof=1):.3f}",
            "verdict_at_final_cycle": verdict,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _markdown(df: pd.DataFrame, floats: str = "{:.3f}") -> str:
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
    import matplotlib.pyplot as plt

    paths = []
    for x, label in (("boxes", "boxes labeled"), ("frames", "frames labeled")):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for strategy, curve in table.groupby("strategy", sort=False):
            curve = curve.sort_values("cycle")
            style = {"color": "black", "linestyle": "--"} if strategy == BASELINE else {}
            ax.plot(curve[x], curve["map50_95"], marker="o", label=strategy, **style)
            band = {"color": "black"} if style else {}
            low, high = curve["map50_95"] - curve["map50_95_std"], curve["map50_95"] + curve["map50_95_std"]
            ax.fill_between(curve[x], low, high, alpha=0.12, **band)
        ax.set(xlabel=f"{label} (mean over seeds)", ylabel="mAP50-95 on the test split",
               title=f"mAP50-95 vs {label} (band: ±1 std over seeds)")  # fmt: skip
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


def write_report(results: pd.DataFrame, cfg: Any, out: Path, names: tuple[str, ...]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    table = summarize(results)
    table.to_csv(out / "summary.csv", index=False)
    savings = label_savings(table)
    plot_curves(table, out)
    plot_selections(results, names, out)
    shown = table.assign(
        map50_95=[f"{m:.3f} ± {s:.3f}" for m, s in zip(table["map50_95"], table["map50_95_std"], strict=True)]
    ).drop(columns=["map50_95_std"])
    per_frame = results.dropna(subset=["selected_frames"]).groupby("strategy", sort=False)
    objects = (per_frame["selected_boxes"].sum() / per_frame["selected_frames"].sum()).rename(
        "boxes_per_selected_frame"
    )
    if "close_pairs" in results:
        window = getattr(cfg, "extra", {}).get("close_window", 5)
        close = per_frame["close_pairs"].mean().rename(f"pairs_within_{window}_frames_per_cycle")
        objects = pd.concat([objects, close], axis=1)
    text = [
        f"# Benchmark `{cfg.name}`: {cfg.dataset}", "",
        f"Seeds {cfg.seeds}, {cfg.cycles} cycles, initial random set of {cfg.initial_frames} frames, "
        f"budget per cycle {cfg.budget}, {cfg.epochs} epochs at imgsz {cfg.imgsz}, warm start: {cfg.warm_start}.", "",
        "## mAP50-95 per cycle (mean ± std over seeds)", "", _markdown(shown), "",
        f"## Against `{BASELINE}` on the same seeds (paired)", "",
        "Difference in mAP50-95 to random with the same seed (mean ± std over seeds). The verdict is a paired "
        "two-sided t-test at 5% over seeds (with 3 seeds: |mean| > 4.3 standard errors).", "",
        _markdown(paired_vs_baseline(results)), "",
        f"## Label savings against `{BASELINE}`", "",
        "Fraction of random's boxes (frames) a strategy needs to reach random's final mAP50-95, "
        "interpolated on the mean curve; below 1 is a saving.", "",
        _markdown(savings) if not savings.empty else _no_savings_reason(table), "",
        "## Objects per selected frame (and, for video, selected frames close to each other)", "",
        _markdown(objects.reset_index()), "",
        "![mAP vs boxes](map_vs_boxes.png) ![mAP vs frames](map_vs_frames.png)", "",
        "![selections](selections.png)", "",
    ]  # fmt: skip
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
