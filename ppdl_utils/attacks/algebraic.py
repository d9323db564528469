"""What an honest-but-curious server recovers from the ciphertext images it is sent.

Every attack here is a pure function of *public* values (ciphertexts, the public
key, at most one known pixel or one known image pair, a public reference
histogram); none of them touches a private key.  Each returns an
:class:`AttackResult` (:func:`attack_table_known_pair` returns the learned table,
which :func:`apply_table` uses) whose ``success`` flag is computed from the data:
when the input was not produced by the regime the attack targets (above all the
semantically secure ``randomized`` regime) the attack says so instead of
returning a silently wrong image.

* :func:`attack_r_one` -- Paillier with r = 1: m = (c - 1) / n, public key only.
* :func:`attack_fixed_r` -- Paillier with one reused r, plus one known pixel.
* :func:`attack_table_known_pair` + :func:`apply_table` -- any per-value
  substitution (table regime, ``c mod 256`` renderings) from one known image pair.
* :func:`attack_substitution_ciphertext_only` -- any per-value substitution from
  ciphertexts alone (approximate: seriation + histogram matching).
* :func:`attack_rsa_dictionary` -- textbook (unpadded) RSA: encrypt 0..255, look up.
* :func:`attack_lwe_fixed` -- LWE/BFV-style encryption with reused (a, e).
"""
from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import gmpy2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ppdl_utils.errors import CiphertextError, ImageFormatError

__all__ = [
    "AttackResult",
    "attack_r_one",
    "attack_fixed_r",
    "attack_table_known_pair",
    "apply_table",
    "attack_substitution_ciphertext_only",
    "chest_xray_reference_histogram",
    "attack_rsa_dictionary",
    "attack_lwe_fixed",
    "attack_lwe_fixed_randomness",
]

_MPZ = type(gmpy2.mpz(0))


@dataclass
class AttackResult:
    """Outcome of one attack.

    ``coverage`` is the fraction of pixels the attack could decrypt (table
    look-ups) or found consistent with the targeted regime (algebraic attacks).
    ``success`` is decided from the public data only, never from the true image.
    ``table`` is the learned symbol -> gray-level map where there is one;
    ``alternative`` another plausible reconstruction (the reversed gray-level
    orientation of the ciphertext-only attack).
    """

    image: NDArray[np.uint8]
    success: bool
    coverage: float
    seconds: float
    notes: str = ""
    name: str = ""
    table: dict[Any, int] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    alternative: NDArray[np.uint8] | None = None

    def __repr__(self) -> str:  # keep reprs short: no pixel dump
        return (
            f"AttackResult(name={self.name!r}, success={self.success}, coverage={self.coverage:.4f}, "
            f"seconds={self.seconds:.3f}, shape={self.image.shape}, notes={self.notes!r})"
        )


# --------------------------------------------------------------------------- helpers


def _positive_int(value: Any, name: str, minimum: int = 2) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, _MPZ)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _cipher_ints(cipher: ArrayLike, name: str = "cipher_ints") -> tuple[tuple[int, ...], list[Any]]:
    """Return (shape, flat list of gmpy2.mpz) for an array of non-negative integers."""
    arr = np.asarray(cipher)
    if arr.size == 0:
        raise CiphertextError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind in "iu":
        flat = [gmpy2.mpz(x) for x in arr.ravel().tolist()]
    elif arr.dtype == object:
        flat = []
        for x in arr.ravel().tolist():
            if isinstance(x, bool) or not isinstance(x, (int, np.integer, _MPZ)):
                raise CiphertextError(f"{name} must hold integers, found {type(x).__name__} {x!r}")
            flat.append(gmpy2.mpz(int(x)) if isinstance(x, np.integer) else gmpy2.mpz(x))
    else:
        raise CiphertextError(f"{name} must be an integer or object array of ints, got dtype {arr.dtype}")
    if any(x < 0 for x in flat):
        raise CiphertextError(f"{name} holds negative values; ciphertexts are residues >= 0")
    return arr.shape, flat


def _flat_index(known_index: int | Sequence[int], shape: tuple[int, ...]) -> int:
    size = int(np.prod(shape))
    if isinstance(known_index, (int, np.integer)) and not isinstance(known_index, bool):
        idx = int(known_index)
        if not 0 <= idx < size:
            raise IndexError(f"known_index {idx} out of range for {size} pixels")
        return idx
    tup = tuple(int(i) for i in known_index)
    if len(tup) != len(shape) or any(not 0 <= i < s for i, s in zip(tup, shape)):
        raise IndexError(f"known_index {known_index!r} is not a valid index into shape {shape}")
    return int(np.ravel_multi_index(tup, shape))


def _check_pixel_value(value: Any, name: str = "known_value", upper: int = 255) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not 0 <= v <= upper:
        raise ValueError(f"{name} must be within 0..{upper}, got {v}")
    return v


def _symbols(cipher: ArrayLike, name: str) -> tuple[tuple[int, ...], list[Hashable]]:
    """Shape and flat list of hashable pixel symbols (Python ints for numeric dtypes)."""
    arr = np.asarray(cipher)
    if arr.size == 0:
        raise ImageFormatError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind == "f":
        raise ImageFormatError(f"{name} has float dtype {arr.dtype}; ciphertext symbols must be exact values")
    return arr.shape, arr.ravel().tolist()


def _check_plain(img: ArrayLike, name: str = "plain_image") -> NDArray[np.int64]:
    arr = np.asarray(img)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ImageFormatError(f"{name} must have an integer dtype (e.g. uint8), got {arr.dtype}")
    if arr.size == 0:
        raise ImageFormatError(f"{name} is empty (shape {arr.shape})")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 255:
        raise ImageFormatError(f"{name} has pixel values in [{lo}, {hi}], expected within 0..255")
    return arr.astype(np.int64)


def _encode(flat: list[Hashable]) -> tuple[NDArray[np.int64], list[Hashable]]:
    """Integer codes 0..K-1 for the symbols (first-seen order) and the list of distinct symbols."""
    ids: dict[Hashable, int] = {}
    codes = np.fromiter((ids.setdefault(x, len(ids)) for x in flat), dtype=np.int64, count=len(flat))
    return codes, list(ids)


# --------------------------------------------------------------------------- Paillier r = 1


def attack_r_one(cipher_ints: ArrayLike, n: int) -> AttackResult:
    """Decrypt Paillier ``r_one`` ciphertexts with the public ``n`` alone: m = (c - 1) / n.

    Raises ValueError when some c - 1 is not divisible by n (the input is not
    ``r_one``) or a recovered value is outside 0..255.
    """
    t0 = time.perf_counter()
    n = _positive_int(n, "n", minimum=3)
    nn = gmpy2.mpz(n)
    shape, flat = _cipher_ints(cipher_ints)
    values = np.empty(len(flat), dtype=np.int64)
    for i, c in enumerate(flat):
        q, r = gmpy2.f_divmod(c - 1, nn)
        if r != 0:
            raise ValueError(
                f"pixel {i}: c - 1 is not divisible by n, so these ciphertexts are not Paillier r_one "
                "encryptions (fresh or fixed randomness r != 1); attack_r_one does not apply"
            )
        if not 0 <= q <= 255:
            raise ValueError(f"pixel {i}: (c - 1) / n = {int(q)} is outside 0..255; not an 8-bit image")
        values[i] = int(q)
    return AttackResult(
        image=values.astype(np.uint8).reshape(shape),
        success=True,
        coverage=1.0,
        seconds=time.perf_counter() - t0,
        notes="r_one: c = 1 + n*m, so m = (c - 1) / n with the public key only",
        name="r_one",
    )


# --------------------------------------------------------------------------- Paillier fixed r


def attack_fixed_r(
    cipher_ints: ArrayLike,
    n: int,
    known_index: int | Sequence[int],
    known_value: int,
) -> AttackResult:
    """Recover a Paillier ``fixed_r`` image from public values and one known pixel.

    With c_i = (1 + n m_i) R mod n^2 for one secret R, c_i * c_ref^-1 = 1 + n (m_i - m_ref)
    mod n^2, so every difference is public; ``known_value`` at ``known_index`` (e.g. a
    black border pixel = 0) pins the image.  Pixels whose quotient is not of that form
    or lands outside 0..255 are inconsistent; ``coverage`` is the consistent fraction
    and ``success`` means every pixel is consistent.  The image is clipped to 0..255.
    """
    t0 = time.perf_counter()
    n = _positive_int(n, "n", minimum=3)
    shape, flat = _cipher_ints(cipher_ints)
    ref_i = _flat_index(known_index, shape)
    m_ref = _check_pixel_value(known_value)
    nn = gmpy2.mpz(n)
    n2 = nn * nn
    if any(c >= n2 for c in flat):
        raise CiphertextError("cipher_ints holds values >= n^2; not Paillier ciphertexts under this n")
    try:
        inv = gmpy2.invert(flat[ref_i], n2)
    except ZeroDivisionError:
        raise CiphertextError(f"reference ciphertext at index {ref_i} is not invertible mod n^2") from None
    half = nn // 2
    values = np.empty(len(flat), dtype=np.int64)
    consistent = np.empty(len(flat), dtype=bool)
    for i, c in enumerate(flat):
        q, r = gmpy2.f_divmod(gmpy2.f_mod(c * inv, n2) - 1, nn)  # q = m_i - m_ref mod n if r == 0
        if q > half:
            q -= nn  # signed difference
        v = m_ref + q
        ok = r == 0 and 0 <= v <= 255
        consistent[i] = ok
        values[i] = int(v) if ok else (0 if v < 0 else 255)
    frac = float(consistent.mean())
    success = bool(consistent.all())
    if success:
        notes = "fixed_r: c_i / c_ref = 1 + n (m_i - m_ref) mod n^2; every pixel consistent"
    else:
        notes = (
            f"only {consistent.sum()}/{consistent.size} pixels consistent with one reused r: "
            "the input is not fixed_r (e.g. randomized); the image is garbage"
        )
    return AttackResult(
        image=values.astype(np.uint8).reshape(shape),
        success=success,
        coverage=frac,
        seconds=time.perf_counter() - t0,
        notes=notes,
        name="fixed_r",
    )


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
    shape, flat = _symbols(cipher_image, "cipher_image")
    plain = _check_plain(plain_image)
    if plain.shape != shape:
        raise ImageFormatError(f"cipher_image and plain_image differ in shape: {shape} vs {plain.shape}")
    if on_conflict not in ("majority", "raise"):
        raise ValueError(f"on_conflict must be 'majority' or 'raise', got {on_conflict!r}")
    codes, symbols = _encode(flat)
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
    fill = _check_pixel_value(fill, "fill")
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be within [0, 1], got {min_coverage}")
    shape, flat = _symbols(cipher_image, "cipher_image")
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
    from ppdl_utils.images.metrics import psnr, ssim

    t0 = time.perf_counter()
    arr = np.asarray(cipher_images)
    if arr.ndim not in (2, 3):
        raise ImageFormatError(f"cipher_images must be one 2-D image or a stack of them, got shape {arr.shape}")
    if arr.shape[-1] < 2 or arr.shape[-2] < 2:
        raise ImageFormatError(f"images of shape {arr.shape[-2:]} have no adjacent pixel pairs")
    shape, flat = _symbols(arr, "cipher_images")
    if reference_histogram is None:
        ref = chest_xray_reference_histogram()
    else:
        ref = np.asarray(reference_histogram, dtype=np.float64)
        if ref.shape != (256,) or not np.isfinite(ref).all() or (ref < 0).any() or not ref.sum() > 0:
            raise ValueError("reference_histogram must be 256 non-negative weights with a positive sum")
        ref = ref / ref.sum()
    max_peel = _positive_int(max_peel, "max_peel", minimum=0)

    codes_flat, symbols = _encode(flat)
    k = len(symbols)
    codes = codes_flat.reshape(shape)
    counts = np.bincount(codes_flat, minlength=k).astype(np.float64)
    total = counts.sum()

    # is this a substitution at all?  equal neighbours vs chance
    pairs = [(codes[..., :, :-1], codes[..., :, 1:]), (codes[..., :-1, :], codes[..., 1:, :])]
    n_pairs = sum(a.size for a, _ in pairs)
    n_equal = sum(int((a == b).sum()) for a, b in pairs)
    p_chance = float(np.sum((counts / total) ** 2))
    expected = n_pairs * p_chance
    z = (n_equal - expected) / np.sqrt(max(expected * (1.0 - p_chance), 1e-12))
    metrics: dict[str, float] = {
        "distinct_symbols": float(k),
        "neighbour_equal_rate": n_equal / n_pairs,
        "chance_equal_rate": p_chance,
        "neighbour_equality_z": float(z),
    }
    table: dict[Any, int] | None = None
    alternative: NDArray[np.uint8] | None = None

    if k > 256:
        image = np.zeros(shape, dtype=np.uint8)
        notes = (
            f"{k} distinct ciphertext symbols > 256: not a per-value substitution of 8-bit pixels "
            "(randomized encryption?); nothing recovered"
        )
        success = False
        coverage = 0.0
    else:
        adj = _cooccurrence(codes, k)
        # 2-3. seriation with peeling of wide-spread frequent symbols
        active = np.arange(k)
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
        order = active[sub_order]

        gray = np.zeros(k, dtype=np.int64)
        residual = ref * total
        for p in sorted(peeled, key=lambda s: -counts[s]):
            window = np.convolve(residual, np.ones(3), mode="same")
            level = int(np.argmin(np.abs(np.log((window + 1e-9) / counts[p]))))
            gray[p] = level
            sl = slice(max(level - 1, 0), level + 2)
            residual[sl] = np.maximum(residual[sl] * (1.0 - counts[p] / max(window[level], 1e-9)), 0.0)
        if not residual.sum() > 0:
            residual = np.ones(256)
        rres = residual / residual.sum()
        cdf = np.cumsum(rres)

        # 4-5. histogram matching along both directions, orientation by log-mass correlation
        candidates = []
        for direction in (order, order[::-1]):
            mass = counts[direction] / counts[direction].sum()
            mid = np.cumsum(mass) - mass / 2.0
            levels = np.clip(np.searchsorted(cdf, mid), 0, 255)
            candidates.append((_log_corr(mass, rres[levels]), direction, levels))
        candidates.sort(key=lambda x: -x[0])
        renders = []
        for _, direction, levels in candidates:
            g = gray.copy()
            g[direction] = levels
            renders.append(g)
        gray = renders[0]
        image = gray[codes].astype(np.uint8)
        alternative = renders[1][codes].astype(np.uint8)
        metrics["orientation_score"] = candidates[0][0]
        metrics["orientation_score_alternative"] = candidates[1][0]
        metrics["peeled_symbols"] = float(len(peeled))
        success = bool(z > 6.0)
        coverage = 1.0
        notes = (
            f"{k} symbols ordered by spectral seriation of adjacency ({len(peeled)} peeled), "
            "levels by histogram matching; "
            + (
                "input looks like a substitution"
                if success
                else "neighbours not more equal than chance: input does not look like a substitution "
                "of a natural image, result is noise"
            )
        )
        table = {s: int(v) for s, v in zip(symbols, gray.tolist())}

    if truth is not None:
        t = np.asarray(truth)
        if t.shape != shape:
            raise ImageFormatError(f"truth has shape {t.shape}, cipher_images {shape}")

        def score(img: NDArray[np.uint8]) -> tuple[float, float]:
            if len(shape) == 2:
                return psnr(t, img), ssim(t, img)
            return (
                float(np.mean([psnr(a, b) for a, b in zip(t, img)])),
                float(np.mean([ssim(a, b) for a, b in zip(t, img)])),
            )

        metrics["psnr"], metrics["ssim"] = score(image)
        if alternative is not None:
            metrics["psnr_alternative"], metrics["ssim_alternative"] = score(alternative)
    return AttackResult(
        image=image,
        success=success,
        coverage=coverage,
        seconds=time.perf_counter() - t0,
        notes=notes,
        name="substitution_ciphertext_only",
        table=table,
        metrics=metrics,
        alternative=alternative,
    )


# --------------------------------------------------------------------------- textbook RSA


def attack_rsa_dictionary(cipher_ints: ArrayLike, e: int, N: int) -> AttackResult:
    """Textbook RSA is deterministic: encrypt 0..255 with the public key (e, N) and look up.

    ``success`` means every ciphertext was found (padded/randomized RSA gives coverage ~0).
    """
    t0 = time.perf_counter()
    e = _positive_int(e, "e", minimum=1)
    N = _positive_int(N, "N", minimum=257)
    table = {int(gmpy2.powmod(v, e, N)): v for v in range(256)}
    if len(table) != 256:
        raise ValueError("the public key maps two pixel values to one ciphertext: (e, N) is not an RSA key")
    shape, flat = _cipher_ints(cipher_ints)
    res = apply_table(np.array([int(c) for c in flat], dtype=object).reshape(shape), table)
    res.seconds = time.perf_counter() - t0
    res.name = "rsa_dictionary"
    res.notes = "textbook RSA: dictionary of E(0..255) under the public key; " + res.notes
    return res


# --------------------------------------------------------------------------- LWE with reused randomness


def attack_lwe_fixed(
    b_values: ArrayLike,
    q: int,
    t: int,
    known_index: int | Sequence[int],
    known_value: int,
    noise_tolerance: int = 0,
) -> AttackResult:
    """Recover an image encrypted as b_i = <a, s> + e + Delta * m_i mod q with (a, e) reused.

    Delta = floor(q / t).  Then b_i - b_ref = Delta (m_i - m_ref) mod q, so with one known
    pixel every m_i = round(((b_i - b_ref + Delta m_ref) mod q) / Delta) mod t.  Pixels whose
    residual exceeds ``noise_tolerance`` (0: exact, for a reused e; a small positive
    value also breaks a reused ``a`` with fresh small noise) or whose value is > 255 are
    inconsistent; ``success`` means every pixel is consistent.
    """
    t0 = time.perf_counter()
    q = _positive_int(q, "q", minimum=2)
    t = _positive_int(t, "t", minimum=2)
    if t > q:
        raise ValueError(f"plaintext modulus t={t} exceeds ciphertext modulus q={q}")
    delta = q // t
    tol = _positive_int(noise_tolerance, "noise_tolerance", minimum=0)
    shape, flat = _cipher_ints(b_values, "b_values")
    ref_i = _flat_index(known_index, shape)
    m_ref = _check_pixel_value(known_value, upper=min(t - 1, 255))
    b_ref = int(flat[ref_i])
    half_q = q // 2
    values = np.empty(len(flat), dtype=np.int64)
    consistent = np.empty(len(flat), dtype=bool)
    shift = delta * m_ref - b_ref
    for i, b in enumerate(flat):
        d = (int(b) + shift) % q  # = Delta * m_i (+ noise) mod q
        m = ((d + delta // 2) // delta) % t
        r = (d - delta * m) % q
        if r > half_q:
            r -= q
        ok = abs(r) <= tol and m <= 255
        consistent[i] = ok
        values[i] = m if ok else min(m, 255)
    success = bool(consistent.all())
    notes = (
        "LWE with reused (a, e): b_i - b_ref = Delta (m_i - m_ref) mod q; every pixel consistent"
        if success
        else f"only {consistent.sum()}/{consistent.size} pixels consistent: (a, e) not reused (fresh randomness?)"
    )
    return AttackResult(
        image=values.astype(np.uint8).reshape(shape),
        success=success,
        coverage=float(consistent.mean()),
        seconds=time.perf_counter() - t0,
        notes=notes,
        name="lwe_fixed",
    )


#: Alias under the longer descriptive name.
attack_lwe_fixed_randomness = attack_lwe_fixed
