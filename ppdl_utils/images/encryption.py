"""Encrypting images pixel by pixel with Paillier under an explicit regime.

The client owns the images and the private key.  Deterministic regimes (``fixed_r``, ``r_one``,
``table``) are 256-entry substitutions: equal pixels give equal ciphertexts, which is what lets
a CNN learn from the rendered images and what makes them attackable (see ``attacks``).

The secret state of those regimes (the ``table`` regime's E(0..255), the ``fixed_r`` regime's r)
is recorded in the active secret registry (``ppdl_utils.secret_scan``) so that the output scan can
prove it never reaches a notebook, ``results/`` or a figure.  Paillier is malleable: encryption
gives confidentiality only; see ``crypto.bundle`` for integrity.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

import gmpy2
import numpy as np
from tqdm.auto import tqdm

from ppdl_utils import secret_scan
from ppdl_utils.crypto.cipher_array import PaillierArray
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, random_r, require_key_size
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.crypto.security import ParameterError
from ppdl_utils.errors import ImageFormatError
from ppdl_utils.images.render import render, render_with_table

PIXEL_LEVELS = 256


def validate_images(images: np.ndarray, name: str = "image", batch: bool = False) -> np.ndarray:
    """Check an 8-bit grayscale image (H, W) — or a stack (N, H, W) when `batch` — and return uint8."""
    arr = np.asarray(images)
    want = 3 if batch else 2
    if arr.ndim != want:
        shape = "(N, H, W)" if batch else "(H, W)"
        raise ImageFormatError(f"{name} must be a grayscale array of shape {shape}, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        raise ImageFormatError(f"{name} has float pixels ({arr.dtype}); encrypt integer pixels 0..255 "
                               "(convert with np.round(x * 255).astype(np.uint8) if it is scaled to [0, 1])")
    if arr.dtype.kind not in "iu":
        raise ImageFormatError(f"{name} must have an integer dtype, got {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ImageFormatError(f"{name} pixels must be in 0..255, found range [{arr.min()}, {arr.max()}]")
    return arr.astype(np.uint8, copy=False)


class ImageEncryptor:
    """Client-side encryption of uint8 images under one key and one regime.

    The secret state of a deterministic regime (the fixed r^n, or the table E(0..255)) is drawn
    once per encryptor: all images it encrypts share it, as in the papers' datasets.
    """

    def __init__(self, private: PaillierPrivateKey, regime: "Regime | str" = Regime.RANDOMIZED,
                 exponent_bits: int | None = -1, base: int | None = None) -> None:
        if not isinstance(private, PaillierPrivateKey):
            raise ParameterError(f"ImageEncryptor needs the client's private key, got {type(private).__name__}")
        require_key_size(private.public, "ImageEncryptor's private key")
        self.private = private
        self.public: PaillierPublicKey = private.public
        self.regime = Regime.parse(regime)
        self.fast = FastEncryptor(private, exponent_bits, base)
        self.table: np.ndarray | None = None
        if self.regime is not Regime.RANDOMIZED:
            self.table = self._deterministic_table()

    def _deterministic_table(self) -> np.ndarray:
        n, n2 = self.public.n, self.public.n_square
        values = range(PIXEL_LEVELS)
        if self.regime is Regime.R_ONE:
            entries = [1 + m * n for m in values]
        elif self.regime is Regime.FIXED_R:
            r = random_r(self.public)
            secret_scan.register_secret("fixed_r", "r", self.public.fingerprint, r)
            fixed = int(gmpy2.powmod(r, n, n2))  # the one r^n every pixel shares
            entries = [(1 + m * n) * fixed % n2 for m in values]
        else:  # TABLE: an independent randomized encryption per pixel value
            entries = [int(c) for c in self.fast.encrypt_many(np.arange(PIXEL_LEVELS))]
            secret_scan.register_secret("table", "E(0..255)", self.public.fingerprint, entries)
        table = np.empty(PIXEL_LEVELS, dtype=object)
        table[:] = entries
        return table

    def encrypt(self, image: np.ndarray) -> PaillierArray:
        """Full ciphertext array of one (H, W) image."""
        pixels = validate_images(image)
        if self.table is not None:
            return PaillierArray(self.table[pixels], self.public, self.regime.value)
        values = np.empty(pixels.size, dtype=object)
        values[:] = [int(c) for c in self.fast.encrypt_many(pixels)]
        return PaillierArray(values.reshape(pixels.shape), self.public, self.regime.value)

    def encrypt_rendered(self, images: np.ndarray, renderer: str = "mod256",
                         workers: int | None = None, progress: bool = True) -> np.ndarray:
        """Encrypt a stack (N, H, W) and render each ciphertext image to uint8 (N, H, W).

        Deterministic regimes use the table (fast, exact).  Randomized encryption runs on
        `workers` processes (default: all cores) with a progress bar.
        """
        stack = validate_images(images, "images", batch=True)
        if self.table is not None:
            return render_with_table(stack, self.table, self.public, renderer)
        workers = workers or os.cpu_count() or 1
        render(np.array([1], dtype=object), self.public, renderer)  # fail fast on a bad renderer
        bar = tqdm(total=len(stack), desc=f"encrypting ({self.regime.value})", unit="img",
                   disable=not progress)
        if workers == 1 or len(stack) == 1:
            out = []
            for image in stack:
                out.append(render(self.encrypt(image).values, self.public, renderer))
                bar.update()
            bar.close()
            return np.stack(out) if out else np.empty_like(stack)
        init = (self.private.p, self.private.q, self.fast.exponent_bits, self.fast.base, renderer,
                self.public.insecure_ok)
        out = np.empty_like(stack)
        # spawn, not fork: notebooks may have TensorFlow's thread pools running in this process
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=init) as pool:
            chunks = np.array_split(np.arange(len(stack)), min(len(stack), workers * 8))
            futures = {pool.submit(_render_chunk, stack[idx]): idx for idx in chunks if len(idx)}
            for future in as_completed(futures):
                out[futures[future]] = future.result()
                bar.update(len(futures[future]))
        bar.close()
        return out


_WORKER: dict = {}


def _init_worker(p: int, q: int, exponent_bits: int | None, base: int | None, renderer: str,
                 insecure_ok: bool = False) -> None:
    private = PaillierPrivateKey(PaillierPublicKey(p * q, insecure_ok=insecure_ok), p, q)
    _WORKER["encryptor"] = ImageEncryptor(private, Regime.RANDOMIZED, exponent_bits, base)
    _WORKER["renderer"] = renderer


def _render_chunk(images: np.ndarray) -> np.ndarray:
    encryptor: ImageEncryptor = _WORKER["encryptor"]
    return np.stack([render(encryptor.encrypt(image).values, encryptor.public, _WORKER["renderer"])
                     for image in images])
