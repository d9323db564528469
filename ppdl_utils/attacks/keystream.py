"""Known-pair attacks on stream ciphers that reuse one keystream for every image.

A stream cipher adds a keystream k to the pixels, by XOR (AES-CTR, any XOR stream) or by addition
mod 256 (a gray-level shift such as LWE with reused randomness, rendered).  When every image gets
the same k -- a reused nonce, a fixed key stream -- one known (plain, cipher) pair gives k, and k
decrypts every other image: m = c XOR c_pair XOR m_pair, or m = c - c_pair + m_pair mod 256.  With
a fresh keystream per image the result is noise, and the evaluator's SSIM says so.
"""
from __future__ import annotations

import time

import numpy as np

from ppdl_utils.attacks.base import AttackResult
from ppdl_utils.errors import ImageFormatError
from ppdl_utils.images.encryption import validate_images

__all__ = ["known_pair_keystream_attack"]


def known_pair_keystream_attack(pair_cipher: np.ndarray, pair_plain: np.ndarray, test_ciphers: np.ndarray,
                                combine: str = "xor") -> list[AttackResult]:
    """Recover every test image with the keystream of one known pair (``combine``: "xor" or "add").

    ``success`` cannot be decided from public data (any byte string decrypts to some image): it is
    True for every image, and only the evaluator's scores tell a recovery from noise."""
    pair_cipher = validate_images(pair_cipher, "pair_cipher").astype(np.int64)
    pair_plain = validate_images(pair_plain, "pair_plain").astype(np.int64)
    tests = validate_images(test_ciphers, "test_ciphers", batch=True).astype(np.int64)
    if pair_cipher.shape != pair_plain.shape or tests.shape[1:] != pair_plain.shape:
        raise ImageFormatError(f"the known pair ({pair_plain.shape}, {pair_cipher.shape}) and the test images "
                               f"({tests.shape[1:]}) must have one shape")
    if combine not in ("xor", "add"):
        raise ValueError(f"combine must be 'xor' or 'add', got {combine!r}")
    results = []
    for cipher in tests:
        t0 = time.perf_counter()
        image = cipher ^ pair_cipher ^ pair_plain if combine == "xor" else (cipher - pair_cipher + pair_plain) % 256
        results.append(AttackResult(image=image.astype(np.uint8), success=True, coverage=1.0,
                                    seconds=time.perf_counter() - t0, name=f"keystream_{combine}",
                                    notes=f"keystream of one known pair ({combine}) applied to the image"))
    return results
