"""Tests of ppdl_utils.images.metrics: known values, statistical expectations, input validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ppdl_utils.errors import ImageFormatError
from ppdl_utils.images.metrics import (
    NPCR_EXPECTED,
    UACI_EXPECTED,
    adjacent_correlation,
    npcr_uaci,
    psnr,
    shannon_entropy,
    ssim,
)

RNG_SEED = 12345


def uniform_image(seed: int, shape=(256, 256)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def gradient(shape=(64, 64)) -> np.ndarray:
    i, j = np.indices(shape)
    return (i + 2 * j).astype(np.uint8)  # max 63 + 126 = 189


# ----------------------------------------------------------------------------- entropy


def test_entropy_constant_is_zero():
    assert shannon_entropy(np.full((10, 12), 77, dtype=np.uint8)) == 0.0


def test_entropy_perfectly_uniform_is_eight():
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert shannon_entropy(img) == pytest.approx(8.0, abs=1e-12)
    # every value exactly 4 times, shuffled: still exactly uniform
    img4 = np.random.default_rng(0).permutation(np.repeat(np.arange(256), 4)).reshape(32, 32).astype(np.uint8)
    assert shannon_entropy(img4) == pytest.approx(8.0, abs=1e-12)


def test_entropy_two_equal_halves_is_one_bit_and_levels_argument():
    img = np.zeros((8, 8), dtype=np.uint8)
    img[:, 4:] = 200
    assert shannon_entropy(img) == pytest.approx(1.0)
    binary = (img > 0).astype(np.uint8)
    assert shannon_entropy(binary, levels=2) == pytest.approx(1.0)
    with pytest.raises(ImageFormatError, match="0..1"):
        shannon_entropy(img, levels=2)


def test_entropy_of_random_image_close_to_eight():
    # 65536 samples over 256 bins: the plug-in estimator is biased low by ~255/(2 N ln 2) ~ 0.003 bits
    h = shannon_entropy(uniform_image(RNG_SEED))
    assert 7.99 < h < 8.0


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_entropy_bounds_property(img):
    h = shannon_entropy(img)
    distinct = len(np.unique(img))
    assert -1e-12 <= h <= math.log2(distinct) + 1e-9


# ----------------------------------------------------------------------------- correlation


@pytest.mark.parametrize("direction", ["horizontal", "vertical", "diagonal"])
def test_correlation_of_linear_gradient_is_one(direction):
    assert adjacent_correlation(gradient(), direction) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("direction", ["horizontal", "vertical", "diagonal"])
def test_correlation_of_noise_is_near_zero(direction):
    img = uniform_image(RNG_SEED)
    # ~65000 pairs: the std of a null Pearson correlation is 1/sqrt(65000) ~ 0.004; 0.02 is 5 sigma
    assert abs(adjacent_correlation(img, direction)) < 0.02
    # 3000 sampled pairs: std ~ 0.018; 0.1 is > 5 sigma
    assert abs(adjacent_correlation(img, direction, n_pairs=3000, seed=1)) < 0.1


def test_correlation_sampling_is_reproducible_and_matches_numpy():
    img = uniform_image(7, (40, 40))
    a = adjacent_correlation(img, "vertical", n_pairs=500, seed=3)
    b = adjacent_correlation(img, "vertical", n_pairs=500, seed=3)
    c = adjacent_correlation(img, "vertical", n_pairs=500, seed=4)
    assert a == b and a != c
    x = img[:-1, :].ravel().astype(float)
    y = img[1:, :].ravel().astype(float)
    assert adjacent_correlation(img, "vertical") == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)


def test_correlation_constant_is_nan_and_bad_direction_raises():
    assert math.isnan(adjacent_correlation(np.full((5, 5), 3, dtype=np.uint8)))
    with pytest.raises(ValueError, match="direction"):
        adjacent_correlation(gradient(), "antidiagonal")  # type: ignore[arg-type]
    with pytest.raises(ImageFormatError, match="no vertical"):
        adjacent_correlation(np.arange(5, dtype=np.uint8)[None, :], "vertical")


# ----------------------------------------------------------------------------- NPCR / UACI


def test_npcr_uaci_constants_are_exact_expectations():
    a, b = np.meshgrid(np.arange(256), np.arange(256))  # every pair of values once
    assert NPCR_EXPECTED == pytest.approx(100.0 * np.mean(a != b), abs=1e-12)
    assert UACI_EXPECTED == pytest.approx(100.0 * np.mean(np.abs(a - b)) / 255.0, abs=1e-12)
    assert NPCR_EXPECTED == pytest.approx(99.609, abs=1e-3)
    assert UACI_EXPECTED == pytest.approx(33.464, abs=1e-3)


def test_npcr_uaci_of_independent_random_images():
    x, y = uniform_image(1), uniform_image(2)
    npcr, uaci = npcr_uaci(x, y)
    n = x.size
    # NPCR is the mean of n Bernoulli(255/256) indicators
    p = 255.0 / 256.0
    sd_npcr = 100.0 * math.sqrt(p * (1 - p) / n)  # ~0.024 %
    # UACI is the mean of n copies of |a-b|/255 with a, b independent uniform on 0..255
    e_abs = (256**2 - 1) / (3 * 256)
    e_sq = 2 * (256**2 - 1) / 12
    sd_uaci = 100.0 * math.sqrt((e_sq - e_abs**2) / n) / 255.0  # ~0.092 %
    assert abs(npcr - NPCR_EXPECTED) < 5 * sd_npcr
    assert abs(uaci - UACI_EXPECTED) < 5 * sd_uaci


def test_npcr_uaci_identical_and_extreme():
    x = uniform_image(3, (20, 30))
    assert npcr_uaci(x, x) == (0.0, 0.0)
    z = np.zeros((4, 4), dtype=np.uint8)
    f = np.full((4, 4), 255, dtype=np.uint8)
    assert npcr_uaci(z, f) == (100.0, 100.0)
    one = z.copy()
    one[0, 0] = 51
    npcr, uaci = npcr_uaci(z, one)
    assert npcr == pytest.approx(100 / 16) and uaci == pytest.approx(100 * 51 / 255 / 16)


# ----------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_identical_is_inf_and_known_value():
    x = uniform_image(4, (32, 32))
    assert psnr(x, x) == math.inf
    y = x.astype(np.int16)
    y = np.where(y < 255, y + 1, y - 1).astype(np.uint8)  # |diff| = 1 everywhere: MSE = 1
    assert psnr(x, y) == pytest.approx(20 * math.log10(255), abs=1e-9)
    from skimage.metrics import peak_signal_noise_ratio

    w = uniform_image(5, (32, 32))
    assert psnr(x, w) == pytest.approx(peak_signal_noise_ratio(x, w, data_range=255), abs=1e-9)
    assert psnr(x, w, data_range=1) < psnr(x, w)


def test_ssim_identical_is_one_and_noise_is_lower():
    x = gradient()
    assert ssim(x, x) == pytest.approx(1.0)
    noisy = np.clip(x.astype(int) + np.random.default_rng(0).integers(-40, 41, x.shape), 0, 255).astype(np.uint8)
    assert ssim(x, noisy) < 0.9
    assert abs(ssim(uniform_image(8, (64, 64)), uniform_image(9, (64, 64)))) < 0.1


# ----------------------------------------------------------------------------- validation

_ALL = [
    ("entropy", lambda a, b: shannon_entropy(a)),
    ("correlation", lambda a, b: adjacent_correlation(a)),
    ("npcr", npcr_uaci),
    ("psnr", psnr),
    ("ssim", ssim),
]
_GOOD = np.zeros((8, 8), dtype=np.uint8)


@pytest.mark.parametrize("name,fn", _ALL)
@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((8, 8), dtype=np.float64), "integer dtype"),
        (np.zeros((8, 8), dtype=bool), "integer dtype"),
        (np.zeros((2, 8, 8), dtype=np.uint8), "2-D"),
        (np.zeros(64, dtype=np.uint8), "2-D"),
        (np.full((8, 8), 300, dtype=np.int16), r"\[300, 300\]"),
        (np.full((8, 8), -1, dtype=np.int32), "0..255"),
        (np.full((8, 8), 5, dtype=object), "object"),
        (np.zeros((0, 8), dtype=np.uint8), "empty"),
    ],
)
def test_invalid_inputs_raise_image_format_error(name, fn, bad, match):
    with pytest.raises(ImageFormatError, match=match):
        fn(bad, _GOOD)
    if name in ("npcr", "psnr", "ssim"):
        with pytest.raises(ImageFormatError, match=match):
            fn(_GOOD, bad)


@pytest.mark.parametrize("fn", [npcr_uaci, psnr, ssim])
def test_shape_mismatch_raises(fn):
    with pytest.raises(ImageFormatError, match="differ in shape"):
        fn(np.zeros((8, 8), np.uint8), np.zeros((8, 9), np.uint8))


def test_ssim_needs_7x7_and_wider_int_dtypes_are_accepted():
    with pytest.raises(ImageFormatError, match="7x7"):
        ssim(np.zeros((6, 20), np.uint8), np.zeros((6, 20), np.uint8))
    x = gradient((16, 16))
    assert ssim(x.astype(np.int64), x.astype(np.uint16)) == pytest.approx(1.0)
    assert shannon_entropy(x.astype(np.int32)) == shannon_entropy(x)
