"""Statistics of rendered cipher images per regime: the tables of notebook 02."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ppdl_utils.images.encryption import ImageEncryptor
from ppdl_utils.images.metrics import adjacent_correlation, npcr_uaci, shannon_entropy
from ppdl_utils.crypto.paillier import PaillierPrivateKey, generate_keypair, security_bits
from ppdl_utils.crypto.regimes import Regime

DIRECTIONS = ("horizontal", "vertical", "diagonal")


def image_statistics(image: np.ndarray) -> dict[str, float]:
    """Entropy and adjacent-pixel correlations of one 8-bit image."""
    stats = {"entropy_bits": shannon_entropy(image)}
    for direction in DIRECTIONS:
        stats[f"corr_{direction}"] = adjacent_correlation(image, direction)
    return stats


def one_pixel_change(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """The differential-attack input: the same image with one random pixel changed by 1."""
    rng = np.random.default_rng(seed)
    changed = image.copy()
    y, x = rng.integers(image.shape[0]), rng.integers(image.shape[1])
    changed[y, x] = changed[y, x] + 1 if changed[y, x] < 255 else 254
    return changed


def cipher_metrics_table(images: np.ndarray, encryptors: dict[Regime, ImageEncryptor],
                         renderer: str = "mod256", progress: bool = True) -> pd.DataFrame:
    """Mean entropy, correlations, NPCR and UACI over `images`, for the plain images and each regime.

    NPCR/UACI compare the cipher images of an image and of its one-pixel change: a deterministic
    substitution changes ~1 pixel (NPCR ~ 0%), a randomized encryption changes almost all (~99.6%).
    """
    rows = [{"regime": "plain", **_mean([image_statistics(img) for img in images])}]
    for regime, encryptor in tqdm(encryptors.items(), desc="regimes", disable=not progress):
        ciphers = encryptor.encrypt_rendered(images, renderer, progress=False)
        changed = encryptor.encrypt_rendered(
            np.stack([one_pixel_change(img, i) for i, img in enumerate(images)]), renderer, progress=False)
        diffs = [npcr_uaci(a, b) for a, b in zip(ciphers, changed)]
        rows.append({"regime": regime.label, **_mean([image_statistics(c) for c in ciphers]),
                     "npcr_percent": float(np.mean([d[0] for d in diffs])),
                     "uaci_percent": float(np.mean([d[1] for d in diffs]))})
    return pd.DataFrame(rows).set_index("regime")


def _mean(dicts: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([d[key] for d in dicts])) for key in dicts[0]}


def cost_table(images: np.ndarray, key_sizes: list[int], regimes: list[Regime],
               keys: dict[int, PaillierPrivateKey] | None = None, workers: int = 1,
               progress: bool = True) -> pd.DataFrame:
    """Seconds and ciphertext bytes per image, per regime and key size (one process by default).

    Deterministic regimes count the one-off table cost separately from the per-image lookup.
    """
    keys = dict(keys or {})
    rows = []
    for bits in tqdm(key_sizes, desc="key sizes", disable=not progress):
        key = keys.get(bits) or generate_keypair(bits)
        for regime in regimes:
            start = time.perf_counter()
            encryptor = ImageEncryptor(key, regime)
            setup = time.perf_counter() - start
            start = time.perf_counter()
            for image in images:
                encryptor.encrypt(image)
            per_image = (time.perf_counter() - start) / len(images)
            rows.append({"modulus_bits": bits, "security_bits": security_bits(bits),
                         "regime": regime.label, "setup_s": setup, "seconds_per_image": per_image,
                         "ciphertext_bytes_per_image": images[0].size * key.public.ciphertext_nbytes,
                         "plaintext_bytes_per_image": images[0].size,
                         "pixels": images[0].size})
    return pd.DataFrame(rows)
