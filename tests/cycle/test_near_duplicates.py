"""The select stage counts picks of one video that are near-duplicates: what the temporal rule prevents."""

from __future__ import annotations

import numpy as np

from pipelines.stages.select import CLOSE_WINDOW, near_duplicate_picks
from strategies.testing import make_pool


def _video_pool():
    # video a: frames 0, 2, 9; video b: frame 1; one still image
    return make_pool([[], [], [], [], []], videos=["a", "a", "a", "b", ""], frame_index=[0, 2, 9, 1, 0])


def test_two_picks_of_one_video_two_frames_apart_are_one_close_pair_within_dt1_3():
    assert near_duplicate_picks(_video_pool(), np.array([0, 1, 2, 3, 4]), dt1=3) == {
        "close_window": 3,
        "close_pairs": 1,
    }


def test_without_dt1_the_window_is_the_default_and_a_still_never_pairs():
    picks = np.array([0, 2, 4])  # a/0 and a/9: 9 frames apart
    assert near_duplicate_picks(_video_pool(), picks, dt1=0) == {"close_window": CLOSE_WINDOW, "close_pairs": 0}
    assert near_duplicate_picks(_video_pool(), np.array([0, 1]), dt1=0)["close_pairs"] == 1


def test_a_pool_of_still_images_reports_no_window():
    stills = make_pool([[], []], videos=["", ""], frame_index=[0, 0])
    assert near_duplicate_picks(stills, np.array([0, 1]), dt1=0) == {"close_window": 0, "close_pairs": 0}
