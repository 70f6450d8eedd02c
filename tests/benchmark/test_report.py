"""Label savings: how much of random's labeling a strategy needs to reach random's final mAP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.benchmark.report import amount_to_reach, label_savings, summarize


def test_amount_to_reach_interpolates_the_first_crossing():
    x, y = np.array([10.0, 20.0, 30.0]), np.array([0.1, 0.3, 0.5])
    assert amount_to_reach(x, y, 0.2) == pytest.approx(15.0)
    assert amount_to_reach(x, y, 0.05) == 10.0
    assert amount_to_reach(x, y, 0.6) is None


def test_a_strategy_that_reaches_randoms_final_map_with_half_the_boxes_saves_half():
    rows = [("random", c, 10 * (c + 1), 100 * (c + 1), 0.1 * (c + 1)) for c in range(3)]
    rows += [("smart", c, 10 * (c + 1), 50 * (c + 1), 0.15 * (c + 1)) for c in range(3)]
    results = pd.DataFrame(rows, columns=["strategy", "cycle", "frames", "boxes", "map50_95"])
    results = results.assign(seed=0, map50=results["map50_95"])
    savings = label_savings(summarize(results)).set_index("strategy")
    # random ends at 0.3 with 300 boxes / 30 frames; smart reaches 0.3 at cycle 1: 100 boxes, 20 frames
    assert savings.loc["random", "boxes_fraction"] == pytest.approx(1.0)
    assert savings.loc["smart", "boxes_fraction"] == pytest.approx(100 / 300)
    assert savings.loc["smart", "frames_fraction"] == pytest.approx(20 / 30)


def test_no_savings_are_claimed_when_randoms_map_falls_over_the_cycles():
    rows = [("random", c, 10 * (c + 1), 100 * (c + 1), 0.3 - 0.01 * c) for c in range(3)]
    rows += [("smart", c, 10 * (c + 1), 50 * (c + 1), 0.3 - 0.005 * c) for c in range(3)]
    results = pd.DataFrame(rows, columns=["strategy", "cycle", "frames", "boxes", "map50_95"])
    results = results.assign(seed=0, map50=results["map50_95"])
    assert label_savings(summarize(results)).empty


def test_spread_over_seeds_is_the_standard_deviation():
    results = pd.DataFrame({"strategy": "random", "cycle": 0, "seed": [0, 1], "frames": 10, "boxes": 100,
                            "map50": 0.5, "map50_95": [0.2, 0.4]})  # fmt: skip
    table = summarize(results)
    assert table["map50_95"].iloc[0] == pytest.approx(0.3)
    assert table["map50_95_std"].iloc[0] == pytest.approx(np.std([0.2, 0.4], ddof=1))


def test_close_pairs_counts_pairs_of_the_same_video_within_the_window():
    from strategies.temporal import close_pairs

    videos = np.array(["a", "a", "a", "b", "b", ""])
    frames = np.array([1, 4, 20, 4, 5, 1])
    # a: (1, 4) within 5; (4, 20) and (1, 20) not; b: (4, 5); stills never pair
    assert close_pairs(videos, frames, 5) == 2
    assert close_pairs(videos, frames, 0) == 0


def test_paired_comparison_calls_a_consistent_large_gap_better_and_a_noisy_one_within_noise():
    from pipelines.benchmark.report import paired_vs_baseline

    rows = []
    for seed, base in enumerate((0.30, 0.40, 0.50)):
        rows += [("random", seed, 0, base - 0.1), ("random", seed, 1, base)]
        rows += [("steady", seed, 0, base - 0.1), ("steady", seed, 1, base + 0.05 + 0.001 * seed)]
        rows += [("noisy", seed, 0, base - 0.1), ("noisy", seed, 1, base + (0.08, -0.06, 0.01)[seed])]
    results = pd.DataFrame(rows, columns=["strategy", "seed", "cycle", "map50_95"])
    table = paired_vs_baseline(results).set_index("strategy")
    assert table.loc["steady", "verdict_at_final_cycle"] == "better"
    assert table.loc["steady", "seeds_better"] == "3/3"
    assert table.loc["noisy", "verdict_at_final_cycle"] == "within noise"
