"""Rung 2 of the privacy ladder: a linear head, trained in the clear by the server (the model owner),
evaluated on the client's encrypted features of a whole test split, under Paillier and under LWE.

Both schemes are additive: the server computes s = W x + b with additions and plaintext-integer
multiplications, so features and weights are integers here and every decrypted score must equal the
plaintext integer computation (the *twin*) exactly.

* Paillier (2048-bit, randomized): features scaled by the same :class:`FeatureRange` as rung 3, quantized
  to ``feature_bits``; weights to ``weight_bits``.  Images are packed in plaintext slots
  (:mod:`ppdl_utils.crypto.paillier_packed`): one ciphertext per feature carries that feature of up to
  31 images, and one ciphertext per class returns every image's score.
* LWE (n = 1024, log q = 27, ~128-bit): every ciphertext's noise grows with the L1 norm of a weight row,
  and the budget (``lwe_head_budgets``) allows |W|_1 of about 200, far too little for 2,368 features.  The
  client therefore sends a public PCA projection of its scaled features (``lwe_dim`` components, fitted
  by the server on the training split) quantized to ``lwe_feature_bits``: an exact, but coarser, head.

The quantized head's predictions differ from the float head's only where the float margin is within the
quantization's worst-case error (:meth:`IntegerHead.error_bound`): such images are *near-ties*.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppdl_utils.crypto import lwe
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.paillier import PaillierPrivateKey
from ppdl_utils.crypto.paillier_packed import DEFAULT_SLOT_BITS, PackedLinear, decrypt_scores, encrypt_columns
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.crypto.security import ParameterError
from ppdl_utils.errors import DataError
from ppdl_utils.learning.encrypted_common import FeatureRange, timed_ms
from ppdl_utils.learning.private_head import predictions_from_scores
from ppdl_utils.learning.private_inference import (
    LWE_INFERENCE,
    LWEHeadServer,
    PCAProjection,
    QuantizedHead,
    fit_quantized_head,
    float_head_accuracy,
    lwe_head_budgets,
)

__all__ = ["IntegerHead", "fit_integer_head", "LinearRun", "run_paillier_packed", "LWEHead", "fit_lwe_head",
           "run_lwe_batched"]


@dataclass
class IntegerHead:
    """A logistic-regression head on [0, 1]-scaled features and its integer version.

    Binary heads keep one row (the logit of class 1, predicted when > 0); K classes keep K rows (argmax).
    Integer scores are ``weight_scale * feature_max`` times the float scores, up to rounding."""

    feature_range: FeatureRange
    coef: np.ndarray        # (rows, d) float
    intercept: np.ndarray   # (rows,)
    weights: np.ndarray     # (rows, d) int64
    bias: np.ndarray        # (rows,) int64
    feature_max: int
    weight_scale: float

    def scaled(self, features: np.ndarray) -> np.ndarray:
        """Features in [0, 1]: a value beyond the widened training range is clipped (rung 3 does the same)."""
        r = self.feature_range
        return r.transform(np.clip(np.asarray(features, dtype=np.float64), r.low, r.high))

    def quantize(self, features: np.ndarray) -> np.ndarray:
        return np.rint(self.scaled(features) * self.feature_max).astype(np.int64)

    def float_scores(self, features: np.ndarray) -> np.ndarray:
        return self.scaled(features) @ self.coef.T + self.intercept

    def integer_scores(self, quantized: np.ndarray) -> np.ndarray:
        """The plaintext twin the encrypted scores must equal exactly."""
        return np.asarray(quantized, dtype=np.int64) @ self.weights.T + self.bias

    def error_bound(self, features: np.ndarray) -> np.ndarray:
        """Per image and row, the largest |integer score / (S F) - float score| rounding can cause:
        with w_q = S w + dw, x_q = F x + dx, |dw|, |dx| <= 1/2, each term errs by at most
        (S |w| + F x) / 2 + 1/4, the bias by 1/2."""
        x = self.scaled(features)
        s, f = self.weight_scale, self.feature_max
        per_row = 0.5 * s * np.abs(self.coef).sum(axis=1) + 0.25 * x.shape[1] + 0.5
        return (per_row[None, :] + 0.5 * f * x.sum(axis=1, keepdims=True)) / (s * f)


def fit_integer_head(features: np.ndarray, labels: np.ndarray, feature_bits: int = 16, weight_bits: int = 16,
                     C: float = 1.0, seed: int = 0) -> IntegerHead:
    """Fit the float head on the scaled training features, then quantize features and weights."""
    for name, value in (("feature_bits", feature_bits), ("weight_bits", weight_bits)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 2 <= value <= 24:
            raise ParameterError(f"{name} must be an integer in [2, 24], got {value!r}")
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise DataError(f"the training labels hold a single class ({np.unique(labels).tolist()}): nothing to learn")
    feature_range = FeatureRange.fit(features)
    from sklearn.linear_model import LogisticRegression  # the server fits; the client never imports sklearn here

    model = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(feature_range.transform(features), labels)
    coef, intercept = model.coef_, model.intercept_
    if not np.abs(coef).max() > 0:
        raise DataError("the fitted head has all-zero weights (no feature separates the classes at this C)")
    feature_max = (1 << feature_bits) - 1
    scale = ((1 << (weight_bits - 1)) - 1) / np.abs(coef).max()
    return IntegerHead(feature_range, coef, intercept, np.rint(coef * scale).astype(np.int64),
                       np.rint(intercept * scale * feature_max).astype(np.int64), feature_max, float(scale))


@dataclass
class LinearRun:
    """What one scheme did on a test split: per-image predictions, the decrypted and twin scores, and
    totals of client/server CPU seconds (one core) and bytes."""

    scheme: str
    predictions: np.ndarray
    scores: np.ndarray
    twin_scores: np.ndarray
    client_encrypt_s: float
    server_s: float
    client_decrypt_s: float
    bytes_up: int
    bytes_down: int
    images_per_ciphertext: int

    @property
    def n(self) -> int:
        return len(self.predictions)

    @property
    def mismatches_vs_twin(self) -> int:
        return int((self.predictions != predictions_from_scores(self.twin_scores)).sum())

    @property
    def max_score_error(self) -> int:
        """Largest |decrypted - twin| integer score: 0 for an exact scheme."""
        return int(np.abs(np.asarray(self.scores, dtype=object) - np.asarray(self.twin_scores, dtype=object)).max())

    def per_image(self) -> dict[str, float]:
        """Milliseconds and bytes per image (batched: amortized over the split)."""
        return {"encrypt_ms": 1000 * self.client_encrypt_s / self.n, "server_ms": 1000 * self.server_s / self.n,
                "decrypt_ms": 1000 * self.client_decrypt_s / self.n, "bytes_up": self.bytes_up / self.n,
                "bytes_down": self.bytes_down / self.n}


def _cpu_s(function, *args):
    """(result, CPU seconds of this process): :func:`timed_ms`'s CPU clock, in the run's seconds."""
    result, _, cpu_ms = timed_ms(function, *args)
    return result, cpu_ms / 1000.0


def run_paillier_packed(head: IntegerHead, private: PaillierPrivateKey, features: np.ndarray,
                        slot_bits: int = DEFAULT_SLOT_BITS) -> LinearRun:
    """Every test image (rows of `features`, in the clear on the client) classified under Paillier, in
    batches of one image per slot.  The head's slot bound is checked before anything is encrypted."""
    server = PackedLinear(head.weights, head.bias, head.feature_max, private.public, slot_bits)
    quantized = head.quantize(features)
    encryptor = FastEncryptor(private)
    slots, totals, scores = server.layout.slots, np.zeros(3), []
    bytes_up = bytes_down = 0
    for start in range(0, len(quantized), slots):
        batch = quantized[start:start + slots]
        columns, t_enc = _cpu_s(encrypt_columns, encryptor, batch, server.layout, head.feature_max)
        replies, t_srv = _cpu_s(server.evaluate, columns)
        batch_scores, t_dec = _cpu_s(decrypt_scores, private, replies, server, len(batch))
        totals += (t_enc, t_srv, t_dec)
        scores.append(batch_scores)
        bytes_up += columns.nbytes
        bytes_down += len(replies) * private.public.ciphertext_nbytes
    scores = np.concatenate(scores)
    return LinearRun(f"Paillier {private.public.bits}", predictions_from_scores(scores), scores,
                     head.integer_scores(quantized), *totals, bytes_up=bytes_up, bytes_down=bytes_down,
                     images_per_ciphertext=slots)


@dataclass
class LWEHead:
    """The LWE rung's head: the scaling of rung 3, a public PCA projection, a budgeted quantized head."""

    feature_range: FeatureRange
    projection: PCAProjection
    head: QuantizedHead
    float_accuracy: float  # the unquantized head on the same projection (test split)

    def quantize(self, features: np.ndarray) -> np.ndarray:
        r = self.feature_range
        return self.head.quantize_features(self.projection(r.transform(np.clip(features, r.low, r.high))))


def fit_lwe_head(features: np.ndarray, labels: np.ndarray, test_features: np.ndarray, test_labels: np.ndarray,
                 dim: int = 32, feature_bits: int = 5, params: lwe.LWEParams = LWE_INFERENCE,
                 seed: int = 0) -> LWEHead:
    """Fit the projection and the head on the training split within the noise and plaintext budgets of
    `params`; the test split only measures the unquantized head's accuracy."""
    feature_range = FeatureRange.fit(features)
    scaled = feature_range.transform(features)
    projection = PCAProjection.fit(scaled, dim)
    train = projection(scaled)
    head = fit_quantized_head(train, labels, feature_bits=feature_bits, seed=seed, **lwe_head_budgets(params))
    test = projection(feature_range.transform(np.clip(test_features, feature_range.low, feature_range.high)))
    return LWEHead(feature_range, projection, head, float_head_accuracy(train, labels, test, test_labels, seed))


def run_lwe_batched(head: LWEHead, key: lwe.LWESecretKey, features: np.ndarray, batch: int = 64) -> LinearRun:
    """Every test image under LWE: (batch, dim) ciphertexts at a time, W applied to the whole batch."""
    quantized = head.head.check_quantized(head.quantize(features))
    server = LWEHeadServer(head.head, key.params)
    totals, scores = np.zeros(3), []
    for start in range(0, len(quantized), batch):
        ct, t_enc = _cpu_s(lwe.encrypt, key, quantized[start:start + batch], Regime.RANDOMIZED)
        replies, t_srv = _cpu_s(server.evaluate, ct)
        batch_scores, t_dec = _cpu_s(server.decode, key, replies)
        totals += (t_enc, t_srv, t_dec)
        scores.append(batch_scores)
    scores = np.concatenate(scores)
    per_element = key.params.ciphertext_nbytes_per_element
    return LinearRun(f"LWE n={key.params.n}", scores.argmax(axis=1), scores, head.head.scores(quantized), *totals,
                     bytes_up=quantized.size * per_element, bytes_down=scores.size * per_element,
                     images_per_ciphertext=1)
