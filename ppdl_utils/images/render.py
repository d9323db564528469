"""Rendering Paillier ciphertext images as 8-bit images (what the papers feed a CNN).

A ciphertext is a ~4096-bit integer: ``float(c)`` raises OverflowError for any key of 1024 bits
or more (n^2 > 2^1024 ~ 1.8e308), so every renderer here uses exact integer arithmetic.

* ``mod256`` — the low byte, c mod 256.  Per-value: deterministic regimes give a 256-entry
  substitution of the plain pixels; randomized ciphertexts give uniform noise.
* ``msb`` — the top byte of c relative to n^2, c >> (bits(n^2) - 8).  Per-value as well.  For
  ``r_one`` (c = 1 + n*m < n*256) it is 0 everywhere: a black image.
* ``minmax`` — per-image exact min-max scaling to 0..255.  Documented as a warning: for
  ``r_one`` ciphertexts c = 1 + n*m is affine in m, so this returns the plain image itself
  (contrast-stretched; exactly the plain image when it spans 0..255).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ppdl_utils.crypto.paillier import PaillierPublicKey
from ppdl_utils.errors import ImageFormatError

PER_VALUE_RENDERERS = ("mod256", "msb")
RENDERERS = (*PER_VALUE_RENDERERS, "minmax")


def float_overflows(public: PaillierPublicKey) -> bool:
    """True when ciphertexts of this key can exceed the largest float (why we never use float(c))."""
    return public.n_square.bit_length() > 1024


def _mod256(values: np.ndarray, public: PaillierPublicKey) -> np.ndarray:
    return np.frompyfunc(lambda c: int(c) & 0xFF, 1, 1)(values).astype(np.uint8)


def _msb(values: np.ndarray, public: PaillierPublicKey) -> np.ndarray:
    shift = public.n_square.bit_length() - 8
    return np.frompyfunc(lambda c: int(c) >> shift, 1, 1)(values).astype(np.uint8)


def _minmax(values: np.ndarray, public: PaillierPublicKey) -> np.ndarray:
    flat = [int(c) for c in values.ravel()]
    lo, hi = min(flat), max(flat)
    span = hi - lo or 1
    return np.array([(c - lo) * 255 // span for c in flat], dtype=np.uint8).reshape(values.shape)


_FUNCTIONS: dict[str, Callable[[np.ndarray, PaillierPublicKey], np.ndarray]] = {
    "mod256": _mod256, "msb": _msb, "minmax": _minmax}


def render(values: np.ndarray, public: PaillierPublicKey, renderer: str = "mod256") -> np.ndarray:
    """Render one ciphertext image (object array of ints) to uint8 of the same shape."""
    try:
        function = _FUNCTIONS[renderer]
    except KeyError:
        raise ValueError(f"unknown renderer {renderer!r}; expected one of {', '.join(RENDERERS)}") from None
    return function(np.asarray(values, dtype=object), public)


def render_with_table(images: np.ndarray, table: np.ndarray, public: PaillierPublicKey,
                      renderer: str = "mod256") -> np.ndarray:
    """Render images encrypted by a 256-entry table (any deterministic regime) without building
    the ciphertext arrays: per-value renderers become one uint8 lookup; minmax is per image."""
    if renderer in PER_VALUE_RENDERERS:
        return render(table, public, renderer)[images]
    if renderer != "minmax":
        render(table[:1], public, renderer)  # raises the unknown-renderer error
    stack = images.reshape(-1, *images.shape[-2:])
    out = np.empty_like(stack, dtype=np.uint8)
    for i, image in enumerate(stack):
        present = np.unique(image)
        entries = [int(table[v]) for v in present]
        lo, span = min(entries), (max(entries) - min(entries)) or 1
        lut = np.zeros(256, dtype=np.uint8)
        lut[present] = [(c - lo) * 255 // span for c in entries]
        out[i] = lut[image]
    return out.reshape(images.shape)


def rendering_stats(plain_images: np.ndarray, rendered_images: np.ndarray) -> dict[str, float]:
    """How much a rendering destroys, from plaintext/rendered pairs (an evaluator's measure, not an attack).

    A deterministic regime rendered ``c mod 256`` maps the 256 gray levels onto fewer byte values;
    *which* levels merge decides how much a CNN can still see.  Returns:

    * ``distinct_values``: distinct rendered values among the pixels;
    * ``merged_levels``: gray levels that share their rendered value with another level;
    * ``merge_spread``: the pixel-weighted mean |gray level - mean gray level of its rendered
      value| -- 0 when nothing merges, large when distant levels (dark lung, bright bone) collide;
    * ``level_jump``: how far the rendering moves *adjacent* gray levels apart: the pixel-weighted
      mean |value(m') - value(m)| over consecutive levels m < m' present in the images, divided by
      256/3 (that mean for two independent uniform bytes): ~0 when the order of the levels survives
      (a smooth image stays smooth), ~1 for a random substitution.  It sees what the merge counts
      cannot: ``r_one`` merges nothing (a bijection on bytes) yet scrambles the order.
    """
    plain = np.asarray(plain_images).reshape(-1).astype(np.int64)
    rendered = np.asarray(rendered_images).reshape(-1).astype(np.int64)
    if plain.shape != rendered.shape:
        raise ImageFormatError(f"plain and rendered images differ in size: {np.shape(plain_images)} vs "
                               f"{np.shape(rendered_images)}")
    counts = np.bincount(rendered, minlength=256)
    mean_level = np.bincount(rendered, weights=plain, minlength=256) / np.maximum(counts, 1)
    pairs = np.unique(np.stack([plain, rendered]), axis=1)  # distinct (level, value) pairs
    levels_per_value = np.bincount(pairs[1], minlength=256)
    merged = np.unique(pairs[0][levels_per_value[pairs[1]] > 1])
    level_counts = np.bincount(plain, minlength=256)
    present = np.flatnonzero(level_counts)
    value_of_level = np.bincount(plain, weights=rendered, minlength=256) / np.maximum(level_counts, 1)
    jumps = np.abs(np.diff(value_of_level[present]))
    weights = level_counts[present[:-1]] + level_counts[present[1:]]
    level_jump = float(np.average(jumps, weights=weights) / (256 / 3)) if len(present) > 1 else 0.0
    return {"distinct_values": float(np.count_nonzero(counts)), "merged_levels": float(len(merged)),
            "merge_spread": float(np.mean(np.abs(plain - mean_level[rendered]))), "level_jump": level_jump}
