"""Image "ciphers" of the kind the privacy-preserving-learning literature uses, written from their
published descriptions, so that the claim audit (``ppdl_utils.analysis.audit``) can measure them.

Every cipher maps a stack of uint8 images ``(N, H, W)`` to a stack of the same shape and dtype,
under a key drawn with :mod:`secrets`.  AES comes from ``cryptography``; nothing here re-implements
a block cipher.

* :func:`logistic_encrypt` -- a chaotic permutation + diffusion cipher: the logistic map
  x <- r x (1 - x) (key x0, r) orders the pixels (Fridrich 1998's permutation-then-diffusion
  structure) and gives the keystream k_i = floor(x_i 1e14) mod 256 of the chained diffusion
  c_i = k_i XOR ((p_i + c_{i-1}) mod 256), run forward and then backward so that one changed pixel
  changes every cipher pixel: textbook entropy, NPCR and UACI.  Deterministic.
* :func:`aes_ecb_encrypt` -- AES-128 in ECB mode over the image's bytes, 16 pixels (row-major) per
  block.  Deterministic: equal blocks give equal cipher blocks (the "ECB penguin").
* :func:`aes_ctr_encrypt` -- AES-128 in CTR mode, the keystream XORed onto the pixels.  With a fresh
  random nonce per image (``reuse_nonce=False``) it is the secure reference; with one nonce for every
  image (``reuse_nonce=True``, the key's nonce) it is a two-time pad: c XOR c' = m XOR m'.
* :func:`permutation_encrypt` -- a secret permutation of the pixel positions (scrambling schemes):
  the histogram, and every statistic of it, is the plain image's.

Each has an exact inverse (``*_decrypt``): AES-CTR with fresh nonces needs the nonces, which a
client would send beside the image (16 bytes; the audit sees the image alone).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ppdl_utils.errors import ImageFormatError
from ppdl_utils.images.encryption import validate_images

__all__ = ["AES_BLOCK", "LogisticKey", "logistic_keygen", "logistic_encrypt", "logistic_decrypt", "AESKey",
           "aes_keygen", "aes_ecb_encrypt", "aes_ecb_decrypt", "aes_ctr_encrypt", "aes_ctr_decrypt",
           "PermutationKey", "permutation_keygen", "permutation_encrypt", "permutation_decrypt"]

AES_BLOCK = 16  # bytes (= pixels) per AES block


def _stack(images: np.ndarray) -> np.ndarray:
    return validate_images(images, "images", batch=True)


# --------------------------------------------------------------------------- chaotic (logistic map)


@dataclass(frozen=True)
class LogisticKey:
    """The secret of the chaotic cipher: the logistic map's start x0 and parameter r (chaotic for
    r in (3.57, 4]), and the diffusion's initial value c0.  Drawn by :func:`logistic_keygen`."""

    x0: float = field(repr=False)
    r: float = field(repr=False)
    c0: int = field(repr=False)

    def __post_init__(self) -> None:
        if not (0.0 < self.x0 < 1.0 and 3.57 < self.r <= 4.0 and 0 <= int(self.c0) <= 255):
            raise ValueError("LogisticKey needs 0 < x0 < 1, 3.57 < r <= 4 and 0 <= c0 <= 255")


def logistic_keygen() -> LogisticKey:
    """x0 uniform in (0.01, 0.99), r uniform in [3.99, 4.0), c0 a uniform byte (52-bit draws from `secrets`)."""
    unit = secrets.randbits(52) / 2**52
    return LogisticKey(x0=0.01 + 0.98 * unit, r=3.99 + 0.01 * secrets.randbits(52) / 2**52,
                       c0=secrets.randbelow(256))


_BURN_IN = 1000  # iterates discarded, as the published schemes do, so that x0's neighbourhood is forgotten


@lru_cache(maxsize=16)
def _logistic_streams(x0: float, r: float, pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixel permutation (argsort of `pixels` iterates) and 2 x `pixels` keystream bytes
    (floor(x * 1e14) mod 256 of the following iterates: forward, then backward diffusion)."""
    x = x0
    for _ in range(_BURN_IN):
        x = r * x * (1.0 - x)
    values = np.empty(3 * pixels)
    for i in range(values.size):
        x = r * x * (1.0 - x)
        values[i] = x
    permutation = np.argsort(values[:pixels], kind="stable")
    keystream = (np.floor(values[pixels:] * 1e14) % 256).astype(np.int64)
    permutation.setflags(write=False)
    keystream.setflags(write=False)
    return permutation, keystream


def _diffuse(flat: np.ndarray, keystream: np.ndarray, c0: int) -> np.ndarray:
    """c_i = k_i XOR ((p_i + c_{i-1}) mod 256) along axis 1 (vectorized over images), c_{-1} = c0."""
    out = np.empty_like(flat)
    previous = np.full(len(flat), c0, dtype=np.int64)
    for i in range(flat.shape[1]):
        previous = keystream[i] ^ ((flat[:, i] + previous) % 256)
        out[:, i] = previous
    return out


def _undiffuse(cipher: np.ndarray, keystream: np.ndarray, c0: int) -> np.ndarray:
    """p_i = ((c_i XOR k_i) - c_{i-1}) mod 256."""
    previous = np.concatenate([np.full((len(cipher), 1), c0, dtype=np.int64), cipher[:, :-1]], axis=1)
    return ((cipher ^ keystream[None, :]) - previous) % 256


def logistic_encrypt(images: np.ndarray, key: LogisticKey) -> np.ndarray:
    """Permute the pixels by the chaotic order, then diffuse forward and backward (see module doc)."""
    stack = _stack(images)
    n, h, w = stack.shape
    permutation, keystream = _logistic_streams(key.x0, key.r, h * w)
    flat = stack.reshape(n, h * w).astype(np.int64)[:, permutation]
    forward = _diffuse(flat, keystream[:h * w], key.c0)
    backward = _diffuse(forward[:, ::-1], keystream[h * w:], key.c0)[:, ::-1]
    return backward.astype(np.uint8).reshape(n, h, w)


def logistic_decrypt(images: np.ndarray, key: LogisticKey) -> np.ndarray:
    """The exact inverse of :func:`logistic_encrypt`."""
    stack = _stack(images)
    n, h, w = stack.shape
    permutation, keystream = _logistic_streams(key.x0, key.r, h * w)
    backward = stack.reshape(n, h * w).astype(np.int64)
    forward = _undiffuse(backward[:, ::-1], keystream[h * w:], key.c0)[:, ::-1]
    flat = _undiffuse(forward, keystream[:h * w], key.c0)
    plain = np.empty_like(flat)
    plain[:, permutation] = flat
    return plain.astype(np.uint8).reshape(n, h, w)


# --------------------------------------------------------------------------- AES (from `cryptography`)


@dataclass(frozen=True)
class AESKey:
    """A 128-bit AES key and the one nonce a nonce-reusing CTR client uses for every image."""

    key: bytes = field(repr=False)
    nonce: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) not in (16, 24, 32) or len(self.nonce) != AES_BLOCK:
            raise ValueError("AESKey needs a 16-, 24- or 32-byte key and a 16-byte nonce")


def aes_keygen() -> AESKey:
    return AESKey(key=secrets.token_bytes(16), nonce=secrets.token_bytes(AES_BLOCK))


def _check_blocks(stack: np.ndarray) -> None:
    if stack.shape[1] * stack.shape[2] % AES_BLOCK:
        raise ImageFormatError(f"AES-ECB encrypts whole 16-pixel blocks: images of {stack.shape[1]}x"
                               f"{stack.shape[2]} = {stack.shape[1] * stack.shape[2]} pixels are not a "
                               "multiple of 16 (resize them, e.g. to 32x32 or 64x64)")


def _ecb(stack: np.ndarray, key: AESKey, decrypt: bool) -> np.ndarray:
    _check_blocks(stack)
    cipher = Cipher(algorithms.AES(key.key), modes.ECB())
    worker = cipher.decryptor() if decrypt else cipher.encryptor()
    data = worker.update(np.ascontiguousarray(stack).tobytes()) + worker.finalize()
    return np.frombuffer(data, dtype=np.uint8).reshape(stack.shape).copy()


def aes_ecb_encrypt(images: np.ndarray, key: AESKey) -> np.ndarray:
    """AES-ECB over each image's row-major bytes: 16 pixels per block (H*W must be a multiple of 16)."""
    return _ecb(_stack(images), key, decrypt=False)


def aes_ecb_decrypt(images: np.ndarray, key: AESKey) -> np.ndarray:
    return _ecb(_stack(images), key, decrypt=True)


def _ctr_xor(image: np.ndarray, key: bytes, nonce: bytes) -> np.ndarray:
    worker = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    data = worker.update(np.ascontiguousarray(image).tobytes()) + worker.finalize()
    return np.frombuffer(data, dtype=np.uint8).reshape(image.shape)


def aes_ctr_encrypt(images: np.ndarray, key: AESKey, reuse_nonce: bool = False) -> tuple[np.ndarray, list[bytes]]:
    """AES-CTR per image: ``(cipher images, nonces)``.  A fresh random 16-byte nonce per image, or
    (``reuse_nonce``) the key's one nonce for every image -- the classic misuse: one keystream."""
    stack = _stack(images)
    nonces = [key.nonce if reuse_nonce else secrets.token_bytes(AES_BLOCK) for _ in range(len(stack))]
    out = np.stack([_ctr_xor(image, key.key, nonce) for image, nonce in zip(stack, nonces)]) if len(stack) \
        else stack.copy()
    return out, nonces


def aes_ctr_decrypt(images: np.ndarray, key: AESKey, nonces: list[bytes]) -> np.ndarray:
    """CTR decryption is the same XOR with the same keystream: one nonce per image."""
    stack = _stack(images)
    if len(nonces) != len(stack):
        raise ValueError(f"aes_ctr_decrypt needs one nonce per image: {len(stack)} images, {len(nonces)} nonces")
    return np.stack([_ctr_xor(image, key.key, nonce) for image, nonce in zip(stack, nonces)]) if len(stack) \
        else stack.copy()


# --------------------------------------------------------------------------- pixel permutation


@dataclass(frozen=True)
class PermutationKey:
    """256 secret bits that seed the permutation of each image size (PCG64: fine for a cipher that
    is broken by design; the positions, not the seed, are what the audit measures)."""

    seed: bytes = field(repr=False)


def permutation_keygen() -> PermutationKey:
    return PermutationKey(seed=secrets.token_bytes(32))


def _permutation(key: PermutationKey, pixels: int) -> np.ndarray:
    return np.random.default_rng(int.from_bytes(key.seed, "big")).permutation(pixels)


def permutation_encrypt(images: np.ndarray, key: PermutationKey) -> np.ndarray:
    """Move every pixel to a secret position (one permutation per key and image size)."""
    stack = _stack(images)
    n, h, w = stack.shape
    return stack.reshape(n, h * w)[:, _permutation(key, h * w)].reshape(n, h, w)


def permutation_decrypt(images: np.ndarray, key: PermutationKey) -> np.ndarray:
    stack = _stack(images)
    n, h, w = stack.shape
    plain = np.empty((n, h * w), dtype=np.uint8)
    plain[:, _permutation(key, h * w)] = stack.reshape(n, h * w)
    return plain.reshape(n, h, w)
