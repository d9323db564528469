"""An audit for any "we trained on encrypted images" claim.

Papers support "privacy-preserving learning on encrypted images" with image-cipher statistics
(entropy near 8 bits, NPCR above 99.6%, UACI near 33%, adjacent-pixel correlation near 0).  Those
statistics do not imply security.  The audit measures what does, side by side with them, for any
encryption ``encrypt(images, key) -> images`` (uint8 ``(N, H, W)`` in, the same shape and dtype out)
or a folder of plain images with their encrypted counterparts:

* **learnability** -- notebook 03's recipe (the small CNN, Adam, the best-validation epoch
  restored) trained on the encrypted images; test accuracy with a 95% Wilson interval beside
  chance.  Above chance: the encryption passes class structure to whoever trains on it;
* **determinism and equality** -- the same image encrypted twice (in one call and in two); do equal
  plaintext pixels stay equal (P(equal cipher | equal plain) - P(equal cipher | unequal plain) over
  adjacent pixels); is the histogram kept (sorted bar heights).  Two images that differ in one pixel
  are the NPCR measurement below: a substitution changes one cipher pixel, a diffusion cipher all of
  them -- while staying deterministic;
* **a distinguishing game** (IND-CPA style) -- the adversary picks two images, learns from the
  encryption oracle, then guesses which one each fresh challenge encrypts; advantage 2 acc - 1 with
  its 95% interval: 0 for a secure scheme up to sampling error, 1 for a deterministic one;
* **what an attacker recovers** -- the kit's attacks where they apply (known pair and
  ciphertext-only substitution, one-known-pair keystream, and the algebraic attacks of the kit's own
  schemes on their full ciphertexts), scored by SSIM against the originals beside the prior (the
  mean training image);
* **the statistics papers report** -- entropy, NPCR, UACI, adjacent-pixel correlations;
* **a verdict** from the leak measurements only, never from the statistics.

The rule it embodies: an image encryption that a CNN can learn from is one that leaks; a secure one
puts the classifier at chance.  (The converse does not hold: a deterministic cipher whose diffusion
defeats a small CNN still leaks, and the determinism test and the game say so.)
"""
from __future__ import annotations

import hashlib
import importlib
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ppdl_utils.analysis.cipher_stats import DIRECTIONS, image_statistics, one_pixel_change
from ppdl_utils.attacks import suite
from ppdl_utils.attacks.keystream import known_pair_keystream_attack
from ppdl_utils.attacks.substitution import known_pair_attack
from ppdl_utils.crypto import lwe, rsa_textbook
from ppdl_utils.crypto.paillier import PaillierPrivateKey, generate_keypair
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.data.dataset import ImageDataset
from ppdl_utils.data.splits import stratified_split, stratified_subset
from ppdl_utils.errors import AuditError, DataError
from ppdl_utils.images import literature_ciphers as lit
from ppdl_utils.images.encryption import ImageEncryptor
from ppdl_utils.images.metrics import NPCR_EXPECTED, UACI_EXPECTED, npcr_uaci, shannon_entropy

__all__ = ["AuditedCipher", "AuditSettings", "AuditResult", "SCHEMES", "KIT_SCHEMES", "LITERATURE_SCHEMES",
           "make_cipher", "cipher_from_callable", "load_callable", "FolderPairs", "load_folder_pairs",
           "folder_cipher", "checked_encrypt", "check_encryption", "wilson_interval", "learnability",
           "determinism", "distinguishing_game", "attack_recovery", "paper_statistics", "verdict", "audit",
           "audit_table", "separation_table", "audit_figure", "TABLE_COLUMNS", "SEPARATION_COLUMNS"]


# --------------------------------------------------------------------------- what is audited


@dataclass
class AuditedCipher:
    """One encryption under audit.

    ``encrypt(images, key)`` maps uint8 ``(N, H, W)`` to uint8 ``(N, H, W)``, every image under the
    one ``key`` that ``keygen()`` draws (as a dataset is encrypted under one key).  ``oracle`` is
    False for a folder of stored pairs: nothing can be encrypted anew, so the determinism test, the
    game and NPCR/UACI are not measured.  ``full_attacks(key, test, knowledge)`` runs attacks on the
    scheme's full ciphertexts (the kit's schemes), returning scored ``AttackRun`` objects.
    ``secure_by_design``: what the construction is known to be (IND-CPA secure or not), for the
    table of which measurements separate the two; None for a cipher under audit.  ``slow``: up to seconds
    per image (randomized Paillier and LWE): learnability trains on a subset (:class:`AuditSettings`)."""

    name: str
    encrypt: Callable[[np.ndarray, Any], np.ndarray]
    keygen: Callable[[], Any] = field(default=lambda: secrets.token_bytes(32))
    family: str = "user"
    description: str = ""
    oracle: bool = True
    secure_by_design: bool | None = None
    slow: bool = False
    full_attacks: Callable[[Any, np.ndarray, suite.AttackerKnowledge], list[suite.AttackRun]] | None = None


def _identity(images: np.ndarray, key: Any) -> np.ndarray:
    return np.array(images, dtype=np.uint8, copy=True)


def _paillier(regime: Regime, bits: int, key: PaillierPrivateKey | None) -> AuditedCipher:
    def keygen() -> ImageEncryptor:  # the regime's secret (table, fixed r) is drawn per encryptor
        # a key below 2048 bits (quick runs, tests) is labelled insecure: the audit measures, it protects nothing
        return ImageEncryptor(key or generate_keypair(bits, allow_insecure=bits < 2048), regime)

    def full(encryptor: ImageEncryptor, test: np.ndarray, knowledge) -> list[suite.AttackRun]:
        runs = suite.paillier_attacks(encryptor.private, regime, test, knowledge)
        return [r for r in runs if r.input == "full ciphertexts" and "algebra" in r.attack]

    return AuditedCipher(f"paillier-{regime.value}",
                         lambda images, enc: enc.encrypt_rendered(images, "mod256", workers=1, progress=False),
                         keygen, "kit", f"Paillier {regime.label}, c mod 256 (what the papers feed a CNN)",
                         secure_by_design=regime is Regime.RANDOMIZED, slow=regime is Regime.RANDOMIZED,
                         full_attacks=full)


def _lwe(regime: Regime, params: lwe.LWEParams) -> AuditedCipher:
    def encrypt(images: np.ndarray, key: lwe.LWESecretKey) -> np.ndarray:
        # the message slot of b: (b // Delta) mod 256; a fresh a per pixel makes it uniform, a reused one a shift
        out = [(np.asarray(lwe.encrypt(key, image.astype(np.int64), regime).b) // params.delta) % 256
               for image in np.asarray(images)]
        return np.asarray(out, dtype=np.uint8).reshape(np.shape(images))

    def full(key: lwe.LWESecretKey, test: np.ndarray, knowledge) -> list[suite.AttackRun]:
        return [r for r in suite.lwe_attacks(key, regime, test, knowledge) if r.attack.startswith("reused")]

    name = "lwe-fixed" if regime is Regime.FIXED_R else "lwe-randomized"
    label = "reused (a, e): deterministic, NOT secure" if regime is Regime.FIXED_R else "fresh (a, e) per pixel"
    return AuditedCipher(name, encrypt, lambda: lwe.keygen(params), "kit",
                         f"LWE ({params.name}) {label}; the b part's message slot (b // Delta) mod 256",
                         secure_by_design=regime is Regime.RANDOMIZED, slow=regime is Regime.RANDOMIZED,
                         full_attacks=full)


def _rsa(bits: int) -> AuditedCipher:
    def encrypt(images: np.ndarray, key: rsa_textbook.RSAPrivateKey) -> np.ndarray:
        table = np.array([int(c) & 0xFF for c in rsa_textbook.encrypt(key.public, np.arange(256, dtype=np.uint8))],
                         dtype=np.uint8)
        return table[np.asarray(images, dtype=np.uint8)]

    def full(key: rsa_textbook.RSAPrivateKey, test: np.ndarray, knowledge) -> list[suite.AttackRun]:
        return [r for r in suite.rsa_attacks(key, test, knowledge) if r.attack.startswith("dictionary")]

    return AuditedCipher("rsa-textbook", encrypt, lambda: rsa_textbook.keygen(bits), "kit",
                         "textbook RSA c = m^e mod N, c mod 256 (deterministic)", secure_by_design=False,
                         full_attacks=full)


def _literature() -> dict[str, AuditedCipher]:
    return {
        "logistic-chaotic": AuditedCipher(
            "logistic-chaotic", lit.logistic_encrypt, lit.logistic_keygen, "literature",
            "logistic-map permutation + forward/backward chained diffusion (deterministic)", secure_by_design=False),
        "aes-ecb": AuditedCipher("aes-ecb", lit.aes_ecb_encrypt, lit.aes_keygen, "literature",
                                 "AES-128-ECB over 16-pixel row-major blocks", secure_by_design=False),
        "aes-ctr-reused-nonce": AuditedCipher(
            "aes-ctr-reused-nonce", lambda images, key: lit.aes_ctr_encrypt(images, key, reuse_nonce=True)[0],
            lit.aes_keygen, "literature", "AES-128-CTR, one nonce for every image (one keystream)",
            secure_by_design=False),
        "pixel-permutation": AuditedCipher("pixel-permutation", lit.permutation_encrypt, lit.permutation_keygen,
                                           "literature", "a secret permutation of the pixel positions",
                                           secure_by_design=False),
        "aes-ctr": AuditedCipher("aes-ctr", lambda images, key: lit.aes_ctr_encrypt(images, key)[0], lit.aes_keygen,
                                 "reference", "AES-128-CTR, a fresh random nonce per image (the secure reference)",
                                 secure_by_design=True),
    }


KIT_SCHEMES = ("plain", "paillier-randomized", "paillier-fixed_r", "paillier-r_one", "paillier-table", "lwe-fixed",
               "lwe-randomized", "rsa-textbook")
LITERATURE_SCHEMES = ("logistic-chaotic", "aes-ecb", "aes-ctr-reused-nonce", "pixel-permutation", "aes-ctr")
SCHEMES = KIT_SCHEMES + LITERATURE_SCHEMES


def make_cipher(name: str, paillier_bits: int = 2048, rsa_bits: int = 2048, lwe_params: lwe.LWEParams = lwe.DEFAULT,
                paillier_key: PaillierPrivateKey | None = None) -> AuditedCipher:
    """A scheme of :data:`SCHEMES` by name (``paillier-<regime>`` also accepts the bare regime name)."""
    if name in {r.value for r in Regime}:
        name = f"paillier-{name}"
    if name == "plain":
        return AuditedCipher("plain", _identity, lambda: None, "reference", "no encryption (the upper bound)",
                             secure_by_design=False)
    if name.startswith("paillier-") and name.removeprefix("paillier-") in {r.value for r in Regime}:
        return _paillier(Regime.parse(name.removeprefix("paillier-")), paillier_bits, paillier_key)
    if name in ("lwe-fixed", "lwe-randomized"):
        return _lwe(Regime.FIXED_R if name == "lwe-fixed" else Regime.RANDOMIZED, lwe_params)
    if name == "rsa-textbook":
        return _rsa(rsa_bits)
    literature = _literature()
    if name in literature:
        return literature[name]
    raise AuditError(f"unknown scheme {name!r}; expected one of {', '.join(SCHEMES)} (or pass a callable)")


def load_callable(spec: str, what: str = "--encrypt") -> Callable:
    """``"package.module:function"`` -> the function (the module must be importable)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AuditError(f"{what} {spec!r} must look like 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AuditError(f"{what} {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise AuditError(f"{what} {spec!r}: module {module_name!r} has no callable {attribute!r}")
    return function


def cipher_from_callable(encrypt: Callable[[np.ndarray, Any], np.ndarray], keygen: Callable[[], Any] | None = None,
                         name: str | None = None, description: str = "") -> AuditedCipher:
    """A user's ``encrypt(images, key) -> images``; without ``keygen`` the key is 32 random bytes."""
    if not callable(encrypt):
        raise AuditError(f"encrypt must be callable, got {type(encrypt).__name__}")
    return AuditedCipher(name or getattr(encrypt, "__name__", "user cipher"), encrypt,
                         keygen or (lambda: secrets.token_bytes(32)), "user", description or "a user-supplied callable")


# --------------------------------------------------------------------------- folders of pairs


@dataclass
class FolderPairs:
    """Plain images and their stored encrypted counterparts, paired by relative path (stem).
    ``labels``/``class_names`` come from class sub-folders when every file sits in one."""

    plain: np.ndarray
    encrypted: np.ndarray
    files: list[str]
    labels: np.ndarray | None
    class_names: list[str]

    def dataset(self, name: str) -> ImageDataset:
        labels = self.labels if self.labels is not None else np.zeros(len(self.plain), dtype=np.int64)
        names = self.class_names or ["unlabelled"]
        return ImageDataset(self.plain, labels, names, paths=self.files, source="folder", name=name)


_IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".pgm", ".jpg", ".jpeg"}


def _image_files(root: Path, what: str) -> dict[str, Path]:
    if not root.is_dir():
        raise DataError(f"{what} {root} is not a folder")
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in _IMAGE_SUFFIXES:
            key = str(path.relative_to(root).with_suffix(""))
            if key in files:
                raise DataError(f"{what} {root} holds two images named {key!r} ({files[key].name}, {path.name}): "
                                "pairs are matched by name without extension")
            files[key] = path
    if not files:
        raise DataError(f"{what} {root} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))})")
    return files


def _read_gray(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        if img.mode not in ("L", "P", "1", "I;16") and img.mode != "RGB":
            raise DataError(f"{path}: mode {img.mode} is not an 8-bit grayscale image")
        if img.mode == "RGB":
            raise DataError(f"{path} is an RGB image; the audit reads 8-bit grayscale (mode L) images")
        return np.asarray(img.convert("L"), dtype=np.uint8)


def load_folder_pairs(plain_dir: "str | Path", encrypted_dir: "str | Path") -> FolderPairs:
    """Pair ``plain_dir/<rel>/<stem>.*`` with ``encrypted_dir/<rel>/<stem>.*``; every file needs its
    counterpart, and each pair one size (all pairs one size)."""
    plain_root, enc_root = Path(plain_dir), Path(encrypted_dir)
    plain_files, enc_files = _image_files(plain_root, "plain_dir"), _image_files(enc_root, "encrypted_dir")
    missing = sorted(set(plain_files) - set(enc_files))
    extra = sorted(set(enc_files) - set(plain_files))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} plain image(s) have no encrypted counterpart in {enc_root} "
                         f"(e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} encrypted image(s) have no plain original in {plain_root} "
                         f"(e.g. {', '.join(extra[:3])})")
        raise DataError("the folders do not pair up: " + "; ".join(parts))
    keys = sorted(plain_files)
    plain, encrypted = [], []
    for key in keys:
        p, c = _read_gray(plain_files[key]), _read_gray(enc_files[key])
        if p.shape != c.shape:
            raise DataError(f"pair {key!r}: {plain_files[key]} is {p.shape[1]}x{p.shape[0]} px but "
                            f"{enc_files[key]} is {c.shape[1]}x{c.shape[0]} px")
        if plain and p.shape != plain[0].shape:
            raise DataError(f"{plain_files[key]} is {p.shape[1]}x{p.shape[0]} px but {plain_files[keys[0]]} is "
                            f"{plain[0].shape[1]}x{plain[0].shape[0]} px: the audit needs one image size")
        plain.append(p)
        encrypted.append(c)
    tops = [Path(k).parts[0] if len(Path(k).parts) > 1 else None for k in keys]
    labels, class_names = None, []
    if all(tops) and len(set(tops)) >= 2:
        class_names = sorted(set(tops))
        labels = np.array([class_names.index(t) for t in tops], dtype=np.int64)
    return FolderPairs(np.stack(plain), np.stack(encrypted), keys, labels, class_names)


def folder_cipher(pairs: FolderPairs, name: str = "folder") -> AuditedCipher:
    """The stored ciphertexts as a look-up (no oracle: only the folder's own images "encrypt")."""
    stored = {hashlib.sha256(p.tobytes()).hexdigest(): c for p, c in zip(pairs.plain, pairs.encrypted)}

    def lookup(images: np.ndarray, key: Any) -> np.ndarray:
        out = []
        for image in np.asarray(images):
            digest = hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).hexdigest()
            if digest not in stored:
                raise AuditError(f"{name}: an image outside the plain folder has no stored ciphertext")
            out.append(stored[digest])
        return np.stack(out) if out else np.empty_like(images)

    return AuditedCipher(name, lookup, lambda: None, "folder", "stored (plain, encrypted) pairs", oracle=False)


# --------------------------------------------------------------------------- checked calls


def checked_encrypt(cipher: AuditedCipher, images: np.ndarray, key: Any) -> np.ndarray:
    """``cipher.encrypt(images, key)``, refused with an :class:`AuditError` naming the problem when it
    raises, returns no array, or changes the shape or the dtype."""
    images = np.asarray(images)
    try:
        out = cipher.encrypt(images.copy(), key)
    except Exception as exc:  # noqa: BLE001 -- any failure of a user's callable is reported, named
        raise AuditError(f"encrypt of {cipher.name!r} raised {type(exc).__name__} on {len(images)} image(s) of "
                         f"shape {images.shape[1:]}: {exc}") from exc
    if not isinstance(out, np.ndarray):
        raise AuditError(f"encrypt of {cipher.name!r} returned {type(out).__name__}, not a numpy array of images")
    if out.shape != images.shape:
        raise AuditError(f"encrypt of {cipher.name!r} changed the shape from {images.shape} to {out.shape}: it must "
                         "return one image per input image, of the input's size")
    if out.dtype != images.dtype:
        raise AuditError(f"encrypt of {cipher.name!r} changed the dtype from {images.dtype} to {out.dtype}: it must "
                         "return 8-bit images (render the ciphertexts to bytes first, as the papers do)")
    return out


def check_encryption(cipher: AuditedCipher, images: np.ndarray, key: Any) -> float:
    """Before any measurement: the callable runs on batches of 1 and 2 images, keeps shape and dtype,
    and gives the same output shape when called twice on the same image.  Returns the seconds the
    second call took per image (the first may include one-off set-up): what the learnability budget is
    planned with."""
    images = np.asarray(images, dtype=np.uint8)
    first = checked_encrypt(cipher, images[:2], key)
    start = time.perf_counter()
    again = checked_encrypt(cipher, images[:1], key)
    seconds = time.perf_counter() - start
    if first.shape[1:] != again.shape[1:]:
        raise AuditError(f"encrypt of {cipher.name!r} returns non-deterministic shapes: {first.shape[1:]} for an "
                         f"image in one call, {again.shape[1:]} for the same image in another")
    return seconds


# --------------------------------------------------------------------------- measurements


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound for p near 0 or 1 and small n)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class AuditSettings:
    """How much each measurement costs.  :meth:`for_run` gives the default and the quick sizes."""

    epochs: int = 10
    learning_rate: float = 5e-4
    batch_size: int = 32
    slow_learn_per_class: int = 25   # images per class for a cipher marked slow (randomized Paillier, LWE)
    learn_budget_s: float | None = None  # optional: encryption seconds allowed for the learnability set
    min_learn_per_class: int = 10    # never fewer (the 80/10/10 split then tests at least one image per class)
    game_size: int = 8               # the adversary's two images: centre crops of this size
    game_oracle: int = 50            # oracle encryptions of each of the two images
    game_challenges: int = 200
    attack_test: int = 4
    attack_train: int = 8
    stats_images: int = 8
    seed: int = 0

    @classmethod
    def for_run(cls, quick: bool, **overrides) -> "AuditSettings":
        base = cls(epochs=2, learning_rate=3e-3, slow_learn_per_class=10, game_oracle=12,
                   game_challenges=40, attack_test=2, attack_train=4, stats_images=3) if quick else cls()
        return cls(**{**base.__dict__, **overrides})


def learnability(cipher: AuditedCipher, key: Any, dataset: ImageDataset, settings: AuditSettings,
                 seconds_per_image: float = 0.0) -> dict:
    """Notebook 03's recipe on the encrypted images: the small CNN, Adam, the best-validation epoch
    restored, one test on a stratified 80/10/10 split.  Accuracy with its 95% interval and chance (the
    largest class's test share).  A cipher marked ``slow`` trains on a stratified subset of
    ``settings.slow_learn_per_class`` images per class, and so does any cipher whose encryption of every
    image would take longer than ``settings.learn_budget_s`` (when set; at ``seconds_per_image``,
    which makes the subset depend on the machine).  ``n_learn`` says how many were used."""
    from ppdl_utils.learning import models, training  # TensorFlow loads only when a model is trained

    n_classes = len(np.unique(dataset.labels))
    if n_classes < 2:
        return {"accuracy": float("nan"), "accuracy_low": float("nan"), "accuracy_high": float("nan"),
                "chance": float("nan"), "n_learn": 0, "n_test": 0, "learnable": None}
    keep = len(dataset.images)
    if cipher.slow:
        keep = min(keep, settings.slow_learn_per_class * n_classes)
    if settings.learn_budget_s and seconds_per_image > 0:
        keep = min(keep, int(settings.learn_budget_s / seconds_per_image))
    keep = max(keep, settings.min_learn_per_class * n_classes)
    if keep < len(dataset.images):
        dataset = dataset.subset(stratified_subset(np.arange(len(dataset.images)), dataset.labels, keep,
                                                   settings.seed))
    split = stratified_split(dataset.labels, dataset.hashes, seed=settings.seed)
    if not all(len(split[part]) for part in split):
        raise AuditError(f"{len(dataset.images)} images are too few for a train/validation/test split: give at "
                         "least 10 per class")
    images = checked_encrypt(cipher, dataset.images, key)
    model = models.build_small_cnn(images.shape[1], len(dataset.class_names))
    _, evaluation = training.fit_and_test(model, images, dataset.labels, split, settings.epochs,
                                          lr=settings.learning_rate, batch_size=settings.batch_size,
                                          seed=settings.seed, verbose=False)
    y = evaluation["y_true"]
    correct = int((evaluation["y_pred"] == y).sum())
    low, high = wilson_interval(correct, len(y))
    chance = float(np.bincount(y).max() / len(y))
    return {"accuracy": correct / len(y), "accuracy_low": low, "accuracy_high": high, "chance": chance,
            "n_learn": len(dataset.images), "n_test": int(len(y)), "learnable": bool(low > chance)}


def _equal_pixel_leak(plain: np.ndarray, cipher: np.ndarray) -> float:
    """P(equal cipher | equal plain) - P(equal cipher | unequal plain) over horizontally and vertically
    adjacent pixels: 1 for a per-value substitution, ~0 when equal pixels do not stay equal."""
    same_plain, same_cipher = [], []
    for a, b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                 ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        same_plain.append((plain[(slice(None),) + a] == plain[(slice(None),) + b]).ravel())
        same_cipher.append((cipher[(slice(None),) + a] == cipher[(slice(None),) + b]).ravel())
    sp, sc = np.concatenate(same_plain), np.concatenate(same_cipher)
    if sp.all() or not sp.any():
        return float("nan")
    return float(sc[sp].mean() - sc[~sp].mean())


def _histogram_kept(plain: np.ndarray, cipher: np.ndarray) -> float:
    """Share of images whose sorted histogram bar heights equal the plain image's (bars moved, not changed)."""
    def bars(image: np.ndarray) -> np.ndarray:
        return np.sort(np.bincount(image.ravel(), minlength=256))

    kept = [np.array_equal(bars(p), bars(c)) for p, c in zip(plain, cipher)]
    return float(np.mean(kept))


def determinism(cipher: AuditedCipher, key: Any, images: np.ndarray, encrypted: np.ndarray | None = None) -> dict:
    """Same image twice (one call, and a second call); equal pixels; histograms (no oracle: the last
    two).  ``encrypted``: the images' encryptions when already at hand."""
    encrypted = checked_encrypt(cipher, images, key) if encrypted is None else encrypted
    result = {"equal_pixel_leak": _equal_pixel_leak(images, encrypted),
              "histogram_kept": _histogram_kept(images, encrypted), "deterministic": None}
    if cipher.oracle:
        twice = checked_encrypt(cipher, np.stack([images[0], images[0]]), key)
        result["deterministic"] = bool(np.array_equal(twice[0], twice[1]) and np.array_equal(twice[0], encrypted[0]))
    return result


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape
    size = min(size, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


def _game_images(images: np.ndarray, labels: np.ndarray, order: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """The adversary's two messages: centre crops of the first image and of the first image of another
    class whose crop differs (any differing crop when every class looks alike there; else whole images)."""
    first = _centre_crop(images[order[0]], size)
    candidates = sorted(order[1:], key=lambda i: labels[i] == labels[order[0]])  # other classes first
    for i in candidates:
        crop = _centre_crop(images[i], size)
        if not np.array_equal(crop, first):
            return first, crop
    other = next((i for i in order[1:] if not np.array_equal(images[i], images[order[0]])), None)
    if other is None:
        raise AuditError("every image of the set is the same: the game needs two different images")
    return images[order[0]], images[other]


def distinguishing_game(cipher: AuditedCipher, key: Any, m0: np.ndarray, m1: np.ndarray, n_oracle: int,
                        n_challenges: int, seed: int = 0) -> dict:
    """IND-CPA-style game.  The adversary chose m0 and m1 (same size, m0 != m1); it asks the oracle for
    ``n_oracle`` encryptions of each, then guesses b for ``n_challenges`` challenges Enc(m_b), b a fair
    coin.  Its distinguisher: a look-up of the oracle's ciphertexts (any deterministic scheme falls to
    it), else logistic regression on the cipher bytes and their histogram.  Advantage 2 acc - 1 with
    the 95% Wilson interval mapped the same way."""
    from sklearn.linear_model import LogisticRegression

    if np.array_equal(m0, m1):
        raise AuditError("the game needs two different images")
    stack = np.stack([m0] * n_oracle + [m1] * n_oracle)
    oracle = checked_encrypt(cipher, stack, key)
    labels = np.repeat([0, 1], n_oracle)
    bits = np.random.default_rng(seed).integers(0, 2, n_challenges)
    challenges = checked_encrypt(cipher, np.stack([m1 if b else m0 for b in bits]), key)

    def features(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float64) / 255.0
        hist = np.stack([np.bincount(i.ravel(), minlength=256) for i in x]) / x[0].size
        return np.hstack([flat, hist])

    seen = {}
    for c, y in zip(oracle, labels):
        seen.setdefault(c.tobytes(), set()).add(int(y))
    model = LogisticRegression(C=1.0, max_iter=2000).fit(features(oracle), labels)
    learned = model.predict(features(challenges))
    guesses = np.array([next(iter(seen[c.tobytes()])) if len(seen.get(c.tobytes(), ())) == 1 else g
                        for c, g in zip(challenges, learned)])
    correct = int((guesses == bits).sum())
    low, high = wilson_interval(correct, n_challenges)
    looked_up = sum(len(seen.get(c.tobytes(), ())) == 1 for c in challenges)
    return {"advantage": 2 * correct / n_challenges - 1, "advantage_low": 2 * low - 1, "advantage_high": 2 * high - 1,
            "game_challenges": n_challenges, "challenges_seen_by_oracle": looked_up / n_challenges}


def attack_recovery(cipher: AuditedCipher, key: Any, train: np.ndarray, test: np.ndarray) -> list[suite.AttackRun]:
    """The prior, then every attack that applies to byte images (known pair and ciphertext-only
    substitution, one-known-pair keystream by XOR and by addition) and the scheme's own full-ciphertext
    attacks, each scored against ``test`` (SSIM, beats-the-prior)."""
    knowledge = suite.attacker_knowledge(train)
    ciphers = checked_encrypt(cipher, test, key)
    pair = checked_encrypt(cipher, knowledge.pair_plain[None], key)[0]
    uses = suite.USES["known_pair"]

    def run(attack: str, attacker_uses: str, results) -> suite.AttackRun:
        return suite.AttackRun(cipher.name, None, "encrypted images", attack, attacker_uses,
                               images=np.stack([r.image for r in results]), success=[bool(r.success) for r in results],
                               coverage=[float(r.coverage) for r in results],
                               seconds=float(sum(r.seconds for r in results)))

    results, _, _ = known_pair_attack(pair, knowledge.pair_plain, list(ciphers))
    runs = [run("known pair (substitution)", uses, results)]
    co = suite.ciphertext_only_attack(ciphers, knowledge)
    runs.append(suite.AttackRun(cipher.name, None, "encrypted images", "ciphertext only (substitution)",
                                suite.USES["ciphertext_only"], images=co.image, success=[bool(co.success)] * len(test),
                                coverage=[co.coverage] * len(test), seconds=co.seconds, alternative=co.alternative))
    for combine in ("xor", "add"):
        runs.append(run(f"known pair (keystream {combine})", uses,
                        known_pair_keystream_attack(pair, knowledge.pair_plain, ciphers, combine)))
    runs = [r.score(test, knowledge.mean_image) for r in runs]
    if cipher.full_attacks is not None:
        runs += cipher.full_attacks(key, test, knowledge)
    return [suite.prior_run(test, knowledge)] + runs


def _strongest(runs: Sequence[suite.AttackRun]) -> dict:
    """The attack with the highest median SSIM (the prior is ``runs[0]``); ``recovered``: some attack
    beats the prior on at least half of the test images."""
    prior, attacks = runs[0], runs[1:]
    best = max(attacks, key=lambda r: (float(np.median(r.ssim)), float(np.mean(r.beats_prior))))
    return {"best_attack": f"{best.input} · {best.attack}" if best.input != "encrypted images" else best.attack,
            "attack_ssim": float(np.median(best.ssim)), "prior_ssim": float(np.median(prior.ssim)),
            "attack_exact_rate": float(np.mean(np.isinf(best.psnr))),
            "recovered": any(np.mean(r.beats_prior) >= 0.5 for r in attacks if r.beats_prior)}


def _ideal_entropy(shape: tuple[int, int], draws: int = 64) -> float:
    """The mean entropy of uniformly random 8-bit images of this size (8 bits only in the limit)."""
    rng = np.random.default_rng(12345)
    return float(np.mean([shannon_entropy(rng.integers(0, 256, shape, dtype=np.uint8)) for _ in range(draws)]))


def paper_statistics(cipher: AuditedCipher, key: Any, images: np.ndarray,
                     encrypted: np.ndarray | None = None) -> dict:
    """Mean entropy, adjacent-pixel correlations, NPCR and UACI (one pixel changed by 1; oracle only),
    and whether each would pass as "ideal" in a paper (:func:`_looks_ideal`)."""
    encrypted = checked_encrypt(cipher, images, key) if encrypted is None else encrypted
    stats = pd.DataFrame([image_statistics(c) for c in encrypted]).mean().to_dict()
    stats["entropy_ideal"] = _ideal_entropy(images.shape[1:])
    stats["npcr_percent"] = stats["uaci_percent"] = float("nan")
    if cipher.oracle:
        changed = checked_encrypt(cipher, np.stack([one_pixel_change(img, i) for i, img in enumerate(images)]), key)
        diffs = np.array([npcr_uaci(a, b) for a, b in zip(encrypted, changed)])
        stats["npcr_percent"], stats["uaci_percent"] = float(diffs[:, 0].mean()), float(diffs[:, 1].mean())
    ideal = _looks_ideal(stats)
    stats["stats_look_ideal"] = bool(all(v for v in ideal.values() if v is not None))
    return stats


def _looks_ideal(stats: dict) -> dict[str, bool | None]:
    """What a paper would call ideal: entropy within 0.05 bit of a random image's of the same size,
    NPCR within 0.5 point of 99.61%, UACI within 1.5 points of 33.46%, every |correlation| < 0.05."""
    npcr, uaci = stats.get("npcr_percent", float("nan")), stats.get("uaci_percent", float("nan"))
    return {"entropy": bool(stats["entropy_bits"] >= stats["entropy_ideal"] - 0.05),
            "npcr": bool(npcr >= NPCR_EXPECTED - 0.5) if npcr == npcr else None,
            "uaci": bool(abs(uaci - UACI_EXPECTED) < 1.5) if uaci == uaci else None,
            "correlation": bool(max(abs(stats[f"corr_{d}"]) for d in DIRECTIONS) < 0.05)}


def verdict(row: dict) -> str:
    """One line from the leak measurements alone (learnability, determinism, equality, the game, the
    attacks); the papers' statistics never enter it."""
    leaks = []
    if row.get("deterministic"):
        leaks.append("deterministic (equal images give equal ciphertexts)")
    if row.get("advantage_low", float("nan")) > 0:
        leaks.append(f"distinguisher advantage {row['advantage']:.2f} [{row['advantage_low']:.2f}, "
                     f"{row['advantage_high']:.2f}]")
    if row.get("learnable"):
        leaks.append(f"a CNN learns the classes ({row['accuracy']:.2f} [{row['accuracy_low']:.2f}, "
                     f"{row['accuracy_high']:.2f}], chance {row['chance']:.2f})")
    if row.get("equal_pixel_leak", 0) > 0.5:
        leaks.append("equal pixels stay equal")
    if row.get("recovered"):
        leaks.append(f"{row['best_attack']} recovers the images (SSIM {row['attack_ssim']:.2f} vs prior "
                     f"{row['prior_ssim']:.2f})")
    if leaks:
        return "LEAKS: " + "; ".join(leaks)
    if not row.get("oracle", True):
        return "no leak found in the stored pairs (no encryption oracle: determinism and the game not measured)"
    learn = "classifier at chance" if row.get("learnable") is False else "learnability not measured"
    return (f"no leak found: {learn}, distinguisher advantage's interval contains 0, no attack beats the prior "
            "(evidence, not a proof of security)")


@dataclass
class AuditResult:
    """One audited scheme: the table row, the attack runs and a few encrypted samples for figures."""

    row: dict
    runs: list[suite.AttackRun]
    samples: np.ndarray


def audit(cipher: AuditedCipher, dataset: ImageDataset, settings: AuditSettings | None = None,
          key: Any = None, learn: bool = True) -> AuditResult:
    """Every measurement of the module on one cipher (see the module docstring); ``key`` defaults to
    ``cipher.keygen()``.  ``learn=False`` skips the CNN (the row says "not run")."""
    settings = settings or AuditSettings()
    start = time.perf_counter()
    key = cipher.keygen() if key is None else key
    images = dataset.images
    if len(images) < 2:
        raise AuditError(f"the audit needs at least 2 images, got {len(images)}")
    seconds_per_image = check_encryption(cipher, images, key)
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(images))
    row: dict[str, Any] = {"scheme": cipher.name, "family": cipher.family, "description": cipher.description,
                           "oracle": cipher.oracle, "secure_by_design": cipher.secure_by_design,
                           "data": dataset.name, "image_size": int(images.shape[1]),
                           "n_images": len(images)}
    stats_images = images[order[:settings.stats_images]]
    encrypted = checked_encrypt(cipher, stats_images, key)
    row.update(determinism(cipher, key, stats_images, encrypted))
    if cipher.oracle:
        m0, m1 = _game_images(images, dataset.labels, order, settings.game_size)
        row.update(distinguishing_game(cipher, key, m0, m1, settings.game_oracle, settings.game_challenges,
                                       settings.seed))
    n_test = min(settings.attack_test, len(images) // 2)
    n_train = min(settings.attack_train, len(images) - n_test)
    train, test = suite.split_train_test(images, n_test, n_train, settings.seed)
    runs = attack_recovery(cipher, key, train, test)
    row.update(_strongest(runs))
    row.update(paper_statistics(cipher, key, stats_images, encrypted))
    if learn:
        row.update(learnability(cipher, key, dataset, settings, seconds_per_image))
    else:
        row["learnable"] = None
    row["verdict"] = verdict(row)
    row["seconds"] = time.perf_counter() - start
    return AuditResult(row, runs, encrypted[:4])


# --------------------------------------------------------------------------- table and figure


TABLE_COLUMNS = ["scheme", "family", "accuracy", "accuracy_low", "accuracy_high", "chance", "learnable",
                 "deterministic", "equal_pixel_leak", "histogram_kept", "advantage", "advantage_low",
                 "advantage_high", "best_attack", "attack_ssim", "prior_ssim", "recovered", "entropy_bits",
                 "entropy_ideal", "npcr_percent", "uaci_percent", "corr_horizontal", "corr_vertical", "corr_diagonal",
                 "stats_look_ideal", "verdict"]


def audit_table(results: Sequence[AuditResult], brief: bool = False) -> pd.DataFrame:
    """One row per scheme; ``brief`` keeps the columns of the side-by-side view."""
    df = pd.DataFrame([r.row for r in results])
    first = [c for c in TABLE_COLUMNS if c in df]
    df = df[first + [c for c in df.columns if c not in first]]
    return df[first].round(3) if brief else df


#: Each measurement's own reading of "broken": column label -> function of a table row (True:
#: says broken, False: says nothing is wrong, None: not measured).  The papers' statistics say
#: "broken" when they miss their ideal value (:func:`_looks_ideal`).
SEPARATION_COLUMNS: dict[str, Callable[[pd.Series], bool | None]] = {
    "CNN learns the classes (accuracy interval above chance)": lambda r: _flag(r.get("learnable")),
    "deterministic (same image twice)": lambda r: _flag(r.get("deterministic")),
    "equal pixels stay equal (> 0.5)": lambda r: bool(r["equal_pixel_leak"] > 0.5),
    "distinguisher advantage interval above 0": lambda r: _flag(r.get("advantage_low", math.nan) > 0
                                                                if r.get("advantage_low") == r.get("advantage_low")
                                                                else None),
    "an attack beats the prior": lambda r: _flag(r.get("recovered")),
    "the audit's verdict (any of the above)": lambda r: str(r["verdict"]).startswith("LEAKS"),
    "entropy not ideal": lambda r: _flag(_ideal_flip(r, "entropy")),
    "NPCR not ideal": lambda r: _flag(_ideal_flip(r, "npcr")),
    "UACI not ideal": lambda r: _flag(_ideal_flip(r, "uaci")),
    "adjacent-pixel correlation not ideal": lambda r: _flag(_ideal_flip(r, "correlation")),
    "the papers' statistics (any not ideal)": lambda r: not bool(r["stats_look_ideal"]),
}


def _flag(value: Any) -> bool | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else bool(value)


def _ideal_flip(row: pd.Series, name: str) -> bool | None:
    ideal = _looks_ideal(row)[name]
    return None if ideal is None else not ideal


def separation_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per measurement: how many of the schemes broken by design it calls broken, how many of the
    secure ones it calls broken, and whether it separates them (all of the first, none of the second).
    Schemes whose design is unknown (a cipher under audit) take no part."""
    known = table[table["secure_by_design"].notna()]
    broken = known[known["secure_by_design"] == False]  # noqa: E712 -- an object column of True/False/None
    secure = known[known["secure_by_design"] == True]  # noqa: E712
    rows = []
    for label, says_broken in SEPARATION_COLUMNS.items():
        on_broken = [says_broken(r) for _, r in broken.iterrows()]
        on_secure = [says_broken(r) for _, r in secure.iterrows()]
        hits = [v for v in on_broken if v is not None]
        false_alarms = [v for v in on_secure if v is not None]
        rows.append({"measurement": label,
                     "calls broken: broken schemes": f"{sum(hits)}/{len(hits)}",
                     "calls broken: secure schemes": f"{sum(false_alarms)}/{len(false_alarms)}",
                     "missed (broken, called fine)": ", ".join(
                         name for name, v in zip(broken["scheme"], on_broken) if v is False),
                     "separates": "yes" if hits and all(hits) and not any(false_alarms) else "no"})
    return pd.DataFrame(rows)


def _scores(row: pd.Series) -> dict[str, float]:
    """Each measurement as a number in [0, 1]: leak measures score the leak, the papers' statistics
    score closeness to their ideal value (1 = a paper would call it ideal)."""
    span = 1 - row["chance"] if row.get("chance") == row.get("chance") and row["chance"] < 1 else float("nan")
    learn = float(np.clip((row["accuracy"] - row["chance"]) / span, 0, 1)) if span == span else float("nan")
    corr = max(abs(row[f"corr_{d}"]) for d in DIRECTIONS)
    return {
        "learnability": learn,
        "deterministic": float(row["deterministic"]) if row["deterministic"] is not None else float("nan"),
        "equal_pixel_leak": float(np.clip(row["equal_pixel_leak"], 0, 1)),
        "advantage": float(np.clip(row["advantage"], 0, 1)) if "advantage" in row else float("nan"),
        "recovered": float(np.clip((row["attack_ssim"] - row["prior_ssim"]) / max(1e-9, 1 - row["prior_ssim"]), 0, 1)),
        "entropy": float(np.clip(1 - abs(row["entropy_ideal"] - row["entropy_bits"]) / 2, 0, 1)),
        "npcr": float(np.clip(row["npcr_percent"] / NPCR_EXPECTED, 0, 1)),
        "uaci": float(np.clip(1 - abs(row["uaci_percent"] - UACI_EXPECTED) / UACI_EXPECTED, 0, 1)),
        "correlation": float(np.clip(1 - corr, 0, 1)),
    }


def audit_figure(table: pd.DataFrame, source: str = ""):
    """Rows: schemes (no-leak first); columns: the leak measurements (red: leaks) beside the papers'
    statistics (green: "ideal"), each cell annotated with its raw value."""
    import matplotlib.pyplot as plt

    table = table.assign(_leaks=table["verdict"].str.startswith("LEAKS")).sort_values("_leaks", kind="stable")
    scores = pd.DataFrame([_scores(row) for _, row in table.iterrows()])
    leak_cols = ["learnability", "deterministic", "equal_pixel_leak", "advantage", "recovered"]
    stat_cols = ["entropy", "npcr", "uaci", "correlation"]

    def raw(row: pd.Series, column: str) -> str:
        value = {"learnability": f"{row['accuracy']:.2f}/{row['chance']:.2f}" if row["accuracy"] == row["accuracy"]
                 else "n/a",
                 "deterministic": {True: "yes", False: "no"}.get(row["deterministic"], "n/a"),
                 "equal_pixel_leak": f"{row['equal_pixel_leak']:.2f}",
                 "advantage": f"{row['advantage']:.2f}" if row.get("advantage") == row.get("advantage") else "n/a",
                 "recovered": f"{row['attack_ssim']:.2f}",
                 "entropy": f"{row['entropy_bits']:.2f}", "npcr": f"{row['npcr_percent']:.1f}",
                 "uaci": f"{row['uaci_percent']:.1f}",
                 "correlation": f"{max(abs(row[f'corr_{d}']) for d in DIRECTIONS):.2f}"}[column]
        return value

    fig, axes = plt.subplots(1, 2, figsize=(12.5, 0.42 * len(table) + 2.2), sharey=True,
                             gridspec_kw={"width_ratios": [len(leak_cols), len(stat_cols)]})
    labels = [f"{s}  ({'LEAKS' if leak else 'no leak found'})" for s, leak in zip(table["scheme"], table["_leaks"])]
    panels = ((axes[0], leak_cols, "Reds", "what the audit measures (red: leaks)",
               ["CNN acc/chance", "deterministic", "equal pixels\nstay equal", "game\nadvantage",
                f"best attack SSIM\n(prior {table['prior_ssim'].median():.2f})"]),
              (axes[1], stat_cols, "Greens", "what papers report (green: looks ideal)",
               ["entropy (bits)", "NPCR %", "UACI %", "max |corr|"]))
    for ax, cols, cmap, title, names in panels:
        values = scores[cols].to_numpy(dtype=float)
        ax.imshow(np.nan_to_num(values, nan=0.0), cmap=cmap, vmin=0, vmax=1.3, aspect="auto")
        for i, (_, row) in enumerate(table.iterrows()):
            for j, column in enumerate(cols):
                ax.text(j, i, raw(row, column), ha="center", va="center", fontsize=7.5)
        ax.set_xticks(range(len(cols)), names, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(length=0)
    axes[0].set_yticks(range(len(table)), labels, fontsize=8)
    split = int((~table["_leaks"]).sum()) - 0.5
    for ax in axes:
        ax.axhline(split, color="black", lw=1.2)
    fig.tight_layout()
    return fig
