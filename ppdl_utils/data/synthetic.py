"""Synthetic stand-ins for the real datasets: offline, fast, deterministic by seed.

These are NOT medical data.  They only mimic the rough look of the real images (and the
columns of the real table) so every notebook runs without a download.  Every dataset made
here has ``source == "synthetic"`` and a name starting with ``"SYNTHETIC"``; label results
on it as synthetic.

Images are rendered vectorised in numpy.  Each class draws from its own random stream
(``seed`` and the class), so asking for a subset of the classes gives the same images for
those classes as asking for all of them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ppdl_utils.data.checks import check_int, normalise_class_name
from ppdl_utils.data.dataset import ImageDataset
from ppdl_utils.data.tabular import OSTEOPOROSIS_CATEGORIES, OSTEOPOROSIS_COLUMNS
from ppdl_utils.errors import DataError

__all__ = [
    "CHEST_CLASSES",
    "KNEE_CLASSES",
    "make_chest_xray_like",
    "make_knee_xray_like",
    "make_osteoporosis_tabular",
]

CHEST_CLASSES: tuple[str, ...] = ("COVID", "Lung_Opacity", "Normal", "Viral_Pneumonia")
KNEE_CLASSES: tuple[str, ...] = ("Normal", "Osteopenia", "Osteoporosis")

_CHUNK = 128  # images rendered at once (bounds memory at large sizes)


def _resolve_classes(classes: Sequence[str], known: Sequence[str], param: str = "classes") -> list[int]:
    if isinstance(classes, str):
        classes = [classes]
    classes = list(classes)
    if not classes:
        raise DataError(f"'{param}' must name at least one class")
    lookup = {normalise_class_name(k): i for i, k in enumerate(known)}
    codes = []
    for c in classes:
        if normalise_class_name(c) not in lookup:
            raise DataError(f"'{param}' holds unknown class {c!r}; known classes: {list(known)}")
        codes.append(lookup[normalise_class_name(c)])
    if len(set(codes)) != len(codes):
        raise DataError(f"'{param}' lists a class twice: {classes}")
    return codes


def _counts(n_per_class, n_classes: int) -> list[int]:
    if isinstance(n_per_class, (int, np.integer)) and not isinstance(n_per_class, bool):
        counts = [int(n_per_class)] * n_classes
    else:
        try:
            counts = [int(v) for v in n_per_class]
        except TypeError:
            raise DataError(f"'n_per_class' must be an int or one int per class, got {n_per_class!r}") from None
        if len(counts) != n_classes:
            raise DataError(f"'n_per_class' has {len(counts)} entries for {n_classes} classes")
    if any(c < 1 for c in counts):
        raise DataError(f"'n_per_class' must be >= 1, got {n_per_class!r}")
    return counts


def _u(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """Uniform per-image parameter shaped (n, 1, 1) for broadcasting over pixels."""
    return rng.uniform(lo, hi, n).astype(np.float32)[:, None, None]


def _gauss(x, y, cx, cy, sx, sy, power: float = 2.0):
    r2 = ((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2
    return np.exp(-(r2 ** (power / 2.0)) if power != 2.0 else -r2)


def _sigmoid(t):
    return 0.5 + 0.5 * np.tanh(0.5 * t)


def _soft_ellipse(x, y, cx, cy, ax, ay, edge: float = 0.06, power: float = 2.0):
    r = (np.abs((x - cx) / ax) ** power + np.abs((y - cy) / ay) ** power) ** (1.0 / power)
    return _sigmoid((1.0 - r) / edge)


def _finish(img: np.ndarray, rng: np.random.Generator, noise: tuple[float, float]) -> np.ndarray:
    """Per-image contrast, brightness, gamma and noise, then uint8."""
    n = img.shape[0]
    gain = _u(rng, 0.85, 1.15, n)
    offset = _u(rng, -0.04, 0.04, n)
    gamma = _u(rng, 0.85, 1.15, n)
    sigma = _u(rng, noise[0], noise[1], n)
    img = np.clip(img * gain + offset, 0.0, 1.0) ** gamma
    img = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _grid(size: int):
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, None, :], c[None, :, None]  # x (1,1,S), y (1,S,1)


def _bandpass_noise(rng, n: int, size: int, centre: float, width: float, aspect: float) -> np.ndarray:
    """White noise filtered to a ring of ``centre`` cycles per image (unit std per image).

    ``aspect > 1`` squeezes the ring vertically, which elongates the pattern vertically.
    """
    noise = rng.standard_normal((n, size, size), dtype=np.float32)
    fy = np.fft.fftfreq(size)[:, None] * size
    fx = np.fft.rfftfreq(size)[None, :] * size
    band = np.exp(-(((np.sqrt(fx**2 + (aspect * fy) ** 2) - centre) / width) ** 2))
    out = np.fft.irfft2(np.fft.rfft2(noise) * band, s=(size, size)).astype(np.float32)
    return out / (out.std(axis=(1, 2), keepdims=True) + 1e-6)


# --------------------------------------------------------------------------------------
# chest X-ray-like images
# --------------------------------------------------------------------------------------
# What the class signal must survive.  The deterministic regimes replace every gray level by a
# secret byte (a substitution of the 256 levels): which pixels are equal, and so the shapes of
# the level sets, survive; the order and spacing of the levels do not.  Real radiographs at 64-224
# px are smooth, so large areas share a level and lesions change texture and shape, which is why
# a CNN still learns from them (75-95% on real X-rays).  Here the anatomy is piecewise smooth, the
# pixels are quantized to `_CHEST_STEP` levels without added noise (noise would give every pixel a
# fresh level and turn the substituted image into noise), the per-image intensity jitter is small
# (the same structure keeps the same levels across images), and each class differs by the texture
# and shape of its lung pattern, drawn at several gray levels per image so that no single unlucky
# substitution can hide it.  Anatomy is laid out in fractions of the image; the lesion textures
# are sized in pixels (a few pixels: what a small CNN's first layers see) at any image size.
_CHEST_STEP = 8  # gray-level quantization step: 32 levels, like a smooth low-resolution radiograph
_CHEST_EDGE = 0.012  # softness of organ edges (fraction of the image side)
_PATTERN_AMPLITUDE = (0.12, 0.28)  # range of a lesion's added density (on the 0..1 scale)
_PATTERN_SHARPNESS = 0.08  # width of a lesion's edge in units of its defining field: crisp, few levels


def _gaussian_blur(field: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of a stack ``(N, S, S)`` (FFT, periodic borders: fine for sparse interior spots)."""
    size = field.shape[-1]
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    kernel = np.exp(-2.0 * (np.pi * sigma_px) ** 2 * (fx**2 + fy**2))
    return np.fft.irfft2(np.fft.rfft2(field) * kernel, s=(size, size)).astype(np.float32)


def _thin_lines(rng, n: int, size: int, centre: float, width: float, aspect: float,
                thickness: float = 0.35) -> np.ndarray:
    """Crisp thin curves in [0, 1]: the zero crossings of band-pass noise (``centre`` +- ``width``
    cycles per image; ``aspect > 1`` runs them mostly vertically)."""
    tex = _bandpass_noise(rng, n, size, centre=centre, width=width, aspect=aspect)
    return _sigmoid((thickness - np.abs(tex)) / _PATTERN_SHARPNESS)


def _chest_anatomy(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The shared background: a thorax filling the frame, two dark lung fields (tapering to the
    apex, brighter towards it), crisp rib bands, a segmented spine, heart and clavicles.
    Returns ``(image in [0, 1], geometry)``; the geometry places the class patterns."""
    x, y = _grid(size)
    cx, cy, sc = 0.5 + _u(rng, -0.03, 0.03, n), 0.5 + _u(rng, -0.03, 0.03, n), _u(rng, 0.94, 1.04, n)
    body = _soft_ellipse(x, y, cx, cy + 0.06 * sc, 0.56 * sc, 0.66 * sc, edge=2 * _CHEST_EDGE)
    dx, lung_w, lung_h, lung_y = 0.21 * sc, 0.18 * sc, 0.34 * sc, cy - 0.03
    taper = np.clip(0.85 + 0.25 * (y - lung_y) / lung_h, 0.6, 1.15)
    left = _soft_ellipse(x, y, cx - dx, lung_y, lung_w * taper, lung_h, edge=3 * _CHEST_EDGE, power=2.2)
    right = _soft_ellipse(x, y, cx + dx, lung_y, 0.95 * lung_w * taper, 0.97 * lung_h, edge=3 * _CHEST_EDGE,
                          power=2.2)
    heart = _soft_ellipse(x, y, cx + 0.06 * sc, cy + 0.22 * sc, 0.15 * sc, 0.12 * sc, edge=3 * _CHEST_EDGE)
    lungs = np.clip(left + right - heart, 0.0, 1.0)
    # ribs: crisp bands across the thorax, bending downwards laterally
    rib_y = (y - cy) / sc - ((x - cx) / sc) ** 2
    ribs = _sigmoid((np.sin(2 * np.pi * _u(rng, 7.0, 8.5, n) * rib_y + _u(rng, 0, 2 * np.pi, n)) - 0.55) / 0.04)
    ribs = ribs * _soft_ellipse(x, y, cx, lung_y, 0.46 * sc, 0.42 * sc, edge=0.03)
    spine = _sigmoid((0.04 * sc - np.abs(x - cx)) / 0.006) * (0.85 + 0.15 * (np.sin(2 * np.pi * 12 * y / sc) > 0))
    ax_ = np.abs(x - cx) / sc
    clav_y = cy + sc * (-0.33 - 0.35 * ax_ + 0.35 * ax_**2)
    clav = np.exp(-(((y - clav_y) / (0.016 * sc)) ** 2)) * (ax_ < 0.36) * (ax_ > 0.045)
    apex = np.clip((lung_y - y) / lung_h, -1.0, 1.0)  # +1 at the apex, -1 at the base
    img = (0.04 + _u(rng, 0.42, 0.46, n) * body - _u(rng, 0.24, 0.27, n) * lungs + 0.10 * apex * lungs
           + 0.08 * ribs * body + 0.30 * spine * body + 0.10 * heart + 0.20 * clav)
    geometry = {"x": x, "y": y, "cx": cx, "sc": sc, "lung_y": lung_y, "lung_h": lung_h,
                "left": left, "right": right, "lungs": lungs}
    return img, geometry


def _ground_glass_patches(g: dict, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """COVID: round, flat-topped patches of ground glass in both lungs, more at the periphery; every
    patch at its own density.  Returns the added density."""
    sigma = 2.0 * min(size, 64) / 64.0  # patch radius in pixels (the CNN's scale), smaller below 64 px
    periphery = 0.4 + 0.6 * np.clip(np.abs(g["x"] - g["cx"]) / (0.32 * g["sc"]), 0.0, 1.0)
    # seeds per pixel such that the patches cover the same share of the lungs at every size
    density = _u(rng, 0.014, 0.020, n) * (2.0 / sigma) ** 2 * periphery * (g["lungs"] > 0.5)
    seeds = rng.random((n, size, size)) < density
    weights = np.where(seeds, rng.uniform(*_PATTERN_AMPLITUDE, (n, size, size)), 0.0).astype(np.float32)
    cover = _gaussian_blur(seeds.astype(np.float32), sigma)
    # each patch takes the density of the seed(s) under it: a flat top per patch
    level = np.clip(_gaussian_blur(weights, sigma) / np.maximum(cover, 1e-6), *_PATTERN_AMPLITUDE)
    patches = _sigmoid((cover * 2 * np.pi * sigma**2 - 0.3) / _PATTERN_SHARPNESS)
    return patches * level * _sigmoid((g["lungs"] - 0.5) / 0.1)


def _lobar_consolidation(img: np.ndarray, g: dict, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Lung_Opacity: the lower part of one lung replaced by dense, homogeneous tissue bounded above
    by a fissure and crossed by dark, mostly vertical air bronchograms."""
    lung = np.where((rng.random(n) < 0.5)[:, None, None], g["left"], g["right"])
    top = g["lung_y"] + _u(rng, -0.25, -0.10, n) * g["sc"]
    mask = lung * _sigmoid((g["y"] - top) / 0.01)
    bronchi = _thin_lines(rng, n, size, centre=size / 4.5, width=size / 16.0, aspect=4.0)
    strength = _u(rng, 0.6, 0.8, n) + 0.4 * np.clip(_bandpass_noise(rng, n, size, 2.0, 1.5, 1.0), -1, 1)
    level = _u(rng, 0.36, 0.44, n) + 0.08 * (g["y"] - g["lung_y"]) / g["lung_h"]
    return img * (1 - mask) + (level - 0.28 * strength * bronchi) * mask


def _reticular_pattern(g: dict, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Viral_Pneumonia: a fine interstitial network of thin lines over both lungs, its density
    varying slowly across the lungs.  Returns the added density."""
    lines = _thin_lines(rng, n, size, centre=size / 3.5, width=size / 20.0, aspect=1.0, thickness=0.30)
    strength = _u(rng, 0.6, 0.8, n) + 0.4 * np.clip(_bandpass_noise(rng, n, size, 2.0, 1.5, 1.0), -1, 1)
    return 0.28 * strength * lines * _sigmoid((g["lungs"] - 0.5) / 0.1)


def _quantize(img: np.ndarray, rng: np.random.Generator, step: int = _CHEST_STEP) -> np.ndarray:
    """Small per-image contrast / brightness / gamma jitter, then uint8 on multiples of `step`."""
    n = img.shape[0]
    gain, offset, gamma = _u(rng, 0.98, 1.02, n), _u(rng, -0.005, 0.005, n), _u(rng, 0.98, 1.02, n)
    img = np.clip(img * gain + offset, 0.0, 1.0) ** gamma
    return (np.clip(np.rint(img * (255.0 / step)), 0, 255 // step) * step).astype(np.uint8)


def _render_chest(kind: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    img, geometry = _chest_anatomy(n, size, rng)
    if kind == 0:
        img = img + _ground_glass_patches(geometry, n, size, rng)
    elif kind == 1:
        img = _lobar_consolidation(img, geometry, n, size, rng)
    elif kind == 3:
        img = img + _reticular_pattern(geometry, n, size, rng)
    # kind == 2: Normal, clear lungs
    return _quantize(img.astype(np.float32), rng)


def _generate(render, all_classes: Sequence[str], classes: Sequence[str], n_per_class, size: int, seed: int,
              stream: int, generator: str, title: str) -> ImageDataset:
    """Render each class in chunks from its own seeded stream (so a class's images do not depend on
    which other classes are asked for) and wrap them in an :class:`ImageDataset`."""
    size = check_int(size, "size", minimum=16)
    codes = _resolve_classes(classes, all_classes)
    counts = _counts(n_per_class, len(codes))
    images, labels = [], []
    for label, (code, n) in enumerate(zip(codes, counts)):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), stream, code]))
        for start in range(0, n, _CHUNK):
            images.append(render(code, min(_CHUNK, n - start), size, rng))
        labels.append(np.full(n, label, dtype=np.int64))
    names = [all_classes[c] for c in codes]
    return ImageDataset(
        images=np.concatenate(images),
        labels=np.concatenate(labels),
        class_names=names,
        paths=None,
        source="synthetic",
        name=f"SYNTHETIC {title} ({len(names)} classes, {size}px, seed {seed})",
        report={"generator": generator, "seed": int(seed), "n_per_class": dict(zip(names, counts))},
    )


def make_chest_xray_like(
    n_per_class: int | Sequence[int] = 250,
    size: int = 64,
    seed: int = 0,
    classes: Sequence[str] = CHEST_CLASSES,
) -> ImageDataset:
    """Synthetic grayscale images that look like frontal chest X-rays, whose classes differ in ways
    that survive a deterministic encryption regime, as real lungs do.

    A thorax filling the frame with two dark lung fields crossed by crisp rib bands, a segmented
    spine, heart and clavicles (bone bright, air dark, as on a radiograph), on 32 evenly spaced
    gray levels without per-pixel noise.  Class patterns (inside the lung fields):

    * ``COVID``: round, flat-topped patches of ground glass in both lungs, more at the periphery,
      each patch at its own density;
    * ``Lung_Opacity``: lobar consolidation: the lower part of one lung replaced by dense tissue
      bounded by a fissure and crossed by dark, mostly vertical air bronchograms;
    * ``Normal``: clear lungs;
    * ``Viral_Pneumonia``: a fine interstitial (reticular) network of thin lines over both lungs.

    The classes differ by texture and shape (spots, oriented lines, a fine network, flat areas),
    not only by brightness: a secret substitution of the gray levels (the ``table``, ``fixed_r``
    and ``r_one`` regimes) keeps which pixels are equal and so keeps these patterns, while
    randomized encryption destroys them.  Per image: position / scale jitter, rib spacing and
    phase, organ densities, and a small contrast / brightness / gamma jitter.

    ``classes`` picks (and orders) a subset; names are matched ignoring case, spaces and ``_``
    (``"Viral Pneumonia"`` works).  Images are grouped by class in the order of ``classes``.
    About 1 s for the default 1000 images of 64x64 (``bench/check_synthetic_default.py`` checks
    what a small CNN learns from them in every regime).

    Returns an :class:`ImageDataset` with ``source="synthetic"``, ``paths=None``.
    """
    return _generate(_render_chest, CHEST_CLASSES, classes, n_per_class, size, seed, stream=1,
                     generator="make_chest_xray_like", title="chest-X-ray-like")


# --------------------------------------------------------------------------------------
# knee X-ray-like images
# --------------------------------------------------------------------------------------
#: per class: (strand width, pore threshold: lower = more pores, bone brightness, cortex thickness)
_KNEE_PARAMS = {0: (0.80, 1.6, 0.50, 0.11), 1: (0.55, 0.7, 0.42, 0.08), 2: (0.38, 0.0, 0.34, 0.05)}


def _render_knee(kind: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    x, y = _grid(size)
    cx = 0.5 + _u(rng, -0.04, 0.04, n)
    jy = 0.5 + _u(rng, -0.04, 0.04, n)  # joint line
    sc = _u(rng, 0.92, 1.06, n)
    gap = _u(rng, 0.035, 0.055, n) * sc

    # femur: shaft widening into condyles (superellipse), tibia: plateau narrowing to shaft
    femur_out = _soft_ellipse(x, y, cx, jy - gap / 2 - 0.32 * sc, 0.30 * sc, 0.32 * sc, edge=0.03, power=3.0)
    femur_out = femur_out * (y < jy - gap / 2)
    tibia_out = _soft_ellipse(x, y, cx, jy + gap / 2 + 0.34 * sc, 0.28 * sc, 0.34 * sc, edge=0.03, power=3.5)
    tibia_out = tibia_out * (y > jy + gap / 2)
    bone = femur_out + tibia_out
    width, pore_thr, bright, cortex = _KNEE_PARAMS[kind]
    cortex = cortex * _u(rng, 0.85, 1.15, n)
    femur_in = _soft_ellipse(x, y, cx, jy - gap / 2 - 0.32 * sc, (0.30 - cortex / 2) * sc, (0.32 - cortex / 4) * sc,
                             edge=0.03, power=3.0)
    tibia_in = _soft_ellipse(x, y, cx, jy + gap / 2 + 0.34 * sc, (0.28 - cortex / 2) * sc, (0.34 - cortex / 4) * sc,
                             edge=0.03, power=3.5)
    marrow = femur_in * (y < jy - gap / 2 - cortex * 0.3) + tibia_in * (y > jy + gap / 2 + cortex * 0.3)
    shell = np.clip(bone - marrow, 0.0, 1.0)

    # trabecular texture: the zero-crossing lines of anisotropic band-pass noise form a
    # network of mostly vertical strands; porosity removes strands in patches
    tex = _bandpass_noise(rng, n, size, centre=11.0, width=3.5, aspect=1.8)
    pores = _bandpass_noise(rng, n, size, centre=3.5, width=2.0, aspect=1.0)
    strands = np.exp(-((tex / (width * _u(rng, 0.85, 1.15, n))) ** 2))
    strands = strands * (1.0 - _sigmoid((pores - (pore_thr + _u(rng, -0.2, 0.2, n))) / 0.15))

    bright = bright * _u(rng, 0.93, 1.07, n)
    soft = _soft_ellipse(x, y, cx, 0.5, 0.46 * sc, 0.75, edge=0.05)
    img = 0.05 + 0.17 * soft + marrow * (0.45 * bright + 0.55 * bright * strands) + shell * (bright + 0.25)
    return _finish(img.astype(np.float32), rng, noise=(0.015, 0.03))


def make_knee_xray_like(
    n_per_class: int | Sequence[int] = 200,
    size: int = 64,
    seed: int = 0,
    classes: Sequence[str] = KNEE_CLASSES,
) -> ImageDataset:
    """Synthetic knee radiographs: femur and tibia with a joint space, a bright cortical shell
    and a trabecular bone texture whose density decreases and porosity increases from
    ``Normal`` to ``Osteopenia`` to ``Osteoporosis`` (fewer, thinner strands, darker bone,
    thinner cortex).  Per-image position/scale jitter, contrast, gamma and noise.

    Returns an :class:`ImageDataset` with ``source="synthetic"``, ``paths=None``.
    """
    return _generate(_render_knee, KNEE_CLASSES, classes, n_per_class, size, seed, stream=2,
                     generator="make_knee_xray_like", title="knee-X-ray-like")


# --------------------------------------------------------------------------------------
# osteoporosis table
# --------------------------------------------------------------------------------------
#: P(risk level | no osteoporosis), P(risk level | osteoporosis) for two-valued columns
_RISK = {
    "Gender": (0.45, 0.55),
    "Hormonal Changes": (0.35, 0.65),
    "Family History": (0.40, 0.60),
    "Body Weight": (0.38, 0.62),
    "Calcium Intake": (0.40, 0.60),
    "Vitamin D Intake": (0.40, 0.60),
    "Physical Activity": (0.40, 0.60),
    "Smoking": (0.45, 0.55),
    "Alcohol Consumption": (0.45, 0.55),
    "Medications": (0.38, 0.62),
    "Prior Fractures": (0.35, 0.65),
}
#: probabilities over each multi-valued vocabulary, (negative, positive)
_MULTI = {
    "Race/Ethnicity": ((0.36, 0.32, 0.32), (0.33, 0.32, 0.35)),
    "Medical Conditions": ((0.40, 0.30, 0.30), (0.26, 0.37, 0.37)),
}


def make_osteoporosis_tabular(n_rows: int = 1958, seed: int = 0) -> pd.DataFrame:
    """A synthetic table with the columns and vocabularies of the Kaggle
    "Lifestyle Factors Influencing Osteoporosis" CSV, as read verbatim (``Id`` included,
    ``"None"`` as a string, ``Age``/``Id``/``Osteoporosis`` integers).

    The target is balanced (``n_rows // 2`` positives) and learnable: as in the real file,
    positives span ages 18-90 while negatives are mostly young adults, and each risk factor
    (postmenopausal, prior fractures, low calcium, corticosteroids, ...) is somewhat more
    frequent among positives.  Rows are shuffled; ``Id`` is a unique 7-digit number.

    ``df.attrs`` carries ``source="synthetic"`` and a ``name`` starting with ``"SYNTHETIC"``.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 2:
        raise DataError(f"'n_rows' must be an int >= 2, got {n_rows!r}")
    n_rows = int(n_rows)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3]))
    y = np.zeros(n_rows, dtype=np.int64)
    y[: n_rows // 2] = 1
    rng.shuffle(y)
    pos = y == 1

    age = np.empty(n_rows, dtype=np.int64)
    # negatives: 18-40, skewed young; positives: 18-90, weighted towards the elderly
    age[~pos] = 18 + np.floor(22 * rng.beta(1.2, 2.2, (~pos).sum())).astype(np.int64)
    age[pos] = 18 + np.floor(73 * rng.beta(1.6, 1.2, pos.sum())).astype(np.int64)

    data: dict[str, np.ndarray] = {
        "Id": 1_000_000 + rng.choice(1_000_000, size=n_rows, replace=False),
        "Age": age,
    }
    for col in OSTEOPOROSIS_COLUMNS[2:-1]:
        vocab = OSTEOPOROSIS_CATEGORIES[col]
        if col in _RISK:
            p0, p1 = _RISK[col]
            risky = rng.random(n_rows) < np.where(pos, p1, p0)
            data[col] = np.where(risky, vocab[1], vocab[0])
        else:
            p_neg, p_pos = _MULTI[col]
            u = rng.random(n_rows)
            cum = np.where(pos[:, None], np.cumsum(p_pos)[None, :], np.cumsum(p_neg)[None, :])
            data[col] = np.asarray(vocab, dtype=object)[np.minimum((u[:, None] > cum).sum(axis=1), len(vocab) - 1)]
    data["Osteoporosis"] = y
    df = pd.DataFrame({col: data[col] for col in OSTEOPOROSIS_COLUMNS})
    for col in OSTEOPOROSIS_COLUMNS[2:-1]:
        df[col] = df[col].astype(str)
    df.attrs["source"] = "synthetic"
    df.attrs["name"] = f"SYNTHETIC osteoporosis table ({n_rows} rows, seed {seed})"
    return df
