"""strategies/spatial.py on constructed maps, and the spatial_divergence strategy that reads them."""

from __future__ import annotations

import numpy as np
import pytest

from strategies.spatial import (
    binary_entropy,
    divergence_map,
    neighbourhood_mean,
    region_max_score,
    stride_divergence,
)
from strategies.testing import make_pool, pick


def test_constant_predictions_have_zero_divergence():
    probs = np.full((3, 8, 8), 0.37)
    assert np.allclose(stride_divergence(probs, radius=1), 0.0, atol=1e-9)
    assert np.allclose(divergence_map([probs, np.full((3, 4, 4), 0.8)]), 0.0, atol=1e-6)


def test_a_checkerboard_of_disagreement_is_positive_everywhere():
    yy, xx = np.mgrid[:6, :6]
    probs = np.where((yy + xx) % 2 == 0, 0.95, 0.05)[None]  # one class, neighbours disagree
    s = stride_divergence(probs, radius=1)
    assert (s > 0.3).all()
    # Centre of a 3x3 window: 5 of one value, 4 of the other.
    mean = (5 * 0.95 + 4 * 0.05) / 9
    expected = binary_entropy(np.array(mean)) - binary_entropy(np.array(0.95))
    assert s[2, 2] == pytest.approx(float(expected), rel=1e-6)


def test_divergence_is_local_to_the_disagreement():
    probs = np.full((1, 9, 9), 0.1)
    probs[0, 4, 4] = 0.9  # one unstable location
    s = stride_divergence(probs, radius=1)
    assert s[4, 4] > 0 and s[3, 3] > 0
    assert s[0, 0] == pytest.approx(0.0, abs=1e-9) and s[8, 8] == pytest.approx(0.0, abs=1e-9)


def test_neighbourhood_mean_cuts_windows_at_the_border():
    x = np.arange(9, dtype=float).reshape(3, 3)
    m = neighbourhood_mean(x, 1)
    assert m[1, 1] == pytest.approx(4.0)
    assert m[0, 0] == pytest.approx((0 + 1 + 3 + 4) / 4)
    assert np.allclose(neighbourhood_mean(np.full((4, 5), 7.0), 2), 7.0)


def test_coarse_strides_are_repeated_up_to_the_finest_grid_and_summed():
    fine = np.full((1, 4, 4), 0.5)
    coarse = np.full((1, 2, 2), 0.1)
    coarse[0, 0, 0] = 0.9
    total = divergence_map([fine, coarse], radius=1)
    assert total.shape == (4, 4)
    s = stride_divergence(coarse, 1)
    assert total[0, 0] == pytest.approx(s[0, 0], rel=1e-5)
    assert total[3, 3] == pytest.approx(s[1, 1], rel=1e-5)
    with pytest.raises(ValueError, match="does not divide"):
        divergence_map([np.full((1, 4, 4), 0.5), np.full((1, 3, 3), 0.5)])


def test_region_maxima_by_hand():
    m = np.array(
        [
            [1, 2, 0, 0],
            [0, 3, 0, 5],
            [0, 0, 0, 0],
            [4, 0, 0, 1],
        ],
        float,
    )
    assert region_max_score(m, 2) == pytest.approx((3 + 5 + 4 + 1) / 4)
    assert region_max_score(m, 1) == pytest.approx(m.mean())  # the mean-of-all ablation
    assert region_max_score(m, 4) == pytest.approx(5.0)
    # Border blocks are smaller: 3x3 regions on 4x4 give blocks of 9, 3, 3 and 1 locations.
    assert region_max_score(m, 3) == pytest.approx((3 + 5 + 4 + 1) / 4)
    assert region_max_score(np.zeros((0, 0)), 2) == 0.0
    with pytest.raises(ValueError):
        region_max_score(m, 0)


def test_strategy_ranks_by_region_score_and_region_1_is_the_mean():
    peaked = np.zeros((4, 4))
    peaked[0, 0] = 8.0  # one sharp peak: region max 8/4, mean 0.5
    spread = np.full((4, 4), 1.0)  # uniform: region max 1, mean 1
    pool = make_pool([[], [], []], divergence_maps=[np.zeros((4, 4)), peaked, spread])
    assert pick("spatial_divergence", pool, 1, region=2).indices.tolist() == [1]
    assert pick("spatial_divergence", pool, 1, region=1).indices.tolist() == [2]
    sel = pick("spatial_divergence", pool, 3, region=2)
    assert sel.indices.tolist() == [1, 2, 0] and sel.values.tolist() == [2.0, 1.0, 0.0]


def test_eq4_sums_the_divergence_over_the_k_classes():
    # class 0: a checkerboard 0.95 / 0.05; class 1: a checkerboard 0.8 / 0.2 in the opposite phase
    yy, xx = np.mgrid[:6, :6]
    even = (yy + xx) % 2 == 0
    probs = np.stack([np.where(even, 0.95, 0.05), np.where(even, 0.2, 0.8)])
    s = stride_divergence(probs, radius=1)
    # by hand at the centre (2, 2), an "even" cell: its 3x3 window holds 5 even and 4 odd cells
    h = lambda p: float(binary_entropy(np.array(p)))  # noqa: E731
    by_hand = (h((5 * 0.95 + 4 * 0.05) / 9) - (5 * h(0.95) + 4 * h(0.05)) / 9) + (
        h((5 * 0.2 + 4 * 0.8) / 9) - (5 * h(0.2) + 4 * h(0.8)) / 9
    )
    assert s[2, 2] == pytest.approx(by_hand, rel=1e-6)
    # Eq. 4 is the sum of the per-class maps
    np.testing.assert_allclose(s, stride_divergence(probs[:1], 1) + stride_divergence(probs[1:], 1), rtol=1e-9)


def test_region_maxima_are_the_block_maxima_with_smaller_border_blocks():
    from strategies.spatial import region_maxima

    m = np.arange(25, dtype=float).reshape(5, 5)
    assert region_maxima(m, 2).tolist() == [[6, 8, 9], [16, 18, 19], [21, 23, 24]]
    assert region_max_score(m, 2) == pytest.approx(region_maxima(m, 2).mean())
