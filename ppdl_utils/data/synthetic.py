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

from ppdl_utils.data.loaders import ImageDataset
from ppdl_utils.errors import DataError
from ppdl_utils.data.tabular import OSTEOPOROSIS_CATEGORIES, OSTEOPOROSIS_COLUMNS

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


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _resolve_classes(classes: Sequence[str], known: Sequence[str], param: str = "classes") -> list[int]:
    if isinstance(classes, str):
        classes = [classes]
    classes = list(classes)
    if not classes:
        raise DataError(f"'{param}' must name at least one class")
    lookup = {_norm(k): i for i, k in enumerate(known)}
    codes = []
    for c in classes:
        if _norm(c) not in lookup:
            raise DataError(f"'{param}' holds unknown class {c!r}; known classes: {list(known)}")
        codes.append(lookup[_norm(c)])
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


def _check_size(size, minimum: int = 16) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < minimum:
        raise DataError(f"'size' must be an int >= {minimum}, got {size!r}")
    return int(size)


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


# --------------------------------------------------------------------------------------
# chest X-ray-like images
# --------------------------------------------------------------------------------------
def _render_chest(kind: int, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    x, y = _grid(size)
    cx = 0.5 + _u(rng, -0.03, 0.03, n)
    cy = 0.5 + _u(rng, -0.03, 0.03, n)
    sc = _u(rng, 0.92, 1.06, n)

    body = _soft_ellipse(x, y, cx, cy + 0.08 * sc, 0.44 * sc, 0.55 * sc, edge=0.04)
    dx = 0.175 * sc
    lung_w, lung_h = 0.135 * sc, 0.29 * sc
    lung_y = cy - 0.01
    # lungs taper towards the apex and widen towards the base
    taper = np.clip(0.88 + 0.22 * (y - lung_y) / lung_h, 0.6, 1.15)
    left = _soft_ellipse(x, y, cx - dx, lung_y, lung_w * taper, lung_h, edge=0.05, power=2.2)
    right = _soft_ellipse(x, y, cx + dx, lung_y, lung_w * 0.95 * taper, lung_h * 0.97, edge=0.05, power=2.2)
    heart = _gauss(x, y, cx + 0.06 * sc, cy + 0.17 * sc, 0.12 * sc, 0.10 * sc)
    lungs = np.clip(left + right - 0.9 * heart, 0.0, 1.0)

    # ribs: curved bands across the thorax, bending downwards laterally
    rib_freq = _u(rng, 8.0, 10.0, n)
    rib_phase = _u(rng, 0.0, 2 * np.pi, n)
    rib_y = (y - cy) / sc - 1.1 * ((x - cx) / sc) ** 2
    ribs = (0.5 + 0.5 * np.sin(2 * np.pi * rib_freq * rib_y + rib_phase)) ** 6
    ribs = ribs * _soft_ellipse(x, y, cx, lung_y, 0.36 * sc, 0.36 * sc, edge=0.05)
    # spine with vertebral segments, and clavicles
    spine = np.exp(-(((x - cx) / (0.035 * sc)) ** 2)) * (0.8 + 0.2 * np.sin(2 * np.pi * 14 * y / sc))
    spine = spine * (y > cy - 0.45 * sc)
    ax_ = np.abs(x - cx) / sc
    clav_y = cy + sc * (-0.25 - 0.40 * ax_ + 0.35 * ax_**2)
    clav = np.exp(-(((y - clav_y) / (0.016 * sc)) ** 2)) * (ax_ < 0.30) * (ax_ > 0.04)

    tissue = _u(rng, 0.40, 0.48, n)
    lung_dark = _u(rng, 0.22, 0.28, n)
    img = 0.04 + tissue * body - lung_dark * lungs + 0.13 * ribs * body + 0.35 * spine * body
    img = img + 0.20 * heart + 0.22 * clav

    patho = np.zeros((n, size, size), dtype=np.float32)
    if kind == 0:  # COVID: peripheral, bilateral, lower-zone patchy ground-glass opacities
        for side in (-1.0, 1.0):
            for _ in range(5):
                px = cx + side * (dx + _u(rng, 0.04, 0.10, n) * sc)
                py = lung_y + _u(rng, -0.06, 0.24, n) * sc
                s = _u(rng, 0.045, 0.07, n) * sc
                patho += _u(rng, 0.20, 0.32, n) * _gauss(x, y, px, py, s, s * 1.3)
        texture = 0.75 + 0.25 * np.sin(2 * np.pi * (x * _u(rng, 18, 24, n) + y * _u(rng, 14, 20, n)))
        patho = np.minimum(patho, 0.40) * texture
    elif kind == 1:  # Lung_Opacity: one dense, sharply bounded consolidation in one lung
        side = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)[:, None, None]
        px = cx + side * (dx + _u(rng, -0.04, 0.04, n) * sc)
        py = lung_y + _u(rng, -0.12, 0.18, n) * sc
        s = _u(rng, 0.07, 0.10, n) * sc
        patho = _u(rng, 0.38, 0.50, n) * _gauss(x, y, px, py, s, s * 1.2, power=4.0)
    elif kind == 3:  # Viral_Pneumonia: diffuse interstitial streaks radiating from the hila
        for side in (-1.0, 1.0):
            hx, hy = cx + side * 0.08 * sc, lung_y + 0.02
            theta = np.arctan2(y - hy, x - hx)
            rays = (0.5 + 0.5 * np.cos(theta * _u(rng, 14, 20, n) + _u(rng, 0, 2 * np.pi, n))) ** 3
            dist = np.sqrt((x - hx) ** 2 + (y - hy) ** 2)
            patho += 0.32 * rays * np.exp(-((dist / (0.28 * sc)) ** 2))
        grid = (0.5 + 0.5 * np.sin(2 * np.pi * 16 * (x + 0.3 * y) / sc)) * (0.5 + 0.5 * np.sin(2 * np.pi * 16 * (y - 0.3 * x) / sc))
        patho = patho * _u(rng, 0.8, 1.2, n) + 0.10 * grid
    # kind == 2: Normal, clear lungs
    img = img + patho * lungs
    return _finish(img.astype(np.float32), rng, noise=(0.015, 0.035))


def _generate(render, all_classes: Sequence[str], classes: Sequence[str], n_per_class, size: int, seed: int,
              stream: int, generator: str, title: str) -> ImageDataset:
    """Render each class in chunks from its own seeded stream (so a class's images do not depend on
    which other classes are asked for) and wrap them in an :class:`ImageDataset`."""
    size = _check_size(size)
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
    """Synthetic grayscale images that look vaguely like frontal chest X-rays.

    Dark background, a grey thorax with two darker lung fields crossed by bright rib bands,
    a bright segmented spine, heart shadow and clavicles (bone is bright, air dark, as on a
    real radiograph).  Class patterns (all inside the lung fields):

    * ``COVID``: patchy ground-glass opacities, bilateral, peripheral and lower-zone;
    * ``Lung_Opacity``: one dense, sharply bounded consolidation in one lung;
    * ``Normal``: clear lungs;
    * ``Viral_Pneumonia``: diffuse interstitial streaks radiating from both hila.

    Per image: position/scale jitter, random rib phase, contrast, brightness, gamma and
    Gaussian noise.  ``classes`` picks (and orders) a subset; names are matched ignoring
    case, spaces and ``_`` (``"Viral Pneumonia"`` works).  Images are grouped by class in
    the order of ``classes``.  About 1 s for 1000 images of 64x64.

    Returns an :class:`ImageDataset` with ``source="synthetic"``, ``paths=None``.
    """
    return _generate(_render_chest, CHEST_CLASSES, classes, n_per_class, size, seed, stream=1,
                     generator="make_chest_xray_like", title="chest-X-ray-like")


# --------------------------------------------------------------------------------------
# knee X-ray-like images
# --------------------------------------------------------------------------------------
#: per class: (strand width, pore threshold: lower = more pores, bone brightness, cortex thickness)
_KNEE_PARAMS = {0: (0.80, 1.6, 0.50, 0.11), 1: (0.55, 0.7, 0.42, 0.08), 2: (0.38, 0.0, 0.34, 0.05)}


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
    femur_in = _soft_ellipse(x, y, cx, jy - gap / 2 - 0.32 * sc, (0.30 - cortex / 2) * sc, (0.32 - cortex / 4) * sc, edge=0.03, power=3.0)
    tibia_in = _soft_ellipse(x, y, cx, jy + gap / 2 + 0.34 * sc, (0.28 - cortex / 2) * sc, (0.34 - cortex / 4) * sc, edge=0.03, power=3.5)
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
