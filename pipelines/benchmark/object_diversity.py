"""The object-diversity paper's two views of a benchmark: mAP gain per labeled object, and the class
counts a strategy selected against what random selection would have given.

- Gain per object: (mAP50-95 at the last cycle - at cycle 0) / (boxes labeled at the last cycle -
  at cycle 0), per seed, then mean and std over seeds.
- Class counts vs random: a strategy's selected boxes per class (``selected.<class>`` columns,
  summed over cycles, mean over seeds) beside the expected count if the same number of boxes had
  been drawn at random from the pool, i.e. in proportion to the pool's class shares; the ratio
  above 1 means the strategy over-selects the class.

Both return tables; `markdown` renders them for a report (kept apart from `report.py`'s statistics).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def gain_per_object(results: pd.DataFrame) -> pd.DataFrame:
    """strategy, seeds, gain_per_object (mean), gain_per_object_std from the benchmark's result rows."""
    rows = []
    for (strategy, seed), run in results.groupby(["strategy", "seed"], sort=False):
        run = run.sort_values("cycle")
        first, last = run.iloc[0], run.iloc[-1]
        added = float(last["boxes"] - first["boxes"])
        gain = (float(last["map50_95"]) - float(first["map50_95"])) / added if added > 0 else np.nan
        rows.append({"strategy": strategy, "seed": seed, "gain": gain})
    per_seed = pd.DataFrame(rows)
    out = per_seed.groupby("strategy", sort=False)["gain"].agg(["count", "mean", "std"]).reset_index()
    out.columns = ["strategy", "seeds", "gain_per_object", "gain_per_object_std"]
    out["gain_per_object_std"] = out["gain_per_object_std"].fillna(0.0)
    return out


def class_counts_vs_random(results: pd.DataFrame, pool_boxes_per_class: Mapping[str, int]) -> pd.DataFrame:
    """strategy, class, selected (mean over seeds), random_expected, ratio."""
    total_pool = sum(pool_boxes_per_class.values())
    if total_pool == 0:
        raise ValueError("the pool has no boxes: class shares are undefined")
    classes = list(pool_boxes_per_class)
    columns = [f"selected.{c}" for c in classes]
    missing = [c for c in columns if c not in results]
    if missing:
        raise ValueError(f"result rows lack {missing}")
    per_seed = results.groupby(["strategy", "seed"], sort=False)[columns].sum(min_count=1).fillna(0.0)
    means = per_seed.groupby(level="strategy", sort=False).mean()
    rows = []
    for strategy, counts in means.iterrows():
        total = float(counts.sum())
        for c in classes:
            expected = total * pool_boxes_per_class[c] / total_pool
            selected = float(counts[f"selected.{c}"])
            rows.append(
                {
                    "strategy": strategy,
                    "class": c,
                    "selected": selected,
                    "random_expected": expected,
                    "ratio": selected / expected if expected > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub table of ``table`` with floats rounded."""
    head = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join(
        "| " + " | ".join(f"{v:.{digits}g}" if isinstance(v, float) else str(v) for v in row) + " |\n"
        for row in table.itertuples(index=False)
    )
    return head + body
