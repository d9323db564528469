"""Private inference with a homomorphic linear head: the server computes on ciphertexts it
cannot read.

Step 1 (client): features of the image from a public backbone, quantized to integers, encrypted
         under the client's key in the randomized (semantically secure) regime.
Step 2 (server): the trained linear head  s = W x + b  evaluated on the ciphertexts with
         additions and plaintext-scalar multiplications only.
Step 3 (client): decrypt the scores, take the argmax.

Paillier packs the K class scores of an image into one ciphertext, E(sum_k (s_k + offset) B^k),
so the client decrypts once.  LWE returns K ciphertexts (cheap to decrypt) and needs the head's
weights small enough for the noise budget, which `quantize_head(l1_budget=...)` enforces.

Checks on the client side: quantized features must be integers in [0, feature_max] (outside, the
scores would wrap modulo the plaintext space and predictions flip silently), and degenerate
training data (constant features, one class, NaN) is refused naming the feature.

Integrity: both schemes are malleable, so a network attacker could alter the messages
undetectably.  Seal them with ``crypto.bundle`` (a ``MacKey.generate()`` shared by client and
server).  No MAC protects the client against the server itself: it computes the reply.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import gmpy2
import numpy as np

from ppdl_utils.crypto import lwe
from ppdl_utils.crypto.cipher_array import PaillierArray, decrypt_array
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.crypto.security import ParameterError
from ppdl_utils.errors import CiphertextError, DataError, PlaintextRangeError

# n = 1024, log2 q = 27: the largest q the HomomorphicEncryption.org table allows at 128-bit
# classical security for n = 1024 (ternary secret, sigma ~ 3.19); t = 2^14 leaves Delta = 2^13.
LWE_INFERENCE = lwe.LWEParams(
    n=1024, q=2**27, t=2**14, sigma=lwe.DEFAULT.sigma, name="LWE-1024-q27-t14", security_bits=128,
    note="~128-bit classical security: HomomorphicEncryption.org standard v1.1, n = 1024 allows "
         "log2 q <= 27 (ternary secret, sigma ~ 3.19). Plaintext modulus 2^14 for linear-layer scores.")


@dataclass
class QuantizedHead:
    """A linear classifier on integer features: scores = weights @ x + bias (exact integers)."""

    weights: np.ndarray  # (K, d) int64
    bias: np.ndarray  # (K,) int64
    feature_low: np.ndarray  # (d,) per-feature range fitted on the training features
    feature_high: np.ndarray
    feature_max: int  # quantized features lie in [0, feature_max]

    @property
    def n_classes(self) -> int:
        return self.weights.shape[0]

    def quantize_features(self, features: np.ndarray, clip: bool = True) -> np.ndarray:
        """Public, per-feature min-max quantization (fitted on training features only).

        Values outside the training range are clipped to it (``clip=True``, the usual practice for
        test data) or refused naming the feature (``clip=False``); NaN/inf are always refused."""
        x = _feature_matrix(features, "features", self.feature_low.shape[0])
        span = np.where(self.feature_high > self.feature_low, self.feature_high - self.feature_low, 1.0)
        scaled = (x - self.feature_low) / span
        if not clip:
            _refuse_outside(scaled, 0.0, 1.0, x, "outside the training range of the feature")
        return np.rint(np.clip(scaled, 0.0, 1.0) * self.feature_max).astype(np.int64)

    def check_quantized(self, quantized: np.ndarray) -> np.ndarray:
        """Client-side check before encryption: integers in [0, feature_max], shape (images, d).
        Outside that range the encrypted scores would wrap and the prediction flip silently."""
        q = np.asarray(quantized)
        if q.dtype.kind not in "iu":
            raise PlaintextRangeError(f"quantized features must be integers, got dtype {q.dtype} "
                                      "(call head.quantize_features first)")
        q = q.reshape(1, -1) if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self.weights.shape[1]:
            raise PlaintextRangeError(f"quantized features must have shape (images, {self.weights.shape[1]}), "
                                      f"got {np.shape(quantized)}")
        _refuse_outside(q, 0, self.feature_max, q, f"outside the quantization range [0, {self.feature_max}]")
        return q.astype(np.int64)

    def scores(self, quantized: np.ndarray) -> np.ndarray:
        """The plaintext reference the encrypted evaluation must match exactly."""
        return np.asarray(quantized, dtype=np.int64) @ self.weights.T + self.bias

    @property
    def max_abs_score(self) -> int:
        return int((np.abs(self.weights).sum(axis=1) * self.feature_max + np.abs(self.bias)).max())


def _refuse_outside(values: np.ndarray, low: float, high: float, shown: np.ndarray, why: str) -> None:
    """PlaintextRangeError naming the first (image, feature) whose value lies outside [low, high]."""
    bad = np.argwhere((values < low) | (values > high))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        raise PlaintextRangeError(f"feature {column} of image {row} is {shown[row, column]}, {why} "
                                  f"({len(bad)} value(s) in all)")


def _feature_matrix(features: np.ndarray, name: str, width: int | None = None) -> np.ndarray:
    """A finite float matrix (rows, width); DataError naming the first bad feature otherwise."""
    try:
        x = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} are not a numeric matrix: {exc}") from None
    if x.ndim != 2 or (width is not None and x.shape[1] != width) or not x.size:
        raise DataError(f"{name} must be a non-empty matrix (rows, {width or 'd'}), got shape {x.shape}")
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        raise DataError(f"feature {int(bad[0][1])} of row {int(bad[0][0])} of the {name} is {x[tuple(bad[0])]}")
    return x


def _check_training_data(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = _feature_matrix(features, "training features")
    y = np.asarray(labels)
    if y.shape != (x.shape[0],):
        raise DataError(f"labels must have shape ({x.shape[0]},) like the training features, got {y.shape}")
    if len(np.unique(y)) < 2:
        raise DataError(f"the training labels hold a single class ({np.unique(y).tolist()}): nothing to learn")
    constant = np.flatnonzero(x.max(axis=0) == x.min(axis=0))
    if len(constant):
        raise DataError(f"training feature {int(constant[0])} is constant (always {x[0, constant[0]]:g})"
                        f"{f' as are {len(constant) - 1} others' if len(constant) > 1 else ''}: it cannot be "
                        "quantized or learned from; drop it (e.g. features[:, features.std(0) > 0])")
    return x, y


def fit_quantized_head(features: np.ndarray, labels: np.ndarray, feature_bits: int = 8,
                       weight_bits: int = 8, l1_budget: int | None = None,
                       score_limit: int | None = None, C: float = 1.0, seed: int = 0) -> QuantizedHead:
    """Fit a logistic-regression head on quantized training features, then quantize its weights to
    `weight_bits`; for LWE also scale them so every row's L1 norm is at most `l1_budget` (noise)
    and every score's magnitude at most `score_limit` (plaintext modulus)."""
    for name, value, lo in (("feature_bits", feature_bits, 1), ("weight_bits", weight_bits, 2)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not lo <= value <= 16:
            raise ParameterError(f"{name} must be an integer in [{lo}, 16], got {value!r}")
    features, labels = _check_training_data(features, labels)
    low, high = features.min(axis=0), features.max(axis=0)
    feature_max = (1 << feature_bits) - 1
    head = QuantizedHead(np.zeros((1, features.shape[1]), np.int64), np.zeros(1, np.int64), low, high,
                         feature_max)
    unit = head.quantize_features(features) / feature_max
    from sklearn.linear_model import LogisticRegression  # here: server workers import this module and never fit

    model = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(unit, labels)
    weights, bias = model.coef_, model.intercept_
    if weights.shape[0] == 1:  # binary: sklearn keeps one row; use (-w, w) so argmax works
        weights, bias = np.vstack([-weights / 2, weights / 2]), np.array([-bias[0] / 2, bias[0] / 2])
    scale = ((1 << (weight_bits - 1)) - 1) / np.abs(weights).max()
    if l1_budget is not None:
        scale = min(scale, l1_budget / np.abs(weights).sum(axis=1).max())
    if score_limit is not None:  # |score| <= scale * fmax * (|w|_1 + |b|) before rounding
        scale = min(scale, score_limit / (feature_max * (np.abs(weights).sum(axis=1) + np.abs(bias)).max()))
    # truncation toward zero keeps both budgets satisfied after rounding
    round_ = np.rint if l1_budget is None and score_limit is None else np.trunc
    if not np.isfinite(scale) or scale <= 0:
        raise DataError("the fitted head has all-zero weights (no feature separates the classes at this C): "
                        "nothing to quantize")
    head.weights = round_(weights * scale).astype(np.int64)
    head.bias = round_(bias * scale * feature_max).astype(np.int64)
    return head


def packing_parameters(head: QuantizedHead) -> tuple[int, int]:
    """(offset, B): s_k + offset lies in [0, B), so K scores fit one plaintext in base B."""
    offset = head.max_abs_score
    return offset, 1 << (2 * offset + 1).bit_length()


def pack_scores(scores: np.ndarray, offset: int, base: int) -> int:
    """sum_k (s_k + offset) B^k; every digit must lie in [0, B)."""
    digits = [int(s) + offset for s in np.ravel(scores)]
    if any(not 0 <= d < base for d in digits):
        raise PlaintextRangeError(f"scores {list(np.ravel(scores))} do not fit offset {offset} and base {base}")
    return sum(d * base ** k for k, d in enumerate(digits))


def unpack_scores(packed: int, n_classes: int, offset: int, base: int) -> np.ndarray:
    digits = [(packed // base ** k) % base for k in range(n_classes)]
    return np.array([d - offset for d in digits], dtype=np.int64)


class PaillierHeadServer:
    """Evaluates a QuantizedHead on Paillier-encrypted features; holds no secret."""

    def __init__(self, head: QuantizedHead, public: PaillierPublicKey) -> None:
        self.head, self.public = head, public
        self.offset, self.base = packing_parameters(head)
        if head.n_classes * math.log2(self.base) >= public.bits - 1:
            raise ParameterError("packed scores would not fit one plaintext: use a larger key or fewer bits")
        powers = [self.base ** k for k in range(head.n_classes)]
        # feature j contributes c_j^(sum_k w_kj B^k): one exponentiation per feature, not K
        self.exponents = [sum(int(w) * p for w, p in zip(column, powers)) for column in head.weights.T]
        constant = sum((int(b) + self.offset) * p for b, p in zip(head.bias, powers))
        self.encrypted_constant = (1 + constant * public.n) % public.n_square  # g^constant

    def evaluate(self, features: PaillierArray) -> int:
        """One packed ciphertext of all K scores (positive and negative exponents are gathered
        separately so that a single modular inversion serves the whole image)."""
        if features.public.n != self.public.n or features.values.size != len(self.exponents):
            raise CiphertextError(f"expected {len(self.exponents)} feature ciphertexts under key "
                                  f"{self.public.fingerprint}, got {features.values.size} "
                                  f"under {features.public.fingerprint}")
        n2 = gmpy2.mpz(self.public.n_square)
        positive, negative = gmpy2.mpz(self.encrypted_constant), gmpy2.mpz(1)
        for c, e in zip(features.values.ravel(), self.exponents):
            if e > 0:
                positive = positive * gmpy2.powmod(c, e, n2) % n2
            elif e < 0:
                negative = negative * gmpy2.powmod(c, -e, n2) % n2
        return int(positive * gmpy2.invert(negative, n2) % n2)

    def decode(self, private: PaillierPrivateKey, packed: int) -> np.ndarray:
        """Client side: one decryption, then the K scores."""
        plain = int(decrypt_array(private, PaillierArray(np.array([packed], dtype=object), self.public))[0])
        return unpack_scores(plain, self.head.n_classes, self.offset, self.base)


class LWEHeadServer:
    """Evaluates a QuantizedHead on LWE-encrypted features with lwe.dot_plain."""

    def __init__(self, head: QuantizedHead, params: lwe.LWEParams = LWE_INFERENCE) -> None:
        if 2 * head.max_abs_score >= params.t:
            raise ParameterError(f"scores up to {head.max_abs_score} do not fit plaintext modulus t = {params.t}: "
                             "lower feature_bits or l1_budget")
        self.head, self.params = head, params

    def evaluate(self, features: lwe.LWECiphertext) -> lwe.LWECiphertext:
        return lwe.dot_plain(features, self.head.weights) + self.head.bias

    def decode(self, key: lwe.LWESecretKey, scores: lwe.LWECiphertext) -> np.ndarray:
        values = lwe.decrypt(key, scores)
        return np.where(values >= self.params.t // 2, values - self.params.t, values)


def lwe_head_budgets(params: lwe.LWEParams = LWE_INFERENCE) -> dict[str, int]:
    """Keyword arguments for fit_quantized_head: the largest row L1 norm of W that keeps a fresh
    ciphertext's noise under Delta/2, and the largest |score| that fits the plaintext modulus."""
    return {"l1_budget": (params.delta - 1) // (2 * params.error_bound), "score_limit": params.t // 2 - 1}


@dataclass
class InferenceRun:
    """Per-image measurements of one scheme (seconds, bytes) and the decrypted predictions."""

    scheme: str
    predictions: np.ndarray
    reference: np.ndarray  # argmax of the plaintext quantized head
    client_encrypt_s: float
    server_s: float
    client_decrypt_s: float
    plaintext_head_s: float
    bytes_up: int
    bytes_down: int

    @property
    def mismatches(self) -> int:
        return int((self.predictions != self.reference).sum())

    def summary(self, labels: np.ndarray | None = None) -> dict[str, object]:
        total = self.client_encrypt_s + self.server_s + self.client_decrypt_s
        row = {"scheme": self.scheme, "images": len(self.predictions), "mismatches": self.mismatches,
               "client_encrypt_ms": 1e3 * self.client_encrypt_s, "server_ms": 1e3 * self.server_s,
               "client_decrypt_ms": 1e3 * self.client_decrypt_s, "end_to_end_ms": 1e3 * total,
               "plaintext_head_ms": 1e3 * self.plaintext_head_s,
               "ratio_to_plaintext_head": total / max(self.plaintext_head_s, 1e-9),
               "bytes_up": self.bytes_up, "bytes_down": self.bytes_down}
        if labels is not None:
            row["accuracy"] = float((self.predictions == labels).mean())
        return row


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def run_paillier(head: QuantizedHead, private: PaillierPrivateKey, quantized: np.ndarray) -> InferenceRun:
    """Steps 1-3 for every image (rows of `quantized`), timed per step, averaged per image.
    The quantized features are checked on the client side first (PlaintextRangeError)."""
    quantized = head.check_quantized(quantized)
    server = PaillierHeadServer(head, private.public)
    encryptor = FastEncryptor(private)
    times, predictions = np.zeros(4), []
    for x in quantized:
        values, t_enc = _timed(lambda: np.array([int(c) for c in encryptor.encrypt_many(x)], dtype=object))
        packed, t_srv = _timed(server.evaluate, PaillierArray(values, private.public, Regime.RANDOMIZED.value))
        scores, t_dec = _timed(server.decode, private, packed)
        _, t_plain = _timed(head.scores, x[None])
        times += (t_enc, t_srv, t_dec, t_plain)
        predictions.append(int(np.argmax(scores)))
    times /= max(len(quantized), 1)
    return InferenceRun("Paillier", np.array(predictions), head.scores(quantized).argmax(axis=1), *times,
                        bytes_up=quantized.shape[1] * private.public.ciphertext_nbytes,
                        bytes_down=private.public.ciphertext_nbytes)


def run_lwe(head: QuantizedHead, key: lwe.LWESecretKey, quantized: np.ndarray) -> InferenceRun:
    """As run_paillier, with LWE; the same client-side check of the quantized features."""
    quantized = head.check_quantized(quantized)
    server = LWEHeadServer(head, key.params)
    times, predictions = np.zeros(4), []
    for x in quantized:
        ct, t_enc = _timed(lwe.encrypt, key, x, Regime.RANDOMIZED)
        scores_ct, t_srv = _timed(server.evaluate, ct)
        scores, t_dec = _timed(server.decode, key, scores_ct)
        _, t_plain = _timed(head.scores, x[None])
        times += (t_enc, t_srv, t_dec, t_plain)
        predictions.append(int(np.argmax(scores)))
    times /= max(len(quantized), 1)
    per_element = key.params.ciphertext_nbytes_per_element
    return InferenceRun("LWE", np.array(predictions), head.scores(quantized).argmax(axis=1), *times,
                        bytes_up=quantized.shape[1] * per_element, bytes_down=head.n_classes * per_element)


@dataclass
class PCAProjection:
    """A public linear projection (fitted on training features) shrinking d for LWE's budgets."""

    mean: np.ndarray
    components: np.ndarray  # (k, d)

    @classmethod
    def fit(cls, features: np.ndarray, dim: int) -> "PCAProjection":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=min(dim, *features.shape), random_state=0).fit(features)
        return cls(pca.mean_, pca.components_)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) @ self.components.T


def float_head_accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray,
                        test_labels: np.ndarray, seed: int = 0) -> float:
    """Test accuracy of the unquantized head (same min-max feature scaling, float weights): the
    plain model that the quantized, encrypted heads are compared with."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    model = make_pipeline(MinMaxScaler(clip=True), LogisticRegression(max_iter=2000, random_state=seed))
    return float(model.fit(train, train_labels).score(test, test_labels))
