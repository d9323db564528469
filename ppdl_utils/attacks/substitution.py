"""Attacks on per-value substitutions: the ``table`` regime, and every deterministic regime once
rendered to bytes (``c mod 256``), all of which map each gray level to one symbol.

* :func:`attack_table_known_pair` + :func:`apply_table` -- the table from one known image pair;
  :func:`known_pair_attack` decodes test images with it and resolves ``c mod 256`` collisions and
  unseen symbols by image smoothness.
* :func:`attack_substitution_ciphertext_only` -- from ciphertexts alone (approximate: spectral
  seriation of adjacent symbols + histogram matching).  The seriation-started input layer of
  :mod:`ppdl_utils.learning.input_table` uses it, as any server could.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ppdl_utils.attacks.base import (
    AttackResult,
    as_symbols,
    check_pixel_value,
    check_plain,
    encode_symbols,
    positive_int,
)
from ppdl_utils.errors import ImageFormatError
from ppdl_utils.images.encryption import validate_images
from ppdl_utils.images.metrics import psnr, ssim

__all__ = ["MIN_TABLE_COVERAGE", "MIN_PAIR_CONSISTENCY", "SMOOTHNESS_MAX_JUMP", "attack_table_known_pair",
           "apply_table", "known_pair_attack", "chest_xray_reference_histogram",
           "attack_substitution_ciphertext_only"]

#: The attack's own verdict for a table look-up (decided from public data only): at least this
#: fraction of test pixels found in the table ...
MIN_TABLE_COVERAGE = 0.5
#: ... and the table reproduces at least this fraction of its own known pair (a deterministic
#: map does, up to ``c mod 256`` collisions; randomized ciphertexts give ~1/16).
MIN_PAIR_CONSISTENCY = 0.5
#: Smoothness decoding of a known-pair look-up: a pixel whose candidates all lie further than this
#: from its neighbours' median is in-painted instead.
SMOOTHNESS_MAX_JUMP = 60.0


# --------------------------------------------------------------------------- substitution: known pair


def attack_table_known_pair(
    cipher_image: ArrayLike,
    plain_image: ArrayLike,
    on_conflict: Literal["majority", "raise"] = "majority",
) -> dict[Hashable, int]:
    """Learn a ciphertext -> plaintext table from one known (ciphertext, plaintext) image pair.

    Works on full ciphertext ints or on rendered ``c mod 256`` images (any hashable
    values).  A rendering can map several plaintexts onto one symbol; with
    ``on_conflict="majority"`` the most frequent plaintext wins, with ``"raise"``
    such a conflict raises ValueError.
    """
    shape, flat = as_symbols(cipher_image, "cipher_image")
    plain = check_plain(plain_image)
    if plain.shape != shape:
        raise ImageFormatError(f"cipher_image and plain_image differ in shape: {shape} vs {plain.shape}")
    if on_conflict not in ("majority", "raise"):
        raise ValueError(f"on_conflict must be 'majority' or 'raise', got {on_conflict!r}")
    codes, symbols = encode_symbols(flat)
    counts = np.zeros((len(symbols), 256), dtype=np.int64)
    np.add.at(counts, (codes, plain.ravel()), 1)
    n_plain = (counts > 0).sum(axis=1)
    if on_conflict == "raise" and (n_plain > 1).any():
        k = int(np.argmax(n_plain > 1))
        raise ValueError(
            f"ciphertext symbol {symbols[k]!r} maps to several plaintexts {np.flatnonzero(counts[k]).tolist()}: "
            "not a deterministic substitution (or a lossy rendering)"
        )
    best = counts.argmax(axis=1)
    return {s: int(v) for s, v in zip(symbols, best.tolist())}


def apply_table(
    cipher_image: ArrayLike,
    mapping: Mapping[Hashable, int],
    fill: int = 0,
    min_coverage: float = 1.0,
) -> AttackResult:
    """Decrypt ``cipher_image`` with a learned table; unknown symbols become ``fill``.

    ``coverage`` is the fraction of pixels found in the table; ``success`` means
    coverage >= ``min_coverage`` (default: every pixel).
    """
    t0 = time.perf_counter()
    fill = check_pixel_value(fill, "fill")
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be within [0, 1], got {min_coverage}")
    shape, flat = as_symbols(cipher_image, "cipher_image")
    out = np.empty(len(flat), dtype=np.int64)
    hit = np.empty(len(flat), dtype=bool)
    get = mapping.get
    for i, c in enumerate(flat):
        v = get(c)
        hit[i] = v is not None
        out[i] = fill if v is None else v
    if out.min() < 0 or out.max() > 255:
        raise ValueError("mapping holds plaintext values outside 0..255")
    coverage = float(hit.mean())
    return AttackResult(
        image=out.astype(np.uint8).reshape(shape),
        success=coverage >= min_coverage,
        coverage=coverage,
        seconds=time.perf_counter() - t0,
        notes=f"{hit.sum()}/{hit.size} pixels found in a table of {len(mapping)} entries",
        name="table",
        table=dict(mapping),
    )


# --------------------------------------------------------------------------- substitution: ciphertext only


def chest_xray_reference_histogram() -> NDArray[np.float64]:
    """A rough prior for the gray-level histogram of 8-bit chest X-rays (sums to 1).

    NOT estimated from data: a four-component Gaussian mixture (dark borders ~10,
    lung fields ~90, soft tissue/mediastinum ~165, bone ~225).  An attacker would
    use the empirical histogram of public plaintext X-rays of the same source instead.
    """
    x = np.arange(256, dtype=np.float64)
    comps = [(0.08, 10.0, 8.0), (0.42, 90.0, 30.0), (0.40, 165.0, 30.0), (0.10, 225.0, 15.0)]
    h = sum(w * np.exp(-0.5 * ((x - mu) / sd) ** 2) / sd for w, mu, sd in comps)
    return h / h.sum()


def _cooccurrence(codes: NDArray[np.int64], k: int) -> NDArray[np.float64]:
    """Symmetric counts of horizontally / vertically adjacent symbol pairs (diagonal zeroed)."""
    a = np.zeros((k, k), dtype=np.float64)
    for left, right in ((codes[..., :, :-1], codes[..., :, 1:]), (codes[..., :-1, :], codes[..., 1:, :])):
        np.add.at(a, (left.ravel(), right.ravel()), 1.0)
    a = a + a.T
    np.fill_diagonal(a, 0.0)
    return a


def _spectral_order(a: NDArray[np.float64]) -> NDArray[np.int64]:
    """Spectral seriation: sort by the Fiedler vector of the normalized Laplacian of ``a``."""
    k = a.shape[0]
    if k <= 2:
        return np.arange(k)
    scale = a.max() if a.any() else 1.0
    w = a + 1e-6 * scale  # tiny uniform link keeps the graph connected (must stay << real weights)
    np.fill_diagonal(w, 0.0)
    dm = 1.0 / np.sqrt(w.sum(axis=1))
    lap = np.eye(k) - dm[:, None] * w * dm[None, :]
    _, vecs = np.linalg.eigh(lap)
    return np.argsort(dm * vecs[:, 1], kind="stable")


def _neighbour_rank_spread(a: NDArray[np.float64], order: NDArray[np.int64]) -> NDArray[np.float64]:
    """Per symbol, the weighted std of its neighbours' ranks (ranks scaled to 0..1)."""
    k = a.shape[0]
    rank = np.empty(k)
    rank[order] = np.arange(k) / max(k - 1, 1)
    w = a.sum(axis=1)
    safe = np.where(w > 0, w, 1.0)
    mean = a @ rank / safe
    var = a @ rank**2 / safe - mean**2
    return np.where(w > 0, np.sqrt(np.maximum(var, 0.0)), 0.0)


def _log_corr(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    if x.size < 3:
        return 0.0
    lx, ly = np.log(x), np.log(y + 1e-6)
    if lx.std() == 0 or ly.std() == 0:
        return 0.0
    return float(np.corrcoef(lx, ly)[0, 1])


def _reference(reference_histogram: ArrayLike | None) -> NDArray[np.float64]:
    if reference_histogram is None:
        return chest_xray_reference_histogram()
    ref = np.asarray(reference_histogram, dtype=np.float64)
    if ref.shape != (256,) or not np.isfinite(ref).all() or (ref < 0).any() or not ref.sum() > 0:
        raise ValueError("reference_histogram must be 256 non-negative weights with a positive sum")
    return ref / ref.sum()


def _substitution_evidence(codes: NDArray[np.int64], counts: NDArray[np.float64]) -> dict[str, float]:
    """How much more often adjacent pixels are equal than chance (a binomial z-score): a
    substitution of a natural image scores far above 6, randomized ciphertexts near 0."""
    pairs = [(codes[..., :, :-1], codes[..., :, 1:]), (codes[..., :-1, :], codes[..., 1:, :])]
    n_pairs = sum(a.size for a, _ in pairs)
    n_equal = sum(int((a == b).sum()) for a, b in pairs)
    p_chance = float(np.sum((counts / counts.sum()) ** 2))
    expected = n_pairs * p_chance
    z = (n_equal - expected) / np.sqrt(max(expected * (1.0 - p_chance), 1e-12))
    return {"distinct_symbols": float(len(counts)), "neighbour_equal_rate": n_equal / n_pairs,
            "chance_equal_rate": p_chance, "neighbour_equality_z": float(z)}


def _seriate_with_peeling(adj: NDArray[np.float64], counts: NDArray[np.float64],
                          max_peel: int) -> tuple[NDArray[np.int64], list[int]]:
    """Steps 2-3: the seriation order of the symbols, and the frequent wide-spread symbols peeled off."""
    active = np.arange(len(counts))
    peeled: list[int] = []
    while True:
        sub = adj[np.ix_(active, active)]
        sub_order = _spectral_order(sub)
        if len(peeled) >= max_peel or active.size < 8:
            break
        spread = _neighbour_rank_spread(sub, sub_order)
        c_act = counts[active]
        cand = np.flatnonzero(
            (spread > 4.0 * np.median(spread)) & (spread > 0.05) & (c_act >= 4.0 * np.median(c_act))
        )
        if cand.size == 0:
            break
        j = int(cand[np.argmax(spread[cand])])
        peeled.append(int(active[j]))
        active = np.delete(active, j)
    return active[sub_order], peeled


def _place_peeled(peeled: list[int], counts: NDArray[np.float64], ref: NDArray[np.float64],
                  gray: NDArray[np.int64]) -> NDArray[np.float64]:
    """Peeled symbols go to the reference level whose mass best matches their count (in `gray`);
    returns the reference mass left for the other symbols (normalised)."""
    residual = ref * counts.sum()
    for p in sorted(peeled, key=lambda s: -counts[s]):
        window = np.convolve(residual, np.ones(3), mode="same")
        level = int(np.argmin(np.abs(np.log((window + 1e-9) / counts[p]))))
        gray[p] = level
        sl = slice(max(level - 1, 0), level + 2)
        residual[sl] = np.maximum(residual[sl] * (1.0 - counts[p] / max(window[level], 1e-9)), 0.0)
    if not residual.sum() > 0:
        residual = np.ones(256)
    return residual / residual.sum()


def _match_histogram(order: NDArray[np.int64], counts: NDArray[np.float64], rres: NDArray[np.float64],
                     gray: NDArray[np.int64]) -> list[tuple[float, NDArray[np.int64]]]:
    """Steps 4-5: levels by histogram matching along both directions of the order, best-oriented
    first (log-mass correlation with the reference); each entry is (score, level per symbol)."""
    cdf = np.cumsum(rres)
    candidates = []
    for direction in (order, order[::-1]):
        mass = counts[direction] / counts[direction].sum()
        mid = np.cumsum(mass) - mass / 2.0
        levels = np.clip(np.searchsorted(cdf, mid), 0, 255)
        g = gray.copy()
        g[direction] = levels
        candidates.append((_log_corr(mass, rres[levels]), g))
    return sorted(candidates, key=lambda x: -x[0])


def _score_against(truth: ArrayLike, shape: tuple[int, ...], image: NDArray[np.uint8]) -> tuple[float, float]:
    """(PSNR, SSIM) of a reconstruction against the true image(s): scoring only, never an input."""
    t = np.asarray(truth)
    if t.shape != shape:
        raise ImageFormatError(f"truth has shape {t.shape}, cipher_images {shape}")
    if len(shape) == 2:
        return psnr(t, image), ssim(t, image)
    return (float(np.mean([psnr(a, b) for a, b in zip(t, image)])),
            float(np.mean([ssim(a, b) for a, b in zip(t, image)])))


# Over 60 lines only because its docstring documents the method step by step; the body is ~40 lines
# that call one helper per step.
def attack_substitution_ciphertext_only(
    cipher_images: ArrayLike | Sequence[ArrayLike],
    reference_histogram: ArrayLike | None = None,
    truth: ArrayLike | None = None,
    max_peel: int = 8,
) -> AttackResult:
    """Approximate ciphertext-only attack on any per-value substitution of 8-bit images.

    Method (public data only; ``cipher_images`` is one 2-D image or a same-shape stack):

    1. encode the distinct ciphertext symbols (table-regime ciphertexts, ``c mod 256``
       renderings of deterministic regimes, ...) and count them;
    2. *seriation*: build the co-occurrence matrix of horizontally/vertically adjacent
       symbols and order the symbols by the Fiedler vector of its normalized Laplacian,
       so that symbols often adjacent in the image get close ranks (for a smooth image
       this is the gray-level order up to reversal);
    3. *peeling*: a frequent symbol whose neighbours are spread over a wide range of
       ranks (a flat region bordering everything: a bright disk, a black border) is
       taken out (up to ``max_peel``, re-seriating after each) and placed by frequency
       alone, at the reference level whose mass best matches its count; that mass is
       then removed from the reference;
    4. *histogram matching*: walking along the order, each remaining symbol gets the
       gray level at the quantile of the (remaining) reference histogram that its
       cumulative mass reaches;
    5. *orientation*: of the two directions keep the one where the symbols' masses
       correlate best (log scale) with the reference mass at their assigned levels; the
       other one is returned as ``alternative`` (reversed contrast reveals anatomy as well).

    ``reference_histogram``: 256 non-negative weights, ideally the empirical histogram
    of public plaintext images of the same source (default:
    :func:`chest_xray_reference_histogram`, a rough prior with which the orientation is
    often wrong).  Limits: step 3 can swap two flat regions of similar size; a reference
    that does not match the image distorts intensities (structure survives).

    ``success`` is decided from the ciphertext only: at most 256 distinct symbols and
    adjacent pixels equal far more often than chance (binomial z-score > 6), i.e. the
    input looks like a substitution of a natural image; it is False for randomized
    ciphertexts.  ``truth`` (optional, scoring only) adds PSNR/SSIM to ``metrics``.
    """
    t0 = time.perf_counter()
    arr = np.asarray(cipher_images)
    if arr.ndim not in (2, 3):
        raise ImageFormatError(f"cipher_images must be one 2-D image or a stack of them, got shape {arr.shape}")
    if arr.shape[-1] < 2 or arr.shape[-2] < 2:
        raise ImageFormatError(f"images of shape {arr.shape[-2:]} have no adjacent pixel pairs")
    shape, flat = as_symbols(arr, "cipher_images")
    ref = _reference(reference_histogram)
    max_peel = positive_int(max_peel, "max_peel", minimum=0)
    codes_flat, symbols = encode_symbols(flat)
    k = len(symbols)
    codes = codes_flat.reshape(shape)
    counts = np.bincount(codes_flat, minlength=k).astype(np.float64)
    metrics = _substitution_evidence(codes, counts)
    if k > 256:
        notes = (f"{k} distinct ciphertext symbols > 256: not a per-value substitution of 8-bit pixels "
                 "(randomized encryption?); nothing recovered")
        if truth is not None:
            metrics["psnr"], metrics["ssim"] = _score_against(truth, shape, np.zeros(shape, dtype=np.uint8))
        return AttackResult(image=np.zeros(shape, dtype=np.uint8), success=False, coverage=0.0,
                            seconds=time.perf_counter() - t0, notes=notes, name="substitution_ciphertext_only",
                            metrics=metrics)
    order, peeled = _seriate_with_peeling(_cooccurrence(codes, k), counts, max_peel)
    gray = np.zeros(k, dtype=np.int64)
    rres = _place_peeled(peeled, counts, ref, gray)
    (score, gray), (score_alt, gray_alt) = _match_histogram(order, counts, rres, gray)
    image, alternative = gray[codes].astype(np.uint8), gray_alt[codes].astype(np.uint8)
    success = bool(metrics["neighbour_equality_z"] > 6.0)
    metrics.update(orientation_score=score, orientation_score_alternative=score_alt, peeled_symbols=float(len(peeled)))
    notes = (f"{k} symbols ordered by spectral seriation of adjacency ({len(peeled)} peeled), levels by histogram "
             "matching; " + ("input looks like a substitution" if success else
                             "neighbours not more equal than chance: input does not look like a substitution "
                             "of a natural image, result is noise"))
    if truth is not None:
        metrics["psnr"], metrics["ssim"] = _score_against(truth, shape, image)
        metrics["psnr_alternative"], metrics["ssim_alternative"] = _score_against(truth, shape, alternative)
    return AttackResult(image=image, success=success, coverage=1.0, seconds=time.perf_counter() - t0, notes=notes,
                        name="substitution_ciphertext_only", table={s: int(v) for s, v in zip(symbols, gray.tolist())},
                        metrics=metrics, alternative=alternative)


def _symbol_codes(cipher: np.ndarray, index: dict) -> np.ndarray:
    return np.fromiter((index.get(s, -1) for s in np.asarray(cipher).ravel().tolist()), dtype=np.int64,
                       count=np.asarray(cipher).size).reshape(np.shape(cipher))


def _local_median(values: np.ndarray) -> np.ndarray:
    """Median of the defined (non-NaN) 8-neighbours of every pixel; NaN where none is defined."""
    h, w = values.shape
    pad = np.pad(values, 1, constant_values=np.nan)
    stack = np.stack([pad[1 + di:1 + di + h, 1 + dj:1 + dj + w]
                      for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods stay NaN
        return np.nanmedian(stack, axis=0)


def _disambiguate(codes: np.ndarray, counts: np.ndarray, fill: float, max_jump: float = SMOOTHNESS_MAX_JUMP,
                  iterations: int = 6) -> np.ndarray:
    """Decode one image from its symbols using the known pair's candidates and image smoothness.

    ``codes``: per pixel the index of its symbol in the known pair (-1: unseen); ``counts``: per
    symbol the plaintexts it stood for in the known pair.  Start from the symbols seen with one
    plaintext only; then repeatedly give every pixel the candidate closest to the median of its
    neighbours, or that median itself (in-painting) when no candidate lies within ``max_jump``
    gray levels -- an unseen symbol, or a ``c mod 256`` collision the known pair did not show.
    Pixels never reached get ``fill``.
    """
    levels = np.arange(256, dtype=np.float64)
    seen = codes >= 0
    cand = np.zeros(codes.shape + (256,), dtype=bool)
    cand[seen] = counts[codes[seen]] > 0
    values = np.full(codes.shape, np.nan)
    sure = cand.sum(axis=-1) == 1
    values[sure] = cand[sure].argmax(axis=-1)
    for _ in range(iterations):
        est = _local_median(values)
        upd = ~np.isnan(est)
        dist = np.where(cand[upd], np.abs(levels[None, :] - est[upd][:, None]), np.inf)
        values[upd] = np.where(dist.min(axis=-1) <= max_jump, dist.argmin(axis=-1), np.round(est[upd]))
    values[np.isnan(values)] = fill
    return np.clip(values, 0, 255).astype(np.uint8)


def known_pair_attack(pair_cipher: np.ndarray, pair_plain: np.ndarray, test_ciphers: Sequence[np.ndarray],
                      refine: bool = True) -> tuple[list[AttackResult], list[np.ndarray], dict[str, float]]:
    """Learn the substitution from one known pair (:func:`attack_table_known_pair`), decrypt every
    test image with it (:func:`apply_table`; unknown symbols get the pair's mean gray), then
    (``refine``) resolve ``c mod 256`` collisions and unseen symbols by smoothness.

    Works on full ciphertexts (look-up of 4096-bit ints) and on renderings.  Returns one
    :class:`AttackResult` per test image (``success``: >= 50% of its pixels found in the table and
    the table reproduces >= 50% of its own known pair -- both public checks), the plain look-up
    images (before refinement) and diagnostics (``pair_consistency``, ``table_entries``).
    """
    pair_plain = validate_images(pair_plain, "pair_plain")
    table = attack_table_known_pair(pair_cipher, pair_plain)
    consistency = float((apply_table(pair_cipher, table).image == pair_plain).mean())
    index: dict = {}
    flat = np.asarray(pair_cipher).ravel().tolist()
    codes_pair = np.fromiter((index.setdefault(s, len(index)) for s in flat), dtype=np.int64, count=len(flat))
    counts = np.zeros((len(index), 256), dtype=np.int64)
    np.add.at(counts, (codes_pair, pair_plain.ravel().astype(np.int64)), 1)
    fill = float(pair_plain.mean())
    results, lookups = [], []
    for cipher in test_ciphers:
        t0 = time.perf_counter()
        res = apply_table(cipher, table, fill=int(round(fill)), min_coverage=0.0)
        lookups.append(res.image)
        if refine:
            res.image = _disambiguate(_symbol_codes(cipher, index), counts, fill)
        res.success = bool(res.coverage >= MIN_TABLE_COVERAGE and consistency >= MIN_PAIR_CONSISTENCY)
        res.seconds = time.perf_counter() - t0
        results.append(res)
    return results, lookups, {"pair_consistency": consistency, "table_entries": float(len(table))}
