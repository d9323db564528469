"""Algebraic attacks: what the public key and the scheme's structure give away, pixel by pixel.

Every attack here is a pure function of *public* values (ciphertexts, the public
key, at most one known pixel or one known image pair, a public reference
histogram); none of them touches a private key.  Each returns an
:class:`AttackResult` whose ``success`` flag is computed from the data:
when the input was not produced by the regime the attack targets (above all the
semantically secure ``randomized`` regime) the attack says so instead of
returning a silently wrong image.

* :func:`attack_r_one` -- Paillier with r = 1: m = (c - 1) / n, public key only.
* :func:`attack_fixed_r` -- Paillier with one reused r, plus one known pixel.
* :func:`attack_r_one_rendered` -- the same on ``c mod 256`` renderings (n mod 256 is public).
* :func:`attack_rsa_dictionary` -- textbook (unpadded) RSA: encrypt 0..255, look up.
* :func:`attack_lwe_fixed` -- LWE/BFV-style encryption with reused (a, e).
"""
from __future__ import annotations

import time
from collections.abc import Sequence

import gmpy2
import numpy as np
from numpy.typing import ArrayLike

from ppdl_utils.attacks.base import AttackResult, as_cipher_ints, check_pixel_value, flat_index, positive_int
from ppdl_utils.attacks.substitution import apply_table
from ppdl_utils.errors import CiphertextError
from ppdl_utils.images.encryption import validate_images
from ppdl_utils.images.metrics import adjacent_correlation

#: Plausibility check of an algebraic inversion: a natural image has adjacent-pixel correlation
#: far above this; noise or a scrambled image does not.
MIN_PLAUSIBLE_CORRELATION = 0.5

__all__ = ["AttackResult", "attack_r_one", "attack_r_one_rendered", "attack_fixed_r", "attack_rsa_dictionary",
           "attack_lwe_fixed", "attack_lwe_fixed_randomness", "MIN_PLAUSIBLE_CORRELATION"]

# --------------------------------------------------------------------------- Paillier r = 1


def attack_r_one(cipher_ints: ArrayLike, n: int) -> AttackResult:
    """Decrypt Paillier ``r_one`` ciphertexts with the public ``n`` alone: m = (c - 1) / n.

    Raises ValueError when some c - 1 is not divisible by n (the input is not
    ``r_one``) or a recovered value is outside 0..255.
    """
    t0 = time.perf_counter()
    n = positive_int(n, "n", minimum=3)
    nn = gmpy2.mpz(n)
    shape, flat = as_cipher_ints(cipher_ints)
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
    n = positive_int(n, "n", minimum=3)
    shape, flat = as_cipher_ints(cipher_ints)
    ref_i = flat_index(known_index, shape)
    m_ref = check_pixel_value(known_value)
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


def attack_r_one_rendered(rendered: np.ndarray, n: int) -> AttackResult:
    """``c mod 256`` of Paillier ``r_one``: c = 1 + n m, so (c mod 256) = 1 + (n mod 256) m (mod 256)
    and m = (x - 1) (n mod 256)^-1 mod 256 with the public key alone (n is odd).

    ``success``: the result looks like a natural image (adjacent-pixel correlation > 0.5), a check
    on public data; a rendering of another regime gives a scrambled image and fails it.
    """
    t0 = time.perf_counter()
    x = validate_images(rendered, "rendered").astype(np.int64)
    inv = pow(int(n) % 256, -1, 256)
    image = (((x - 1) * inv) % 256).astype(np.uint8)
    corr = adjacent_correlation(image)
    ok = bool(np.isfinite(corr) and corr > MIN_PLAUSIBLE_CORRELATION)
    return AttackResult(image=image, success=ok, coverage=1.0, seconds=time.perf_counter() - t0,
                        notes=f"m = (x - 1) * n^-1 mod 256; adjacent correlation {corr:.2f}",
                        name="r_one_rendered")


# --------------------------------------------------------------------------- textbook RSA


def attack_rsa_dictionary(cipher_ints: ArrayLike, e: int, N: int) -> AttackResult:
    """Textbook RSA is deterministic: encrypt 0..255 with the public key (e, N) and look up.

    ``success`` means every ciphertext was found (padded/randomized RSA gives coverage ~0).
    """
    t0 = time.perf_counter()
    e = positive_int(e, "e", minimum=1)
    N = positive_int(N, "N", minimum=257)
    table = {int(gmpy2.powmod(v, e, N)): v for v in range(256)}
    if len(table) != 256:
        raise ValueError("the public key maps two pixel values to one ciphertext: (e, N) is not an RSA key")
    shape, flat = as_cipher_ints(cipher_ints)
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
    q = positive_int(q, "q", minimum=2)
    t = positive_int(t, "t", minimum=2)
    if t > q:
        raise ValueError(f"plaintext modulus t={t} exceeds ciphertext modulus q={q}")
    delta = q // t
    tol = positive_int(noise_tolerance, "noise_tolerance", minimum=0)
    shape, flat = as_cipher_ints(b_values, "b_values")
    ref_i = flat_index(known_index, shape)
    m_ref = check_pixel_value(known_value, upper=min(t - 1, 255))
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
