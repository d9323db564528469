"""Quality metrics for cipher images (8-bit grayscale renderings).

The usual yardsticks of the image-encryption literature, vectorized with numpy:

* :func:`shannon_entropy` -- bits per pixel; 8.0 for a perfectly uniform 8-bit image.
* :func:`adjacent_correlation` -- Pearson correlation of adjacent pixel pairs;
  close to 1 for natural images, close to 0 for a good cipher image.
* :func:`npcr_uaci` -- number of pixels change rate / unified average changing
  intensity between two images (Wu, Noonan & Agaian 2011); for two independent
  uniform random 8-bit images the expected values are NPCR = 255/256 = 99.609 %
  and UACI = (256**2 - 1) / (3 * 256 * 255) = 33.464 %.
* :func:`psnr` and :func:`ssim` -- fidelity of a recovered image to a reference
  (used to score attacks).

Every function validates its inputs: 2-D, integer dtype, values within 0..255 and,
for two-image metrics, the same shape; anything else raises
:class:`~ppdl_utils.errors.ImageFormatError` naming the problem.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ppdl_utils.errors import ImageFormatError

__all__ = [
    "shannon_entropy",
    "adjacent_correlation",
    "npcr_uaci",
    "psnr",
    "ssim",
    "NPCR_EXPECTED",
    "UACI_EXPECTED",
]

#: Expected NPCR (%) between two independent uniform random 8-bit images.
NPCR_EXPECTED: float = 100.0 * 255.0 / 256.0
#: Expected UACI (%) between two independent uniform random 8-bit images.
UACI_EXPECTED: float = 100.0 * (256.0**2 - 1.0) / (3.0 * 256.0 * 255.0)

Direction = Literal["horizontal", "vertical", "diagonal"]


def _check_image(img: ArrayLike, name: str = "image", max_value: int = 255) -> NDArray[np.int64]:
    """Return ``img`` as an int64 array after checking it is a 2-D 8-bit-range integer image."""
    arr = np.asarray(img)
    if arr.dtype == object:
        raise ImageFormatError(
            f"{name} has dtype object (ciphertext integers?); render it to 8 bits first, e.g. c mod 256"
        )
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ImageFormatError(f"{name} must have an integer dtype (e.g. uint8), got {arr.dtype}")
    if arr.ndim != 2:
        raise ImageFormatError(f"{name} must be a 2-D grayscale array, got shape {arr.shape}")
    if arr.size == 0:
        raise ImageFormatError(f"{name} is empty (shape {arr.shape})")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > max_value:
        raise ImageFormatError(f"{name} has pixel values in [{lo}, {hi}], expected within 0..{max_value}")
    return arr.astype(np.int64, copy=False)


def _check_pair(a: ArrayLike, b: ArrayLike, names: tuple[str, str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    x = _check_image(a, names[0])
    y = _check_image(b, names[1])
    if x.shape != y.shape:
        raise ImageFormatError(f"{names[0]} and {names[1]} differ in shape: {x.shape} vs {y.shape}")
    return x, y


def shannon_entropy(img: ArrayLike, levels: int = 256) -> float:
    """Shannon entropy of the gray-level histogram, in bits (0 for a constant image, 8 for uniform)."""
    if not isinstance(levels, (int, np.integer)) or levels < 2:
        raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
    x = _check_image(img, max_value=int(levels) - 1)
    counts = np.bincount(x.ravel(), minlength=int(levels)).astype(np.float64)
    p = counts[counts > 0] / x.size
    return float(max(0.0, -np.sum(p * np.log2(p))))


def _adjacent_pairs(x: NDArray[np.int64], direction: str) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    if direction == "horizontal":
        return x[:, :-1], x[:, 1:]
    if direction == "vertical":
        return x[:-1, :], x[1:, :]
    if direction == "diagonal":
        return x[:-1, :-1], x[1:, 1:]
    raise ValueError(f"direction must be 'horizontal', 'vertical' or 'diagonal', got {direction!r}")


def adjacent_correlation(
    img: ArrayLike,
    direction: Direction = "horizontal",
    n_pairs: int | None = None,
    seed: int = 0,
) -> float:
    """Pearson correlation of adjacent pixel pairs in ``direction``.

    All pairs are used by default; ``n_pairs`` draws that many pairs at random
    (without replacement, reproducible with ``seed``), as many papers do.
    Returns NaN when one side of the pairs is constant (correlation undefined).
    """
    x = _check_image(img)
    a, b = _adjacent_pairs(x, direction)
    a = a.ravel().astype(np.float64)
    b = b.ravel().astype(np.float64)
    if a.size == 0:
        raise ImageFormatError(f"image of shape {x.shape} has no {direction} adjacent pixel pairs")
    if n_pairs is not None:
        if not isinstance(n_pairs, (int, np.integer)) or n_pairs < 2:
            raise ValueError(f"n_pairs must be an integer >= 2 or None, got {n_pairs!r}")
        if n_pairs < a.size:
            idx = np.random.default_rng(seed).choice(a.size, size=int(n_pairs), replace=False)
            a, b = a[idx], b[idx]
    da = a - a.mean()
    db = b - b.mean()
    denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if denom == 0.0:
        return float("nan")
    return float(np.dot(da, db) / denom)


def npcr_uaci(img1: ArrayLike, img2: ArrayLike) -> tuple[float, float]:
    """(NPCR %, UACI %) between two same-shape 8-bit images.

    NPCR = 100 * mean(img1 != img2); UACI = 100 * mean(|img1 - img2| / 255).
    Ideal values for independent random images: :data:`NPCR_EXPECTED`, :data:`UACI_EXPECTED`.
    """
    x, y = _check_pair(img1, img2, ("img1", "img2"))
    npcr = 100.0 * float(np.mean(x != y))
    uaci = 100.0 * float(np.mean(np.abs(x - y))) / 255.0
    return npcr, uaci


def psnr(ref: ArrayLike, test: ArrayLike, data_range: float = 255) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` when the images are identical."""
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}")
    x, y = _check_pair(ref, test, ("ref", "test"))
    mse = float(np.mean((x - y).astype(np.float64) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * math.log10(float(data_range) ** 2 / mse))


def ssim(ref: ArrayLike, test: ArrayLike) -> float:
    """Structural similarity (skimage, 7x7 window, data_range=255); 1.0 for identical images."""
    from skimage.metrics import structural_similarity

    x, y = _check_pair(ref, test, ("ref", "test"))
    if min(x.shape) < 7:
        raise ImageFormatError(f"ssim needs images of at least 7x7 pixels (7x7 window), got shape {x.shape}")
    return float(structural_similarity(x.astype(np.float64), y.astype(np.float64), data_range=255))
