"""mAP gain per labeled object and selected class counts against random, on constructed result rows."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.benchmark.object_diversity import class_counts_vs_random, gain_per_object, markdown


def rows(strategy: str, seed: int, maps: list[float], boxes: list[int], selected: list[tuple[int, int]]):
    return [
        {
            "strategy": strategy,
            "seed": seed,
            "cycle": c,
            "map50_95": m,
            "boxes": b,
            "selected.car": s[0],
            "selected.bike": s[1],
        }
        for c, (m, b, s) in enumerate(zip(maps, boxes, [*selected, (None, None)], strict=True))
    ]


RESULTS = pd.DataFrame(
    [
        *rows("random", 0, [0.10, 0.20, 0.30], [100, 150, 200], [(45, 5), (45, 5)]),
        *rows("random", 1, [0.10, 0.16, 0.22], [100, 160, 220], [(54, 6), (54, 6)]),
        *rows("diverse", 0, [0.10, 0.25, 0.40], [100, 150, 200], [(25, 25), (25, 25)]),
    ]
)


def test_gain_per_object_by_hand():
    table = gain_per_object(RESULTS).set_index("strategy")
    # random: seed 0 (0.30 - 0.10) / 100 = 0.002, seed 1 (0.22 - 0.10) / 120 = 0.001; diverse 0.30 / 100
    assert table.loc["random", "gain_per_object"] == pytest.approx(0.0015)
    assert table.loc["random", "seeds"] == 2
    assert table.loc["diverse", "gain_per_object"] == pytest.approx(0.003)


def test_selected_classes_against_random_selection_by_hand():
    table = class_counts_vs_random(RESULTS, {"car": 900, "bike": 100}).set_index(["strategy", "class"])
    # diverse: 50 cars and 50 bikes of 100 boxes; random drawing would give 90 and 10
    assert table.loc[("diverse", "bike"), ["selected", "random_expected", "ratio"]].tolist() == pytest.approx(
        [50, 10, 5]
    )
    assert table.loc[("random", "car"), "selected"] == pytest.approx((90 + 108) / 2)
    assert table.loc[("random", "car"), "ratio"] == pytest.approx(1.0)
    assert "| strategy | class |" in markdown(table.reset_index())


def test_paper_tables_hold_the_miss_rate_and_the_diversity_views(tmp_path):
    from pipelines.benchmark.paper_tables import miss_rate_table, write_paper_tables

    results = RESULTS.assign(miss_rate=[0.9, 0.8, 0.7, 0.9, 0.85, 0.8, 0.9, 0.6, 0.5], selected_frames=5)
    table = miss_rate_table(results).set_index(["strategy", "cycle"])
    assert table.loc[("random", 2), "miss_rate"] == pytest.approx(0.75)
    assert miss_rate_table(RESULTS).empty  # no miss rate in the rows: no table
    text = write_paper_tables(results, {"car": 900, "bike": 100}, tmp_path).read_text()
    assert "Miss rate at 1 false positive(s) per image" in text and "gain per labeled object" in text
    assert "against random selection" in text
