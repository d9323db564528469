"""Statistics of rendered cipher images per regime: the tables of notebook 02."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, generate_keypair, security_bits
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.errors import WrongKeyError
from ppdl_utils.images.encryption import ImageEncryptor
from ppdl_utils.images.metrics import adjacent_correlation, npcr_uaci, shannon_entropy

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
        # measurement keys, never saved: the table labels each size's security level
        key = keys.get(bits) or generate_keypair(bits, allow_insecure=True)
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


@dataclass(frozen=True)
class ROneRendering:
    """How ``c mod 256`` renders the ``r_one`` ciphertexts c = 1 + n·m of one key.

    c mod 256 = 1 + a·m mod 256 with a = n mod 256: an affine map of the gray level m. n is odd,
    so a is odd and invertible mod 256: the map is a bijection that anyone holding the public n
    undoes, m = (y − 1)·a⁻¹ mod 256. What the eye sees depends on a alone, through `step`.
    """

    n_mod_256: int
    step: int  # a as a signed residue in (-128, 128]: gray levels m and m+1 land `step` apart
    inverse: int  # a⁻¹ mod 256

    @property
    def looks(self) -> str:
        """What the rendered image shows to the eye. Thresholds were read off renderings of the
        64-px synthetic X-rays for every odd a (smoother real X-rays stay visible a little longer)."""
        s = abs(self.step)
        if s == 1:
            return "the X-ray itself" if self.step == 1 else "the X-ray's negative"
        if s <= 5:
            return f"the X-ray plainly, cut into {s} contour bands"
        if s <= 11:
            return "the X-ray's outline under a fine grain"
        if abs(_signed(2 * self.n_mod_256)) <= 2:  # a ≈ ±128: every second gray level lines up
            return "the X-ray's outline under alternating stripes"
        return "only noise to the eye"

    def decode(self, rendered: np.ndarray) -> np.ndarray:
        """The plain image back from its rendering, with the public n only."""
        return (((np.asarray(rendered, dtype=np.int64) - 1) * self.inverse) % 256).astype(np.uint8)

    def sentence(self) -> str:
        """One sentence for a notebook: what the r_one column shows under this key, and why."""
        return (f"Under this key n mod 256 = {self.n_mod_256} (odd, as every Paillier n is), so the r_one "
                f"column is y = 1 + {self.n_mod_256}·m mod 256: neighbouring gray levels land "
                f"{abs(self.step)} apart{' (wrapping around 256)' if abs(self.step) > 1 else ''}, and the "
                f"picture shows {self.looks}. Whatever it looks like, it is no encryption: anyone with the "
                f"public n reads m = (y − 1)·{self.inverse} mod 256 off the rendering.")


def _signed(value: int) -> int:
    """`value` mod 256 as a residue in (-128, 128]."""
    value %= 256
    return value - 256 if value > 128 else value


def r_one_rendering(public: PaillierPublicKey) -> ROneRendering:
    """The affine map ``c mod 256`` applies to gray levels under `public` in the r_one regime."""
    a = public.n % 256
    if a % 2 == 0:
        raise WrongKeyError(f"n mod 256 = {a} is even: the key {public.fingerprint} has no Paillier modulus "
                            "(n = p·q with odd primes)")
    return ROneRendering(n_mod_256=a, step=_signed(a), inverse=pow(a, -1, 256))
