"""The benchmark report: laid out from results.csv alone, so `alod benchmark --report-only DIR` redraws it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.benchmark.stats import amount_to_reach
from pipelines.cli import main


def test_amount_to_reach_interpolates_the_first_crossing():
    x, y = np.array([10.0, 20.0, 30.0]), np.array([0.1, 0.3, 0.5])
    assert amount_to_reach(x, y, 0.2) == pytest.approx(15.0)
    assert amount_to_reach(x, y, 0.05) == 10.0
    assert amount_to_reach(x, y, 0.6) is None


def test_close_pairs_counts_pairs_of_the_same_video_within_the_window():
    from strategies.temporal import close_pairs

    videos = np.array(["a", "a", "a", "b", "b", ""])
    frames = np.array([1, 4, 20, 4, 5, 1])
    # a: (1, 4) within 5; (4, 20) and (1, 20) not; b: (4, 5); stills never pair
    assert close_pairs(videos, frames, 5) == 2
    assert close_pairs(videos, frames, 0) == 0


def _results() -> pd.DataFrame:
    """random: mAP = boxes / 1000; smart: boxes / 700 (30 % fewer boxes), 5 seeds, 4 cycles of 10 frames."""
    rows = []
    for seed in range(5):
        for strategy, d in (("random", 1000), ("smart", 700)):
            for cycle in range(4):
                boxes = 100.0 * (cycle + 1)
                row = {"seed": seed, "strategy": strategy, "cycle": cycle, "frames": 10 * (cycle + 1), "boxes": boxes}
                row |= {"map50": 0.0, "map50_95": boxes / d + 0.001 * seed, "train_seconds": 2.0}
                rows.append(row | {"selected_frames": 10.0, "selected_boxes": 100.0, "selected.hat": 100.0})
    return pd.DataFrame(rows)


def test_report_only_rebuilds_the_report_from_results_csv_with_savings_verdicts_and_run_info(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    _results().to_csv(folder / "results.csv", index=False)
    (folder / "run.json").write_text(json.dumps({"wall_seconds": 90.0, "invocations": 2, "machine": "box X"}))
    assert main(["benchmark", "--report-only", str(folder)]) == 0
    report = (folder / "report.md").read_text()
    # smart reaches random's final 0.402 at 100 * 0.402 * 7 = 281.4 boxes of random's 400: 29.65 % saved
    assert "| smart | 5 |" in report and "| better |" in report and "+30 % [+30 %, +30 %]" in report
    assert "Wall time 1.5 min over 2 invocation(s) on box X." in report
    summary = pd.read_csv(folder / "summary.csv")
    assert list(summary["seeds"].unique()) == [5] and len(summary) == 8
    for name in ("map_vs_boxes.png", "map_vs_frames.png", "selections.png"):
        assert (folder / name).stat().st_size > 0


def test_the_docs_page_tables_are_regenerated_between_their_markers_and_nothing_else_changes(tmp_path):
    from pipelines.benchmark.headline import regenerate

    (tmp_path / "benchmarks" / "demo").mkdir(parents=True)
    _results().to_csv(tmp_path / "benchmarks" / "demo" / "results.csv", index=False)
    page = tmp_path / "page.md"
    prose = "Hand-written text stays.\n"
    blocks = "<!-- headline demo absent -->\nold\n<!-- /headline -->\n<!-- table demo -->\nold\n<!-- /table -->\n"
    page.write_text(prose + blocks)
    text = regenerate(page)
    assert text.startswith(prose) and "old" not in text
    assert "| [demo](benchmarks/demo/report.md) | 5 | 2 | **smart**" in text and "+30 % [+30 %, +30 %]" in text
    assert "| absent |  |  | not run yet |" in text
    assert "| smart | 5 |" in text and "| better |" in text  # the per-benchmark comparison table
