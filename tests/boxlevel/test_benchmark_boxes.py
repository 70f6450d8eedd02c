"""The box-level arm of the benchmark in miniature (benchmarks/configs/smoke_boxes.yaml): 1 seed, 2 cycles."""

from __future__ import annotations

import pytest

from core.settings import REPO_ROOT, load_params
from pipelines.benchmark.harness import Benchmark, BenchmarkConfig

CONFIG = REPO_ROOT / "benchmarks/configs/smoke_boxes.yaml"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from pipelines.benchmark.report import write_report

    out = tmp_path_factory.mktemp("boxbench")
    bench = Benchmark(BenchmarkConfig.load(CONFIG, {"out_dir": str(out / "runs")}), load_params())
    results = bench.run()
    write_report(results, bench.cfg, out / "report", bench.manifest.labels.names)
    return out, bench, results


@pytest.mark.slow
def test_the_box_arm_starts_from_the_image_arms_shared_first_model(smoke):
    _, _, results = smoke
    first = results[results["cycle"] == 0]
    assert sorted(first["strategy"]) == ["box_level", "random"]
    for column in ("frames", "boxes", "map50_95"):
        assert first[column].nunique() == 1


@pytest.mark.slow
def test_boxes_labeled_grow_by_the_queries_and_never_by_noisy_boxes(smoke):
    _, _, results = smoke
    box = results[results["strategy"] == "box_level"].sort_values("cycle").reset_index(drop=True)
    assert box["cycle"].tolist() == [0, 1, 2]
    queried = box["selected_boxes"].fillna(0).cumsum().shift(fill_value=0)
    assert box["boxes"].tolist() == (box["boxes"][0] + queried).tolist()
    assert (box[["boxes_accepted", "boxes_corrected", "boxes_rejected"]].sum(axis=1) == queried).all()
    assert box["selected_boxes"][:2].tolist() == [6, 6]  # the budget in boxes, one per query
    assert (box["selected_frames"][:2] <= 2).all()  # budget.frames caps the frames asked about
    assert box["boxes_noisy"][0] == 0


@pytest.mark.slow
def test_box_rows_have_the_image_level_columns_plus_the_cost_columns(smoke):
    _, _, results = smoke
    image = results[results["strategy"] == "random"].dropna(axis=1, how="all")
    box = results[results["strategy"] == "box_level"].dropna(axis=1, how="all")
    assert set(image.columns) <= set(box.columns)
    assert {"boxes_accepted", "boxes_corrected", "boxes_rejected", "boxes_noisy"} <= set(box.columns)


@pytest.mark.slow
def test_partial_frames_train_with_their_other_boxes_as_dampened_labels(smoke):
    out, _, results = smoke
    steps = sorted((out / "runs/smoke_boxes/steps").glob("box-*"))
    assert len(steps) == 2  # cycles 1 and 2 of the box arm; cycle 0 is the shared step
    box = results[results["strategy"] == "box_level"].sort_values("cycle")
    assert (box["boxes_noisy"].to_numpy()[1:] > 0).all()
    weight = f" {load_params()['box_level']['noisy_weight']:.4f}"
    files = [f for s in steps for f in (s / "data/labels/train").glob("*.txt")]
    assert any(line.endswith(weight) for f in files for line in f.read_text().splitlines())


@pytest.mark.slow
def test_the_report_compares_the_arms_and_a_rerun_trains_nothing(smoke):
    out, bench, _ = smoke
    report = (out / "report/report.md").read_text()
    assert "| box_level |" in report and "| random |" in report
    steps = out / "runs/smoke_boxes/steps"
    before = {p.name: (p / "eval.json").stat().st_mtime_ns for p in steps.iterdir()}
    again = Benchmark(bench.cfg, bench.params).run()
    assert {p.name: (p / "eval.json").stat().st_mtime_ns for p in steps.iterdir()} == before
    assert len(again) == 6
