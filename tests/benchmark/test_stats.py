"""The benchmark's statistics on constructed learning curves whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as student_t

from pipelines.benchmark.stats import (
    NO_DIFFERENCE,
    comparison,
    fmt_saving,
    normalized_auc,
    paired_test,
    per_budget,
    saving,
    savings_with_interval,
    t_interval,
)

BUDGETS = np.arange(100, 1001, 100)  # boxes (and frames / 10) after each cycle


def _rows(strategy: str, seed: int, slope: float) -> list[dict]:
    """A linear learning curve mAP = boxes * slope, one row per cycle."""
    return [
        {"seed": seed, "strategy": strategy, "cycle": c, "boxes": b, "frames": b / 10, "map50_95": b * slope}
        for c, b in enumerate(BUDGETS.astype(float))
    ]


def _results(strategy_denominators: list[float], seeds: int | None = None) -> pd.DataFrame:
    """random: mAP = boxes / 1000 on every seed; the strategy: boxes / d for seed i's d."""
    rows = []
    for seed, d in enumerate(strategy_denominators):
        rows += _rows("random", seed, 1 / 1000) + _rows("smart", seed, 1 / d)
    return pd.DataFrame(rows)


def test_a_curve_that_reaches_randoms_final_map_with_30_percent_fewer_boxes_saves_30_percent():
    x = BUDGETS.astype(float)
    assert saving(x, x / 1000, x, x / 700) == pytest.approx(0.30)
    assert saving(x, x / 1000, x, x / 1000) == pytest.approx(0.0)
    assert saving(x, x / 1000, x, x / 2000) == -math.inf  # never reaches 1.0 within the budgets
    assert math.isnan(saving(x, np.full(len(x), 0.5), x, x / 700))  # a flat baseline defines nothing


def test_identical_seeds_give_the_point_as_the_whole_interval_in_boxes_and_frames():
    results = _results([700] * 5)
    for x in ("boxes", "frames"):
        assert savings_with_interval(results, "smart", x) == pytest.approx((0.30, 0.30, 0.30))


def test_the_bootstrap_interval_lies_between_the_best_and_worst_seed_and_holds_the_mean_curve_saving():
    results = _results([800, 700, 600, 700, 800])  # seeds saving 20, 30, 40, 30, 20 %
    point, low, high = savings_with_interval(results, "smart", "boxes")
    # the mean curve is boxes * mean(1/d): it reaches 1.0 at 1 / mean(1/d) boxes
    assert point == pytest.approx(1 - 1 / np.mean([1 / 800, 1 / 700, 1 / 600, 1 / 700, 1 / 800]) / 1000)
    assert 0.20 <= low < point < high <= 0.40
    assert savings_with_interval(results, "smart", "boxes") == (point, low, high)  # fixed generator


def test_normalized_auc_is_the_mean_height_of_the_curve():
    x = BUDGETS.astype(float)
    assert normalized_auc(x, x / 1000) == pytest.approx((0.1 + 1.0) / 2)
    assert normalized_auc(x, np.full(len(x), 0.4)) == pytest.approx(0.4)
    assert normalized_auc(np.array([5.0]), np.array([0.3])) == 0.3


def test_t_interval_is_mean_plus_minus_t_times_standard_error():
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    half = student_t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert math.isnan(t_interval([1.0])[1])


def test_paired_test_and_verdicts():
    assert paired_test(np.array([0.05, 0.05, 0.05])) < 1e-9
    assert paired_test(np.zeros(4)) == 1.0
    assert paired_test(np.array([0.1, -0.1, 0.1, -0.1])) == pytest.approx(1.0)
    better = comparison(_results([700] * 5)).set_index("strategy")
    assert better.loc["smart", "verdict"] == "better" and better.loc["smart", "seeds"] == 5
    worse = comparison(_results([2000] * 5)).set_index("strategy")
    assert worse.loc["smart", "verdict"] == "worse"
    assert worse.loc["smart", "boxes_saving"] == -math.inf
    noisy = pd.DataFrame(_results([700] * 4))
    last = noisy["cycle"] == noisy["cycle"].max()
    # final mAPs of the strategy: 1.0 +- 0.5 around random's 1.0 on alternate seeds: no difference
    noisy.loc[last & (noisy["strategy"] == "smart"), "map50_95"] = [1.5, 0.5, 1.5, 0.5]
    assert comparison(noisy).set_index("strategy").loc["smart", "verdict"] == NO_DIFFERENCE


def test_per_budget_reports_each_cycle_with_a_t_interval_over_seeds():
    table = per_budget(_results([800, 700, 600])).set_index(["strategy", "cycle"])
    row = table.loc[("smart", 9)]
    finals = [1000 / 800, 1000 / 700, 1000 / 600]
    mean, low, high = t_interval(finals)
    assert row["seeds"] == 3 and row["boxes"] == 1000
    assert (row["map50_95"], row["ci_low"], row["ci_high"]) == pytest.approx((mean, low, high))
    assert table.loc[("random", 9), "ci_low"] == table.loc[("random", 9), "ci_high"] == pytest.approx(1.0)


def test_savings_text():
    assert fmt_saving(0.3, 0.2, 0.4) == "+30 % [+20 %, +40 %]"
    assert fmt_saving(0.1, -math.inf, 0.3) == "+10 % [not reached, +30 %]"
    assert fmt_saving(math.nan, math.nan, math.nan) == "n/a"
    assert fmt_saving(-math.inf, -math.inf, -math.inf) == "not reached"
