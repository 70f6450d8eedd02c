"""score_subset: each cycle the strategies rank a random part of the unlabeled pool, plus the labeled frames."""

from __future__ import annotations

import pandas as pd

from pipelines.benchmark.harness import score_subset

POOL = pd.DataFrame({"frame_id": [f"f{i:03d}" for i in range(100)]})


def test_the_subset_keeps_the_labeled_frames_and_draws_the_size_from_the_unlabeled_ones():
    labeled = {"f000", "f001", "f050"}
    subset = score_subset(POOL, 20, seed=3, labeled=labeled)
    ids = set(subset["frame_id"])
    assert labeled <= ids and len(ids - labeled) == 20 and len(subset) == 23


def test_the_draw_is_fixed_by_seed_and_labeled_set_and_changes_with_either():
    one = score_subset(POOL, 20, seed=3, labeled={"f000"})["frame_id"].tolist()
    assert score_subset(POOL, 20, seed=3, labeled={"f000"})["frame_id"].tolist() == one
    assert score_subset(POOL, 20, seed=4, labeled={"f000"})["frame_id"].tolist() != one
    assert score_subset(POOL, 20, seed=3, labeled={"f000", "f002"})["frame_id"].tolist() != one


def test_no_size_or_a_size_beyond_the_unlabeled_pool_scores_everything():
    assert score_subset(POOL, None, seed=0, labeled={"f000"}).equals(POOL)
    assert score_subset(POOL, 99, seed=0, labeled={"f000"}).equals(POOL)
