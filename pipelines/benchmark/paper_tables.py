"""Per-paper tables written beside the benchmark report (`paper_tables.md` in the report folder).

- miss rate at N false positives per image per strategy and cycle (pedestrian-video paper), when the
  result rows carry ``miss_rate`` (`pipelines.benchmark.miss_rate`);
- mAP gain per labeled object and selected class counts against random selection (object-diversity
  paper, `pipelines.benchmark.object_diversity`).

Kept apart from `pipelines.benchmark.report`, which owns the report's statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipelines.benchmark.object_diversity import class_counts_vs_random, gain_per_object, markdown


def miss_rate_table(results: pd.DataFrame) -> pd.DataFrame:
    """strategy, cycle, frames, map50_95, miss_rate (means over seeds), miss_rate_std; empty without it."""
    if "miss_rate" not in results or results["miss_rate"].isna().all():
        return pd.DataFrame()
    columns = {c: (c, "mean") for c in ("frames", "boxes", "map50_95") if c in results}
    table = results.groupby(["strategy", "cycle"], sort=False).agg(
        **columns, miss_rate=("miss_rate", "mean"), miss_rate_std=("miss_rate", "std")
    )
    return table.reset_index().fillna({"miss_rate_std": 0.0})


def write_paper_tables(
    results: pd.DataFrame, pool_boxes_per_class: Mapping[str, int], out: Path, fppi: float = 1.0
) -> Path:
    """Write ``out / "paper_tables.md"`` and return its path."""
    text = ["# Tables of the papers' own metrics", ""]
    misses = miss_rate_table(results)
    if not misses.empty:
        text += [
            f"## Miss rate at {fppi:g} false positive(s) per image (mean over seeds; lower is better)",
            "",
            markdown(misses),
            "",
        ]
    if "selected_frames" in results or any(c.startswith("selected.") for c in results):
        text += [
            "## mAP50-95 gain per labeled object (last cycle against cycle 0)",
            "",
            markdown(gain_per_object(results)),
            "",
        ]
        try:
            counts = class_counts_vs_random(results, pool_boxes_per_class)
            text += ["## Selected boxes per class against random selection (pool shares)", "", markdown(counts), ""]
        except ValueError as exc:
            text += [f"(class counts not available: {exc})", ""]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "paper_tables.md"
    path.write_text("\n".join(text))
    return path
