"""Statistics of a benchmark: intervals over seeds, areas under learning curves, label savings, verdicts.

Pure functions over the harness's results (one row per seed, strategy and cycle with the columns
``seed``, ``strategy``, ``cycle``, ``frames``, ``boxes``, ``map50_95``). Every arm of a seed starts
from the same random initial set, so comparisons with the baseline are paired by seed.

- *Label savings*: the target is the baseline's final mAP50-95 (on its mean curve). A strategy's
  amount is where its mean curve first reaches the target (linear interpolation between cycles);
  the saving is ``1 - amount / baseline's final amount`` (0.30 = 30 % fewer boxes). A strategy
  that never reaches the target saves ``-inf`` ("not reached"). The interval is a bootstrap over
  seeds: seeds drawn with replacement, the same draw for the strategy and the baseline, a fixed
  random generator so that a rerun prints the same numbers.
- *Verdict*: a paired two-sided t-test over seeds on the final-cycle mAP50-95 difference to the
  baseline at 5 %: "better", "worse" or "no difference shown".
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

BASELINE = "random"
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
NO_DIFFERENCE = "no difference shown"


def t_interval(values: np.ndarray | list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided Student-t confidence interval of the mean (NaN bounds with < 2 values)."""
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=float)
    mean = float(v.mean()) if len(v) else math.nan
    if len(v) < 2:
        return mean, math.nan, math.nan
    half = float(student_t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


def normalized_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid area under y(x) divided by the x-range: the curve's mean height (y[0] for one point)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or x[-1] == x[0]:
        return float(y[0]) if len(y) else math.nan
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
    return area / float(x[-1] - x[0])


def amount_to_reach(curve_x: np.ndarray, curve_y: np.ndarray, target: float) -> float | None:
    """Smallest x where the piecewise-linear curve first reaches ``target`` (None if it never does)."""
    for i in range(len(curve_x)):
        if curve_y[i] >= target:
            if i == 0:
                return float(curve_x[0])
            x0, x1, y0, y1 = curve_x[i - 1], curve_x[i], curve_y[i - 1], curve_y[i]
            return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))
    return None


def saving(base_x: np.ndarray, base_y: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """``1 - amount / base_x[-1]`` for the amount of x the curve (x, y) needs to reach ``base_y[-1]``.

    NaN when the baseline did not rise (every curve would "reach" its final mAP with the initial
    set alone); ``-inf`` when the curve never reaches it.
    """
    if base_y[-1] <= base_y[0]:
        return math.nan
    amount = amount_to_reach(x, y, float(base_y[-1]))
    return -math.inf if amount is None else 1.0 - amount / float(base_x[-1])


def curves(results: pd.DataFrame, strategy: str, x: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seeds, X, Y) of one strategy: X and Y are seeds x cycles arrays of ``x`` and mAP50-95."""
    rows = results[results["strategy"] == strategy]
    xs = rows.pivot_table(index="seed", columns="cycle", values=x).dropna()
    ys = rows.pivot_table(index="seed", columns="cycle", values="map50_95").loc[xs.index]
    return xs.index.to_numpy(), xs.to_numpy(float), ys.to_numpy(float)


def _paired(results: pd.DataFrame, strategy: str, x: str, baseline: str):
    seeds, sx, sy = curves(results, strategy, x)
    bseeds, bx, by = curves(results, baseline, x)
    common = np.intersect1d(seeds, bseeds)
    pick = lambda s, arr: arr[np.searchsorted(s, common)]  # noqa: E731
    return common, pick(seeds, sx), pick(seeds, sy), pick(bseeds, bx), pick(bseeds, by)


def savings_with_interval(
    results: pd.DataFrame,
    strategy: str,
    x: str,
    baseline: str = BASELINE,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    rng_seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """Saving on the mean curves over seeds, and its percentile bootstrap interval over seeds."""
    seeds, sx, sy, bx, by = _paired(results, strategy, x, baseline)
    if len(seeds) == 0:
        return math.nan, math.nan, math.nan
    point = saving(bx.mean(0), by.mean(0), sx.mean(0), sy.mean(0))
    if len(seeds) < 2:
        return point, math.nan, math.nan
    rng = np.random.default_rng(rng_seed)
    draws = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
    boot = np.array([saving(bx[d].mean(0), by[d].mean(0), sx[d].mean(0), sy[d].mean(0)) for d in draws])
    boot = boot[~np.isnan(boot)]
    if len(boot) == 0:
        return point, math.nan, math.nan
    # "lower"/"higher" pick observed values (no arithmetic on -inf) and widen rather than narrow
    low = np.percentile(boot, 50 - level * 50, method="lower")
    high = np.percentile(boot, 50 + level * 50, method="higher")
    return point, float(low), float(high)


def paired_test(diff: np.ndarray) -> float:
    """Two-sided p-value of a paired t-test that the mean of the per-seed differences is 0."""
    from scipy.stats import t as student_t

    d = np.asarray(diff, dtype=float)
    if len(d) < 2:
        return math.nan
    sd = d.std(ddof=1)
    if sd == 0:
        return 1.0 if d.mean() == 0 else 0.0
    t = d.mean() / (sd / math.sqrt(len(d)))
    return float(2 * student_t.sf(abs(t), len(d) - 1))


def verdict(mean_diff: float, p_value: float, alpha: float = ALPHA) -> str:
    if not (p_value < alpha):  # NaN (too few seeds) shows nothing either
        return NO_DIFFERENCE
    return "better" if mean_diff > 0 else "worse"


def per_budget(results: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per strategy and cycle: seeds, mean frames and boxes, mAP50-95 mean with its t interval."""
    rows = []
    for (strategy, cycle), group in results.groupby(["strategy", "cycle"], sort=False):
        mean, low, high = t_interval(group["map50_95"].to_numpy(), level)
        rows.append(
            {
                "strategy": strategy,
                "cycle": int(cycle),
                "seeds": group["seed"].nunique(),
                "frames": group["frames"].mean(),
                "boxes": group["boxes"].mean(),
                "map50_95": mean,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def comparison(results: pd.DataFrame, baseline: str = BASELINE, level: float = 0.95) -> pd.DataFrame:
    """One row per strategy: seeds, normalized AUCs (mean over seeds), the paired final-cycle test
    against the baseline, and the label savings in boxes and frames with bootstrap intervals."""
    has_base = baseline in set(results["strategy"])
    last = int(results["cycle"].max())
    rows = []
    for strategy in results["strategy"].unique():
        row: dict[str, object] = {"strategy": strategy}
        for x in ("boxes", "frames"):
            seeds, xs, ys = curves(results, strategy, x)
            row["seeds"] = len(seeds)
            row[f"auc_{x}"] = float(np.mean([normalized_auc(a, b) for a, b in zip(xs, ys, strict=True)]))
        if has_base and strategy != baseline:
            final = results[results["cycle"] == last].pivot_table(index="seed", columns="strategy", values="map50_95")
            diff = (final[strategy] - final[baseline]).dropna().to_numpy() if strategy in final else np.array([])
            mean_diff = float(diff.mean()) if len(diff) else math.nan
            p = paired_test(diff)
            row.update({"final_minus_random": mean_diff, "p_value": p, "verdict": verdict(mean_diff, p)})
            for x in ("boxes", "frames"):
                point, low, high = savings_with_interval(results, strategy, x, baseline, level)
                row.update({f"{x}_saving": point, f"{x}_saving_low": low, f"{x}_saving_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def fmt_saving(point: float, low: float, high: float) -> str:
    """'30 % [20, 40]' style text; "not reached" for -inf; "n/a" when undefined."""

    def pct(v: float) -> str:
        if math.isnan(v):
            return "n/a"
        return "not reached" if math.isinf(v) else f"{100 * v:+.0f} %"

    if math.isnan(point):
        return "n/a"
    if math.isnan(low) or (math.isinf(point) and math.isinf(high)):
        return pct(point)
    return f"{pct(point)} [{pct(low)}, {pct(high)}]"
