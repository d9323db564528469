"""Paillier, textbook RSA and LWE side by side: encrypt uint8 data (table features or pixels)
under each (scheme, regime), turn the ciphertexts into model inputs, train a small model on
them, and measure accuracy, time, size, memory and security.

**The features the server sees** (float32 in [0, 1], one per plaintext element):

* ``plain`` — m / 255.
* ``paillier`` (``randomized``, ``table``, ``fixed_r``, ``r_one``) — the low byte of the
  ciphertext, (c mod 256) / 255, as in notebook 02 (:class:`ImageEncryptor`).
* ``rsa`` (``deterministic`` only) — (c mod 256) / 255 with c = m^e mod N: a *public* 256-value
  substitution that destroys the order of the values (0 and 1 are fixed points).
* ``lwe`` (``randomized``, ``fixed_r``) — b / q, the ``b`` part of (a, b).  In ``fixed_r``,
  b = <a0, s> + e0 + Delta*m mod q is an affine function of m mod q: the plain values shifted
  by one secret constant (wrapping around 1 at most once, since Delta*255 < q), so their
  ORDER survives.  In ``randomized`` a fresh uniform ``a`` makes b uniform: the ``a`` part,
  which the model never sees, is what makes LWE secure.  (b mod 256 would be useless: for
  DEFAULT, Delta = 2^14 is a multiple of 256, so b mod 256 does not depend on m at all.)

**Costs** (one process, no workers):

* ``encrypt_s_per_item`` — wall time to encrypt and render the whole batch, one-off setup
  (tables, fixed-base combs) included, divided by the number of items; key generation excluded.
  Deterministic regimes encrypt the 256 values once and look them up: a speed-up that only
  exists because they are deterministic.
* ``decrypt_s_per_item`` — time to decrypt the first ``decrypt_items`` items (at most
  ``decrypt_elements`` of their elements: a 64-px image is 4,096 Paillier decryptions, ~10 s),
  scaled to one item; the result is checked to be exact (``decrypt_exact``).  RSA decrypts each
  distinct ciphertext of the sample once (deterministic); Paillier and LWE decrypt every element.
* ``expansion`` — serialized ciphertext bytes per plaintext byte (1 byte per uint8 element).
* ``peak_mem_mb`` — :mod:`tracemalloc` peak (Python and numpy allocations, not RSS) while
  encrypting ``mem_items`` items into full ciphertext objects.  In-memory sizes, not serialized
  ones: deterministic Paillier arrays share their 256 table entries and LWE ``fixed_r`` shares
  one ``a0``, so they can be far below ``expansion`` x bytes.
"""
from __future__ import annotations

import hashlib
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ppdl_utils.crypto import lwe
from ppdl_utils.crypto import rsa_textbook as rsa
from ppdl_utils.crypto.cipher_array import decrypt_array
from ppdl_utils.crypto.paillier import PaillierPrivateKey, generate_keypair
from ppdl_utils.crypto.paillier import security_bits as paillier_security_bits
from ppdl_utils.crypto.regimes import LEAKS, Regime
from ppdl_utils.data.dataset import ImageDataset
from ppdl_utils.data.duplicates import resolve_label_conflicts
from ppdl_utils.data.splits import stratified_split
from ppdl_utils.data.tabular import encode_features, quantize_features
from ppdl_utils.errors import PlaintextRangeError
from ppdl_utils.images.encryption import ImageEncryptor

__all__ = [
    "DEFAULT_CONFIGS",
    "DETERMINISTIC_CONFIGS",
    "key_spread",
    "spread_summary",
    "PAPER_ACCURACY",
    "SchemeKeys",
    "make_keys",
    "SecurityInfo",
    "security_info",
    "schemes_table",
    "make_encryptor",
    "EncryptedFeatures",
    "encrypt_features",
    "PreparedData",
    "prepare_tabular",
    "prepare_images",
    "train_and_evaluate",
    "run_comparison",
    "split_counts",
    "summary_lines",
    "markdown_table",
    "plot_accuracy_vs_cost",
]

#: (scheme, regime) pairs compared by default, in table order.
DEFAULT_CONFIGS: tuple[tuple[str, str], ...] = (
    ("plain", "none"),
    ("paillier", "randomized"), ("paillier", "table"), ("paillier", "fixed_r"), ("paillier", "r_one"),
    ("rsa", "deterministic"),
    ("lwe", "randomized"), ("lwe", "fixed_r"),
)
#: The paper's headline number (LWE; which dataset and rendering it used are not stated).
PAPER_ACCURACY = 0.8801
RSA_LABEL = "deterministic (textbook RSA, NOT secure)"
PLAIN_LABEL = "plaintext (no encryption)"


# --------------------------------------------------------------------------- keys
@dataclass(eq=False)
class SchemeKeys:
    """One key per scheme, and how long each took to generate (seconds)."""

    paillier: PaillierPrivateKey
    rsa: rsa.RSAPrivateKey
    lwe: lwe.LWESecretKey
    keygen_s: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"SchemeKeys(paillier={self.paillier.public.bits}-bit n, rsa={self.rsa.key_size}-bit N, "
                f"lwe={self.lwe.params.name})")


def _timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def make_keys(paillier_bits: int = 2048, rsa_bits: int = 2048, lwe_params: lwe.LWEParams = lwe.DEFAULT,
              keys_dir: "str | None" = None, allow_insecure: bool = False) -> SchemeKeys:
    """Keys for every scheme.  Paillier comes from ``keys_dir`` (load or create) when given, and
    its ``keygen_s`` is then the load time.  RSA below 2048 bits warns (quick mode only);
    ``lwe.TEACHING`` is never a default.  A Paillier key below 2048 bits needs ``allow_insecure``
    (quick mode)."""
    if keys_dir:
        from ppdl_utils.crypto.keyfiles import load_or_create_private_key

        paillier, t_p = _timed(lambda: load_or_create_private_key(keys_dir, paillier_bits, allow_insecure))
    else:
        paillier, t_p = _timed(lambda: generate_keypair(paillier_bits, allow_insecure))
    rsa_key, t_r = _timed(lambda: rsa.keygen(rsa_bits))
    lwe_key, t_l = _timed(lambda: lwe.keygen(lwe_params))
    return SchemeKeys(paillier, rsa_key, lwe_key, {"paillier": t_p, "rsa": t_r, "lwe": t_l})


# --------------------------------------------------------------------------- security
@dataclass(frozen=True)
class SecurityInfo:
    """What a (scheme, regime) protects: parameter set, claimed strength, and what it leaks."""

    parameters: str
    security_bits: int  # strength of the parameter set (key / lattice), 0 for plain
    post_quantum: bool
    semantically_secure: bool
    label: str
    leaks: str


def _lwe_parameters(params: lwe.LWEParams) -> str:
    return (f"{params.name}: n={params.n}, q=2^{(params.q - 1).bit_length()}, t={params.t}, "
            f"sigma={params.sigma:.2f}")


def security_info(scheme: str, regime: str, keys: SchemeKeys) -> SecurityInfo:
    """Security facts of one (scheme, regime); ``security_bits`` is that of the parameters, which
    only the randomized regimes actually enjoy (``semantically_secure``)."""
    if scheme == "plain":
        return SecurityInfo("none", 0, False, False, PLAIN_LABEL, "everything")
    if scheme == "paillier":
        r, bits = Regime.parse(regime), keys.paillier.public.bits
        return SecurityInfo(f"Paillier, {bits}-bit n", paillier_security_bits(bits), False,
                            r.is_semantically_secure, r.label, LEAKS[r])
    if scheme == "rsa":
        bits = keys.rsa.key_size
        return SecurityInfo(f"textbook RSA, {bits}-bit N, e={keys.rsa.e}", rsa.security_bits(bits), False,
                            False, RSA_LABEL,
                            "everything: anyone with the public key encrypts 0..255 and inverts the substitution")
    if scheme == "lwe":
        r, params = lwe._check_regime(regime), keys.lwe.params
        leaks = ("nothing beyond the shape (under the LWE assumption)" if r.is_semantically_secure else
                 "every difference: b1 - b2 = Delta*(m1 - m2) mod q; one known element reveals all")
        return SecurityInfo(_lwe_parameters(params), params.security_bits, params.security_bits > 0,
                            r.is_semantically_secure, r.label, leaks)
    raise ValueError(f"unknown scheme {scheme!r}; expected plain, paillier, rsa or lwe")


def schemes_table(keys: SchemeKeys) -> pd.DataFrame:
    """One row per scheme: parameters, ciphertext size, strength, post-quantum, regimes."""
    rows = []
    for scheme, regimes, homomorphism in (
            ("paillier", "randomized, table, fixed_r, r_one", "additive: E(a)E(b) = E(a+b)"),
            ("rsa", "deterministic only", "multiplicative: E(a)E(b) = E(ab)"),
            ("lwe", "randomized, fixed_r", "additive, plaintext scalars (noise-bounded)")):
        info = security_info(scheme, "randomized" if scheme != "rsa" else "deterministic", keys)
        rows.append({"scheme": scheme, "parameters": info.parameters,
                     "ciphertext_bytes_per_element": make_encryptor(scheme, _any_regime(scheme), keys,
                                                                    setup=False).bytes_per_element,
                     "security_bits": info.security_bits, "post_quantum": info.post_quantum,
                     "regimes": regimes, "homomorphism": homomorphism})
    return pd.DataFrame(rows).set_index("scheme")


def _any_regime(scheme: str) -> str:
    return {"plain": "none", "rsa": "deterministic"}.get(scheme, "fixed_r")


# --------------------------------------------------------------------------- encryptors
class _Plain:
    """No encryption: the reference row."""

    bytes_per_element = 1

    def __init__(self) -> None:
        self.setup_s = 0.0

    def render(self, items: np.ndarray, progress: bool = False) -> np.ndarray:
        return items.astype(np.float32) / 255.0

    def encrypt(self, flat: np.ndarray) -> np.ndarray:
        return flat.copy()

    def decrypt(self, ct: np.ndarray) -> np.ndarray:
        return ct.astype(np.int64)


class _Paillier:
    """Paillier through :class:`ImageEncryptor`; features are c mod 256."""

    def __init__(self, key: PaillierPrivateKey, regime: str, setup: bool = True) -> None:
        self.key = key
        self.bytes_per_element = key.public.ciphertext_nbytes
        self.encryptor, self.setup_s = _timed(lambda: ImageEncryptor(key, regime)) if setup else (None, 0.0)

    def render(self, items: np.ndarray, progress: bool = False) -> np.ndarray:
        out = self.encryptor.encrypt_rendered(items[:, None, :], "mod256", workers=1, progress=progress)
        return out[:, 0, :].astype(np.float32) / 255.0

    def encrypt(self, flat: np.ndarray):
        return self.encryptor.encrypt(flat[None, :])

    def decrypt(self, ct) -> np.ndarray:
        return np.asarray(decrypt_array(self.key, ct), dtype=np.int64).ravel()


class _RSA:
    """Textbook RSA, deterministic: each distinct value is encrypted once; features are c mod 256."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.bytes_per_element = rsa.ciphertext_nbytes(key.public)
        self.setup_s = 0.0

    def render(self, items: np.ndarray, progress: bool = False) -> np.ndarray:
        values, inverse = np.unique(items, return_inverse=True)
        low_bytes = np.array([int(c) & 0xFF for c in self.encrypt(values)], dtype=np.float32)
        return (low_bytes[inverse.reshape(items.shape)] / 255.0).astype(np.float32)

    def encrypt(self, flat: np.ndarray) -> np.ndarray:
        return rsa.encrypt(self.key.public, flat.astype(np.int64), "deterministic")  # no global cache

    def decrypt(self, ct: np.ndarray) -> np.ndarray:
        return rsa.decrypt(self.key, ct)


class _LWE:
    """Regev LWE; features are b / q, encrypted in chunks so that ``a`` never fills memory."""

    def __init__(self, key: lwe.LWESecretKey, regime: str, chunk_elements: int = 16384) -> None:
        self.key, self.regime = key, lwe._check_regime(regime)
        self.bytes_per_element = key.params.ciphertext_nbytes_per_element
        self.chunk = max(1, int(chunk_elements))
        self.setup_s = 0.0

    def render(self, items: np.ndarray, progress: bool = False) -> np.ndarray:
        flat = items.reshape(-1).astype(np.int64)
        out = np.empty(flat.size, dtype=np.float32)
        starts = range(0, flat.size, self.chunk)
        for start in tqdm(starts, desc=f"LWE {self.regime.value}", unit="chunk", disable=not progress):
            ct = self.encrypt(flat[start:start + self.chunk])
            out[start:start + self.chunk] = ct.b / float(self.key.params.q)
        return out.reshape(items.shape)

    def encrypt(self, flat: np.ndarray) -> lwe.LWECiphertext:
        return lwe.encrypt(self.key, flat.astype(np.int64), self.regime)

    def decrypt(self, ct: lwe.LWECiphertext) -> np.ndarray:
        return lwe.decrypt(self.key, ct)


def make_encryptor(scheme: str, regime: str, keys: SchemeKeys, setup: bool = True,
                   chunk_elements: int = 16384):
    """An object with ``setup_s``, ``bytes_per_element``, ``render(items (N, D) uint8) -> float32``,
    ``encrypt(flat uint8) -> ciphertexts`` and ``decrypt(ciphertexts) -> int64``."""
    if scheme == "plain":
        return _Plain()
    if scheme == "paillier":
        return _Paillier(keys.paillier, regime, setup=setup)
    if scheme == "rsa":
        rsa._check_regime(regime)
        return _RSA(keys.rsa)
    if scheme == "lwe":
        return _LWE(keys.lwe, regime, chunk_elements)
    raise ValueError(f"unknown scheme {scheme!r}; expected plain, paillier, rsa or lwe")


# --------------------------------------------------------------------------- features
@dataclass
class EncryptedFeatures:
    """Model-ready features of one (scheme, regime) and what producing them cost."""

    scheme: str
    regime: str
    features: np.ndarray  # float32, same shape as the plaintext array
    encrypt_s_per_item: float
    setup_s: float
    decrypt_s_per_item: float
    decrypt_exact: bool
    expansion: float
    peak_mem_mb: float
    mem_items: int
    security: SecurityInfo


def _as_uint8_items(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim < 2 or arr.dtype.kind not in "iu":
        raise PlaintextRangeError(f"values must be an integer array (N, ...) of 0..255, got {arr.dtype} {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise PlaintextRangeError(f"values must lie in 0..255, found [{arr.min()}, {arr.max()}]")
    return arr.astype(np.uint8).reshape(len(arr), -1)


def _traced_peak_mb(function: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``function`` and return (its result, tracemalloc peak above the start, in MiB)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result = function()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if started:
            tracemalloc.stop()
    return result, (peak - base) / 2**20


def encrypt_features(values: np.ndarray, scheme: str, regime: str, keys: SchemeKeys,
                     decrypt_items: int = 1, mem_items: int = 2, chunk_elements: int = 16384,
                     progress: bool = True, decrypt_elements: int = 1024) -> EncryptedFeatures:
    """Encrypt a uint8 array (N, ...) under (scheme, regime) and measure the costs (module doc)."""
    items = _as_uint8_items(values)
    start = time.perf_counter()
    encryptor = make_encryptor(scheme, regime, keys, chunk_elements=chunk_elements)
    features = encryptor.render(items, progress=progress)
    encrypt_s = time.perf_counter() - start
    n_decrypt = min(max(1, decrypt_items), len(items))
    sample = items[:n_decrypt].reshape(-1)[:max(1, decrypt_elements)]
    ciphertext = encryptor.encrypt(sample)
    decrypted, decrypt_s = _timed(lambda: encryptor.decrypt(ciphertext))
    mem_sample = items[:max(1, mem_items)].reshape(-1)
    _, peak_mb = _traced_peak_mb(lambda: encryptor.encrypt(mem_sample))
    return EncryptedFeatures(
        scheme=scheme, regime=regime, features=features.reshape(np.shape(values)).astype(np.float32),
        encrypt_s_per_item=encrypt_s / len(items), setup_s=encryptor.setup_s,
        decrypt_s_per_item=decrypt_s / sample.size * items[0].size,
        decrypt_exact=bool(np.array_equal(np.asarray(decrypted).ravel(), sample)),
        expansion=float(encryptor.bytes_per_element), peak_mem_mb=peak_mb,
        mem_items=min(max(1, mem_items), len(items)), security=security_info(scheme, regime, keys))


# --------------------------------------------------------------------------- data
@dataclass(eq=False)
class PreparedData:
    """uint8 values (N, ...) with labels and a leakage-free train/val/test split."""

    name: str
    kind: str  # "tabular" or "image"
    values: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    split: dict[str, np.ndarray]
    source: str
    report: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: {len(v)}" for k, v in self.split.items())
        return f"PreparedData({self.name!r}, {self.kind}, values {self.values.shape}, {parts})"


def prepare_tabular(df: pd.DataFrame, seed: int = 0, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                    name: str | None = None) -> PreparedData:
    """Encode the osteoporosis table, split it (identical rows kept together, stratified) and
    quantize every feature to 0..255 with ranges fitted on the training rows only."""
    X, y, feature_names = encode_features(df)
    groups = [hashlib.sha256(row.tobytes()).hexdigest() for row in X]
    split = stratified_split(y, groups, fractions=fractions, seed=seed)
    _, scaler = quantize_features(X[split["train"]])
    values, _ = quantize_features(X, scaler=scaler)
    source = df.attrs.get("source", "file")
    name = name or df.attrs.get("name", "osteoporosis table")
    report = {"rows": len(df), "distinct_rows": len(set(groups)), "features": feature_names}
    return PreparedData(name, "tabular", values, y, ["no osteoporosis", "osteoporosis"], split, source, report)


def prepare_images(dataset: ImageDataset, seed: int = 0,
                   fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> PreparedData:
    """Drop exact duplicates and label conflicts, then split stratified and grouped by content hash."""
    clean = resolve_label_conflicts(dataset)
    split = stratified_split(clean.labels, clean.hashes, fractions=fractions, seed=seed)
    return PreparedData(clean.name, "image", clean.images, clean.labels, list(clean.class_names), split,
                        clean.source, dict(clean.report))


# --------------------------------------------------------------------------- models
def _standardize(features: np.ndarray, train: np.ndarray, per_feature: bool) -> np.ndarray:
    """(x - mean) / std with statistics of the training items: per column, or one global pair."""
    axis = 0 if per_feature else None
    mean = features[train].mean(axis=axis)
    std = features[train].std(axis=axis)
    return ((features - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def train_and_evaluate(features: np.ndarray, labels: np.ndarray, split: Mapping[str, np.ndarray], kind: str,
                       n_classes: int, epochs: int, seed: int = 0, batch_size: int = 32,
                       learning_rate: float = 1e-3) -> dict[str, float]:
    """Train on ``train``, keep the epoch best on ``val`` (:func:`ppdl_utils.learning.training.fit_arrays`,
    the one best-epoch rule), report test accuracy and macro-F1."""
    from sklearn.metrics import accuracy_score, f1_score

    from ppdl_utils.learning import models, training  # TensorFlow loads only when a model is trained

    x = _standardize(features.reshape(len(features), -1) if kind == "tabular" else features,
                     split["train"], per_feature=kind == "tabular")
    if kind == "image":
        x = x[..., None]
    training.set_seed(seed, deterministic_ops=False)  # same initial weights for every scheme
    model = models.build_mlp(x.shape[1], n_classes) if kind == "tabular" else \
        models.build_gray_cnn(*x.shape[1:3], n_classes)
    best, predicted = training.fit_arrays(model, x, labels, split, epochs, lr=learning_rate, batch_size=batch_size)
    te = np.asarray(split["test"])
    return {"accuracy": float(accuracy_score(labels[te], predicted)),
            "macro_f1": float(f1_score(labels[te], predicted, average="macro",
                                       labels=list(range(n_classes)), zero_division=0)),
            "val_accuracy": float(best.best), "best_epoch": int(best.best_epoch),
            "chance": float(np.bincount(labels[te], minlength=n_classes).max() / max(1, len(te)))}


# --------------------------------------------------------------------------- the comparison
COLUMNS = ("dataset", "scheme", "regime", "label", "accuracy", "macro_f1", "chance", "best_epoch",
           "encrypt_s_per_item", "setup_s", "decrypt_s_per_item", "decrypt_exact", "expansion",
           "peak_mem_mb", "mem_items", "security_bits", "post_quantum", "semantically_secure",
           "parameters", "leaks", "n_train", "n_val", "n_test")


def _row(data: PreparedData, enc: EncryptedFeatures, metrics: Mapping[str, float]) -> dict[str, Any]:
    info = enc.security
    return {"dataset": data.name, "scheme": enc.scheme, "regime": enc.regime, "label": info.label,
            **{k: metrics[k] for k in ("accuracy", "macro_f1", "chance", "best_epoch")},
            "encrypt_s_per_item": enc.encrypt_s_per_item, "setup_s": enc.setup_s,
            "decrypt_s_per_item": enc.decrypt_s_per_item, "decrypt_exact": enc.decrypt_exact,
            "expansion": enc.expansion, "peak_mem_mb": enc.peak_mem_mb, "mem_items": enc.mem_items,
            "security_bits": info.security_bits, "post_quantum": info.post_quantum,
            "semantically_secure": info.semantically_secure, "parameters": info.parameters,
            "leaks": info.leaks, **{f"n_{k}": len(data.split[k]) for k in ("train", "val", "test")}}


def run_comparison(datasets: Sequence[PreparedData], keys: SchemeKeys,
                   configs: Sequence[tuple[str, str]] = DEFAULT_CONFIGS,
                   epochs: "int | Mapping[str, int]" = 20, seed: int = 0, batch_size: int = 32,
                   decrypt_items: int = 1, mem_items: int = 2, progress: bool = True) -> pd.DataFrame:
    """One row per (dataset, scheme, regime): accuracy, macro-F1, costs and security (``COLUMNS``).
    ``epochs`` is one number or one per kind (``{"tabular": 40, "image": 20}``)."""
    rows = []
    jobs = [(data, scheme, regime) for data in datasets for scheme, regime in configs]
    for data, scheme, regime in tqdm(jobs, desc="scheme x regime", unit="run", disable=not progress):
        enc = encrypt_features(data.values, scheme, regime, keys, decrypt_items=decrypt_items,
                               mem_items=mem_items, progress=progress)
        n_epochs = epochs if isinstance(epochs, int) else int(epochs[data.kind])
        metrics = train_and_evaluate(enc.features, data.labels, data.split, data.kind, len(data.class_names),
                                     n_epochs, seed=seed, batch_size=batch_size)
        rows.append(_row(data, enc, metrics))
    return pd.DataFrame(rows, columns=list(COLUMNS))


DETERMINISTIC_CONFIGS: tuple[tuple[str, str], ...] = tuple(
    (scheme, regime) for scheme, regime in DEFAULT_CONFIGS if regime not in ("none", "randomized"))


def key_spread(datasets: Sequence[PreparedData], first_keys: SchemeKeys, n_keys: int,
               configs: Sequence[tuple[str, str]] = DETERMINISTIC_CONFIGS,
               epochs: "int | Mapping[str, int]" = 20, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Accuracy of `configs` under `n_keys` key draws: `first_keys`, then fresh keys of the same sizes.

    A deterministic regime is a substitution drawn at random (the keys, and the secret table or
    fixed r, which are drawn again on every run even under one key), and how learnable it is
    varies from draw to draw: one draw is an anecdote.
    Returns one row per (key draw, dataset, scheme, regime), with ``key_draw`` 0..n_keys-1."""
    if int(n_keys) < 1:
        raise ValueError(f"n_keys must be at least 1, got {n_keys}")
    tables = []
    for draw in range(int(n_keys)):
        keys = first_keys if draw == 0 else make_keys(first_keys.paillier.public.bits, first_keys.rsa.key_size,
                                                      first_keys.lwe.params,
                                                      allow_insecure=first_keys.paillier.public.insecure_ok)
        table = run_comparison(datasets, keys, configs, epochs, seed=seed, progress=progress)
        tables.append(table[["dataset", "scheme", "regime", "label", "accuracy", "macro_f1"]]
                      .assign(key_draw=draw, paillier_key=keys.paillier.public.fingerprint))
    return pd.concat(tables, ignore_index=True)


def spread_summary(spread: pd.DataFrame) -> pd.DataFrame:
    """Accuracy over the key draws of :func:`key_spread`: mean, standard deviation, min, max."""
    grouped = spread.groupby(["dataset", "scheme", "regime", "label"], sort=False)["accuracy"]
    return grouped.agg(keys="count", mean="mean", std="std", min="min", max="max").reset_index()


# --------------------------------------------------------------------------- reporting
def split_counts(data: PreparedData) -> pd.DataFrame:
    """Items per class (rows) and part (train / val / test columns), with a Total row."""
    counts = {part: np.bincount(data.labels[idx], minlength=len(data.class_names))
              for part, idx in data.split.items()}
    table = pd.DataFrame(counts, index=pd.Index(data.class_names, name="class"))
    table.loc["Total"] = table.sum(axis=0)
    return table


def _span(accuracies: pd.Series) -> str:
    return f"{accuracies.min():.3f}" if len(accuracies) == 1 else f"{accuracies.min():.3f}-{accuracies.max():.3f}"


def summary_lines(table: pd.DataFrame, paper_accuracy: float = PAPER_ACCURACY) -> list[str]:
    """Plain-language reading of the comparison, per dataset: secure rows vs chance, deterministic
    rows vs plaintext, and which rows reach the paper's accuracy."""
    lines = []
    for name, part in table.groupby("dataset", sort=False):
        plain = part.loc[part["scheme"] == "plain", "accuracy"]
        secure = part[part["semantically_secure"]]
        order = part[(part["scheme"] == "lwe") & ~part["semantically_secure"]]
        subst = part[part["scheme"].isin(["paillier", "rsa"]) & ~part["semantically_secure"]]
        reach = part[part["accuracy"] >= paper_accuracy]
        lines.append(f"{name}: chance (majority class) {part['chance'].iloc[0]:.3f}"
                     + (f", plaintext {plain.iloc[0]:.3f}" if len(plain) else ""))
        if len(secure):
            lines.append(f"  semantically secure rows ({', '.join(secure['scheme'])}): {_span(secure['accuracy'])}")
        if len(order):
            lines.append(f"  LWE fixed_r (order kept, NOT secure): {_span(order['accuracy'])}")
        if len(subst):
            lines.append("  substitutions c mod 256 (Paillier deterministic, RSA; NOT secure): "
                         f"{_span(subst['accuracy'])}")
        lines.append(f"  rows at or above the paper's {100 * paper_accuracy:.2f}%: "
                     + (", ".join("plaintext" if r.scheme == "plain" else f"{r.scheme} {r.regime}"
                                  for r in reach.itertuples()) or "none"))
    return lines


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")


def markdown_table(df: pd.DataFrame, digits: int = 4, index: bool = False) -> str:
    """A GitHub-markdown table of ``df`` (no ``tabulate`` needed)."""
    frame = df.reset_index() if index else df
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v, digits) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


_MARKERS = {"randomized": "o", "table": "s", "fixed_r": "D", "r_one": "v", "deterministic": "^"}
_COLORS = {"paillier": "tab:blue", "rsa": "tab:red", "lwe": "tab:green"}


def plot_accuracy_vs_cost(table: pd.DataFrame, paper_accuracy: float = PAPER_ACCURACY):
    """Test accuracy vs encryption seconds per item (log x), one panel per dataset, one marker per
    scheme + regime; deterministic ones hollow and labelled NOT secure; plain and chance as lines,
    the paper's accuracy as a dotted line."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(1, len(names), figsize=(6.2 * len(names), 6.0), squeeze=False)
    for ax, name in zip(axes[0], names):
        part = table[table["dataset"] == name]
        for _, row in part[part["scheme"] != "plain"].iterrows():
            secure = bool(row["semantically_secure"])
            color = _COLORS.get(row["scheme"], "0.3")
            ax.scatter(max(row["encrypt_s_per_item"], 1e-7), row["accuracy"], s=70,
                       marker=_MARKERS.get(row["regime"], "o"), edgecolors=color, linewidths=1.6,
                       facecolors=color if secure else "none", label=f"{row['scheme']} {row['label']}")
        for _, row in part[part["scheme"] == "plain"].iterrows():
            ax.axhline(row["accuracy"], color="0.2", lw=1, label=f"plaintext: {row['accuracy']:.3f}")
        ax.axhline(part["chance"].iloc[0], color="0.5", ls="--", lw=1, label="chance (majority class)")
        ax.axhline(paper_accuracy, color="tab:purple", ls=":", lw=1.5,
                   label=f"paper: LWE {100 * paper_accuracy:.2f}% (setup not stated)")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("encryption seconds per item (one process, log scale)")
        ax.set_ylabel("test accuracy")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.suptitle("Accuracy vs encryption cost; hollow markers = deterministic, NOT secure", fontsize=10)
    fig.tight_layout()
    return fig
