"""A logistic-regression head trained and evaluated by a server that only ever holds CKKS ciphertexts.

Parties and what each sees
--------------------------
* **Client / key holder** (the hospital): runs the public ImageNet backbone on its own images in the
  clear, encrypts the features once (SIMD-packed, :mod:`ppdl_utils.crypto.ckks_packed`), keeps the secret
  key.  During training it runs the optimizer: per step it decrypts the logits of its own training
  examples and the gradient, and encrypts new weights and the residuals.  It sees its own data, its own
  model and these per-step values, nothing of anybody else's.
* **Server**: receives the evaluation keys and ciphertexts only (features, weights, residuals) and does
  the O(n·d) work of every step: ``X w`` and ``R^T X`` on ciphertexts.  It learns the sizes (examples,
  features, classes, steps), never a value; the labels never leave the client, not even encrypted.

One training step (multinomial logistic regression, L2 penalty, optimizer L-BFGS in the key holder's
hands)::

    key holder:  W  = weights in raw feature units (standardization folded in)  -> Enc(W)
    server:      Enc(Z) = Enc(X) Enc(W)^T                                          -> key holder
    key holder:  Z -> loss, R = (softmax(Z) - onehot(y)) / n                       -> Enc(R)
    server:      Enc(G) = Enc(R)^T Enc(X)                                          -> key holder
    key holder:  G -> gradient -> L-BFGS step

The *plaintext twin* runs the same optimizer with the same two products computed in float64
(:class:`ClearOracle`); the encrypted run uses :class:`EncryptedOracle`.  Both go through
:func:`fit_logistic_head`, so the only difference between them is where the products are computed.
Standardization statistics (per-feature mean and standard deviation) come from the same oracles: the
server computes ``1^T X`` and the column sums of squares on ciphertexts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.optimize import minimize
from tqdm.auto import tqdm

from ppdl_utils.crypto.ckks_packed import (
    KeyHolder,
    PackedLayout,
    PackedMatrix,
    PackedServer,
    PackingError,
    serialized_bytes,
)
from ppdl_utils.errors import PlaintextRangeError, PPDLError

__all__ = [
    "PrivateHeadError", "FeatureMismatchError", "LogisticHead", "ClearOracle", "EncryptedOracle",
    "fit_logistic_head", "TrainingLog", "encrypted_predict", "check_training_labels",
]


class PrivateHeadError(PPDLError, ValueError):
    """The private head cannot be trained or applied as asked; the message names the input."""


class FeatureMismatchError(PrivateHeadError):
    """Features come from another extractor (backbone, resolution, blocks) than the head was trained on."""


@dataclass
class LogisticHead:
    """Weights in raw feature units plus a bias column: ``scores = [x, 1] @ weights.T``."""

    weights: np.ndarray              # (K, d + 1); K = 1 for two classes (one logit)
    n_classes: int
    extractor: str                   # fingerprint of the feature extractor it was trained on
    feature_low: np.ndarray = field(repr=False)   # per-feature range seen in training, for the input check
    feature_high: np.ndarray = field(repr=False)

    def scores(self, x: np.ndarray) -> np.ndarray:
        return augment(x) @ self.weights.T

    def predict(self, x: np.ndarray) -> np.ndarray:
        return predictions_from_scores(self.scores(x))


def augment(x: np.ndarray) -> np.ndarray:
    """Features with a constant-1 column: the bias becomes one more encrypted weight."""
    x = np.asarray(x, dtype=np.float64)
    return np.hstack([x, np.ones((len(x), 1))])


def predictions_from_scores(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores)
    return (scores[:, 0] > 0).astype(np.int64) if scores.shape[1] == 1 else scores.argmax(axis=1)


def check_training_labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise PrivateHeadError(f"y_train must be a 1-D array of integer labels; got {y.dtype} {y.shape}")
    if n_classes < 2 or y.min(initial=0) < 0 or y.max(initial=0) >= n_classes:
        raise PrivateHeadError(f"y_train labels must lie in 0..{n_classes - 1} (n_classes={n_classes})")
    present = np.unique(y)
    if len(present) < 2:
        raise PrivateHeadError(f"y_train holds one class only ({present.tolist()}): nothing to separate")
    return y.astype(np.int64)


class Oracle(Protocol):
    """The two products a training step needs, and the moments for standardization."""

    n_rows: int

    def logits(self, weights: np.ndarray) -> np.ndarray: ...

    def residual_products(self, residuals: np.ndarray) -> np.ndarray: ...

    def column_moments(self) -> tuple[np.ndarray, np.ndarray]: ...


class ClearOracle:
    """The plaintext twin: the same products in float64."""

    def __init__(self, x: np.ndarray):
        self.x = augment(x)
        self.n_rows = len(x)

    def logits(self, weights: np.ndarray) -> np.ndarray:
        return self.x @ weights.T

    def residual_products(self, residuals: np.ndarray) -> np.ndarray:
        return residuals.T @ self.x

    def column_moments(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x.sum(axis=0), (self.x ** 2).sum(axis=0)


@dataclass
class TrafficLog:
    """Bytes and server CPU seconds of an encrypted run, counted as they happen."""

    bytes_up: int = 0
    bytes_down: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0


class EncryptedOracle:
    """The same products computed by :class:`PackedServer` on ciphertexts.

    The key holder's side (encrypt, decrypt) and the server's side run in one process here; the clock
    of each side is kept apart (``time.process_time``: CPU seconds of this process, one core) and the
    bytes that would travel are counted from SEAL's serialization of the first step's ciphertexts.
    """

    def __init__(self, key_holder: KeyHolder, server: PackedServer, x: PackedMatrix, extractor: str,
                 column_abs_sum: float, feature_abs_max: np.ndarray | None = None, count_bytes: bool = True):
        if x.fingerprint != key_holder.fingerprint:
            raise PackingError(f"x was encrypted under key {x.fingerprint}, not the key holder's "
                               f"{key_holder.fingerprint}")
        if x.tag != extractor:
            raise FeatureMismatchError(f"training features come from extractor {x.tag or 'unknown'}; the head is "
                                       f"being trained for {extractor}")
        self.key_holder, self.server, self.x = key_holder, server, x
        self.layout: PackedLayout = x.layout
        self.n_rows = x.n_rows
        self.column_abs_sum = float(column_abs_sum)  # max_j sum_i |x_ij|, known to the key holder (its data)
        self.feature_abs_max = feature_abs_max      # max_i |x_ij| per column (with the constant 1), likewise
        self.log = TrafficLog()
        self._count_bytes = count_bytes
        self._sizes: dict[str, int] = {}

    def _size(self, name: str, packed) -> int:
        if name not in self._sizes and self._count_bytes:
            self._sizes[name] = serialized_bytes(packed)
        return self._sizes.get(name, 0)

    def _client(self, function, *args):
        start = time.process_time()
        out = function(*args)
        self.log.client_cpu_s += time.process_time() - start
        return out

    def _server(self, function, *args):
        start = time.process_time()
        out = function(*args)
        self.log.server_cpu_s += time.process_time() - start
        return out

    def logits(self, weights: np.ndarray) -> np.ndarray:
        bound = self.key_holder.params.max_abs_result
        if self.feature_abs_max is not None:  # checked before encrypting: a wrapped logit decrypts to garbage
            worst = float((np.abs(weights) @ self.feature_abs_max).max(initial=0.0))
            if worst >= bound / 2:
                raise PlaintextRangeError(f"logits could reach {worst:.0f}, beyond half the {bound:.0f} the packed "
                                          f"parameters hold; use a stronger l2 penalty")
        packed_w = self._client(self.key_holder.encrypt_weights, weights, self.layout)
        packed_w.tag = self.x.tag
        scores = self._server(self.server.logits, self.x, packed_w)
        self.log.bytes_up += self._size("weights", packed_w)
        self.log.bytes_down += self._size("scores", scores)
        z = self._client(self.key_holder.decrypt_scores, scores)
        if np.abs(z).max(initial=0) > bound / 2:
            raise PlaintextRangeError(f"logits reach {np.abs(z).max():.0f}, near the {bound:.0f} the packed "
                                      f"parameters hold; lower the learning problem's scale (stronger l2)")
        return z

    def residual_products(self, residuals: np.ndarray) -> np.ndarray:
        # The CKKS error is absolute (about 1e-4 of the result's units), while a gradient near the optimum
        # is small: the residuals are scaled up as far as the result's bound allows (the key holder knows
        # the largest column sum of |x|) and the products scaled back after decryption.
        bound = self.key_holder.params.max_abs_result
        largest = float(np.abs(residuals).max(initial=0.0))
        gain = 1.0 if largest == 0 else 0.25 * bound / (largest * self.column_abs_sum)
        packed_r = self._client(self.key_holder.encrypt_residuals, residuals * gain, self.layout)
        gradient = self._server(self.server.gradient, self.x, packed_r)
        self.log.bytes_up += self._size("residuals", packed_r)
        self.log.bytes_down += self._size("gradient", gradient)
        return self._client(self.key_holder.decrypt_gradient, gradient) / gain

    def column_moments(self) -> tuple[np.ndarray, np.ndarray]:
        ones = np.ones((self.n_rows, 1))
        sums = self.residual_products(ones)[0]
        squares = self._server(self.server.column_squares, self.x)
        second = self._client(self.key_holder.decrypt_gradient, squares)[0]
        return sums, second


@dataclass
class TrainingLog:
    """What an optimizer run did: steps, final loss, and the key holder's view per step."""

    steps: int
    loss: float
    seconds: float
    key_holder_sees: str = ("per step: the logits of its own training examples, the gradient of the loss "
                            "and the new weights (its own model); never anything from another party")


def _softmax_residuals(z: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and d loss / d z (one logit for two classes, softmax otherwise)."""
    n = len(y)
    if n_classes == 2:
        s = z[:, 0]
        loss = float(np.mean(np.logaddexp(0.0, s) - y * s))
        return loss, ((1.0 / (1.0 + np.exp(-s)) - y) / n)[:, None]
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_p[np.arange(n), y].mean())
    residuals = np.exp(log_p)
    residuals[np.arange(n), y] -= 1.0
    return loss, residuals / n


def fit_logistic_head(oracle: Oracle, y: np.ndarray, n_classes: int, l2: float = 1e-3, max_steps: int = 100,
                      extractor: str = "", feature_low: np.ndarray | None = None,
                      feature_high: np.ndarray | None = None, progress: bool = True
                      ) -> tuple[LogisticHead, TrainingLog]:
    """L2-penalised logistic regression fitted through ``oracle`` (clear twin or ciphertexts).

    The optimizer works in standardized coordinates (per-feature mean 0, variance 1, from the oracle's
    column moments) and hands the oracle weights in raw units: standardization is folded into the
    weights and the bias, so the server never standardizes anything.  L-BFGS stops after ``max_steps``
    iterations (each costs one or a few oracle calls) or when the gradient vanishes.
    """
    y = check_training_labels(y, n_classes)
    if max_steps < 1 or not np.isfinite(l2) or l2 < 0:
        raise PrivateHeadError(f"max_steps={max_steps} must be >= 1 and l2={l2} finite and >= 0")
    n = oracle.n_rows
    if n != len(y):
        raise PrivateHeadError(f"y_train has {len(y)} labels; the training features have {n} rows")
    sums, squares = oracle.column_moments()
    mean = sums[:-1] / n
    std = np.sqrt(np.maximum(squares[:-1] / n - mean ** 2, 0.0))
    std = np.where(std > 1e-6 * max(std.max(initial=0), 1e-12), std, 1.0)  # dead or constant features
    k = 1 if n_classes == 2 else n_classes
    d = len(mean)

    def raw_weights(theta: np.ndarray) -> np.ndarray:
        v, b = theta[:k * d].reshape(k, d), theta[k * d:]
        scaled = v / std
        return np.hstack([scaled, (b - scaled @ mean)[:, None]])

    evaluations = tqdm(total=max_steps, desc="training steps", disable=not progress, unit="step")
    state = {"calls": 0}

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        state["calls"] += 1
        z = oracle.logits(raw_weights(theta))
        loss, residuals = _softmax_residuals(z, y, n_classes)
        products = oracle.residual_products(residuals)          # R^T [X, 1]: (k, d + 1)
        grad_v = (products[:, :-1] - np.outer(products[:, -1], mean)) / std
        v = theta[:k * d].reshape(k, d)
        loss += 0.5 * l2 * float((v ** 2).sum())
        grad = np.concatenate([(grad_v + l2 * v).ravel(), products[:, -1]])
        return loss, grad

    start = time.perf_counter()
    theta, iterations, loss = np.zeros(k * d + k), 0, float("nan")
    # CKKS values carry an error of about 1e-4: near the optimum a line search can fail on it.  L-BFGS
    # then restarts from where it stopped (losing its curvature memory) until the budget is spent.
    while iterations < max_steps:
        result = minimize(loss_and_gradient, theta, jac=True, method="L-BFGS-B",
                          callback=lambda *_: evaluations.update(1),
                          options={"maxiter": int(max_steps - iterations), "gtol": 1e-7, "ftol": 1e-12})
        theta, loss = result.x, float(result.fun)
        iterations += max(int(result.nit), 1)
        if result.status == 0:
            break  # converged; status 1 is the iteration budget, status 2 a failed line search (restart)
    evaluations.close()
    log = TrainingLog(steps=state["calls"], loss=loss, seconds=time.perf_counter() - start)
    low = feature_low if feature_low is not None else np.full(d, -np.inf)
    high = feature_high if feature_high is not None else np.full(d, np.inf)
    return LogisticHead(raw_weights(theta), n_classes, extractor, low, high), log


def check_features(head: LogisticHead, x: np.ndarray, extractor: str, bound: float | None = None) -> None:
    """Refuse features of another extractor, far outside the training range, or whose scores could overflow.

    ``bound``: the largest |score| the encrypted result holds (``PackedParams.max_abs_result``); the client
    knows its features and its head, so it checks ``sum_j |w_j x_j| + |b|`` before anything is encrypted.
    """
    if extractor != head.extractor:
        raise FeatureMismatchError(f"features come from extractor {extractor}; the head was trained on "
                                   f"{head.extractor} (another backbone, resolution or block set)")
    if x.ndim != 2 or x.shape[1] != head.weights.shape[1] - 1:
        raise FeatureMismatchError(f"features have shape {x.shape}; the head expects {head.weights.shape[1] - 1} "
                                   f"features per image")
    if not np.isfinite(x).all():
        raise PlaintextRangeError("features hold NaN or infinite values")
    span = float(np.max(head.feature_high - head.feature_low, initial=0.0))
    outside = (x < head.feature_low - span) | (x > head.feature_high + span)
    if np.isfinite(span) and outside.any():
        rows = np.unique(np.nonzero(outside)[0])
        raise PlaintextRangeError(f"features of {len(rows)} image(s) (first: row {rows[0]}) lie far outside the "
                                  f"range seen in training: another kind of image, or broken preprocessing")
    if bound is not None:
        worst = (np.abs(augment(x)) @ np.abs(head.weights).T).max(initial=0.0)
        if worst >= bound / 2:
            raise PlaintextRangeError(f"scores could reach {worst:.0f}, beyond half the {bound:.0f} the CKKS "
                                      f"parameters hold: they would wrap around and decrypt to garbage")


def encrypted_predict(key_holder: KeyHolder, server: PackedServer, head: LogisticHead, x: np.ndarray,
                      extractor: str, block: int | None = None) -> tuple[np.ndarray, dict]:
    """Batched private inference: the client encrypts features, the server returns encrypted scores.

    Returns (scores, costs) with the client's and the server's CPU seconds and the bytes each way; the
    weights' encryption (once per model, not per batch) is counted apart.
    """
    check_features(head, x, extractor, key_holder.params.max_abs_result)
    layout = key_holder.layout(x.shape[1] + 1, block)
    # the encrypted weights are made once and stay with the server (after training it holds them already)
    t_w = time.process_time()
    packed_w = key_holder.encrypt_weights(head.weights, layout)
    packed_w.tag = head.extractor
    t0 = time.process_time()
    packed_x = key_holder.encrypt_matrix(augment(x), layout)
    packed_x.tag = extractor
    t1 = time.process_time()
    scores = server.logits(packed_x, packed_w)
    t2 = time.process_time()
    z = key_holder.decrypt_scores(scores)
    t3 = time.process_time()
    costs = {"client_encrypt_s": t1 - t0, "server_s": t2 - t1, "client_decrypt_s": t3 - t2,
             "bytes_up": serialized_bytes(packed_x), "bytes_down": serialized_bytes(scores),
             "weights_bytes": serialized_bytes(packed_w), "weights_encrypt_s": t0 - t_w}
    return z, costs
