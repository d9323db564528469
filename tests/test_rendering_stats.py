"""What a rendering destroys: merge counts, merge spread and the order of adjacent gray levels."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppdl_utils.errors import ImageFormatError
from ppdl_utils.images.render import rendering_stats

LEVELS = np.arange(256, dtype=np.uint8).reshape(16, 16)


def test_identity_keeps_everything():
    stats = rendering_stats(LEVELS, LEVELS)
    assert stats["distinct_values"] == 256 and stats["merged_levels"] == 0 and stats["merge_spread"] == 0
    assert stats["level_jump"] == pytest.approx(1 / (256 / 3))  # adjacent levels one apart


@given(st.integers(0, 127).map(lambda k: 2 * k + 1))
@settings(max_examples=30)
def test_r_one_merges_nothing_but_moves_adjacent_levels_by_its_multiplier(multiplier):
    # r_one rendered mod 256: c = 1 + n*m, so c mod 256 = 1 + (n mod 256) * m: a bijection for odd n
    rendered = ((1 + multiplier * LEVELS.astype(np.int64)) % 256).astype(np.uint8)
    stats = rendering_stats(LEVELS, rendered)
    assert stats["distinct_values"] == 256 and stats["merged_levels"] == 0 and stats["merge_spread"] == 0
    steps = np.abs(np.diff(rendered.reshape(-1).astype(np.int64)))  # each |a| or 256 - |a| (a wrap)
    assert stats["level_jump"] == pytest.approx(steps.mean() / (256 / 3))


def test_a_random_substitution_scrambles_the_order():
    table = np.random.default_rng(0).permutation(256).astype(np.uint8)
    assert 0.8 < rendering_stats(LEVELS, table[LEVELS])["level_jump"] < 1.2


def test_merged_levels_and_their_spread():
    plain = np.array([[0, 0, 10, 200]], dtype=np.uint8)
    rendered = np.array([[5, 5, 5, 7]], dtype=np.uint8)  # levels 0 and 10 share the value 5
    stats = rendering_stats(plain, rendered)
    assert stats["distinct_values"] == 2 and stats["merged_levels"] == 2
    # mean level of value 5 is (0 + 0 + 10) / 3; level 200 alone
    assert stats["merge_spread"] == pytest.approx((10 / 3 + 10 / 3 + 20 / 3 + 0) / 4)
    # adjacent present levels: 0 -> 10 (jump 0, weight 3), 10 -> 200 (jump 2, weight 2)
    assert stats["level_jump"] == pytest.approx((0 * 3 + 2 * 2) / 5 / (256 / 3))


def test_sizes_must_match():
    with pytest.raises(ImageFormatError, match="differ in size"):
        rendering_stats(LEVELS, LEVELS[:8])
