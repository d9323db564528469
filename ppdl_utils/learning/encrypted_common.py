"""Shared pieces of the CKKS privacy ladder (rungs 3-5): the cost row every rung returns, input
errors, the fitted feature range, timing and the square activation used by the Keras twins."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import tenseal as ts
from sklearn.metrics import f1_score

from ppdl_utils.crypto import ckks
from ppdl_utils.errors import ImageFormatError, PlaintextRangeError

__all__ = [
    "LadderRow", "ImageTooLargeError", "InputShapeError", "FeatureRangeError", "FeatureRange",
    "timed_ms", "macro_f1", "square", "check_float_matrix", "SERVER_LEARNS", "OutputRangeError",
    "check_output_range", "encrypted_square_dense",
]


class ImageTooLargeError(ImageFormatError):
    """The image is larger than the encrypted network accepts (one ciphertext must hold it)."""


class InputShapeError(ImageFormatError):
    """An input array has the wrong dtype, shape or number of features; the message names it."""


class FeatureRangeError(PlaintextRangeError):
    """A feature lies outside the range fitted on the training data; the message names its index."""


class OutputRangeError(PlaintextRangeError):
    """The model's scores exceed what the last level of the modulus chain can hold (they would wrap)."""


#: What the server sees in each rung (besides ciphertexts, sizes and timing).
SERVER_LEARNS = {
    3: "feature count and ciphertext sizes; not the features or the scores",
    4: "image size (28 px) and ciphertext sizes; not the pixels or the scores",
    5: "training-set size and feature count; not the data or labels (the key holder sees the weights "
       "after every epoch)",
}


@dataclass
class LadderRow:
    """One rung's measured costs, per image (inference) or per epoch (training)."""

    rung: int
    name: str
    accuracy: float
    n_test: int
    macro_f1: float
    encrypt_ms: float
    server_ms: float
    decrypt_ms: float
    bytes_up: float
    bytes_down: float
    peak_memory_mb: float
    context_bytes: int
    security: str
    server_learns: str
    mismatches_vs_twin: int
    context_bytes_private: int = 0
    twin_accuracy: float = float("nan")
    server_cpu_ms: float = float("nan")  # CPU time (robust to other load on a shared machine)
    total_cpu_ms: float = float("nan")  # encrypt + server + decrypt CPU time
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for a pandas row / CSV)."""
        return asdict(self)


@dataclass
class FeatureRange:
    """Min-max scaling fitted on training features, widened by ``margin`` x span on each side.

    Encrypted arithmetic is only correct while values stay in the range the parameters were chosen
    for (the first prime bounds the integer part), so inputs outside the fitted range are refused
    instead of silently overflowing.
    """

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, margin: float = 0.25) -> "FeatureRange":
        """Fit on ``(n, d)`` training features."""
        x = check_float_matrix(features, "features")
        lo, hi = x.min(axis=0), x.max(axis=0)
        span = np.maximum(hi - lo, 1e-12)
        return cls(lo - margin * span, hi + margin * span)

    def transform(self, features: np.ndarray, parameter: str = "features") -> np.ndarray:
        """Scale into [0, 1]; raise :class:`FeatureRangeError` naming the first feature outside."""
        x = check_float_matrix(features, parameter, n_features=len(self.low))
        bad = (x < self.low) | (x > self.high)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise FeatureRangeError(
                f"{parameter}[{row}, {col}] = {x[row, col]:.4g}: feature {col} is outside its fitted range "
                f"[{self.low[col]:.4g}, {self.high[col]:.4g}] ({int(bad.any(axis=1).sum())} row(s) affected)")
        return (x - self.low) / (self.high - self.low)


def check_float_matrix(x: np.ndarray, parameter: str, n_features: int | None = None) -> np.ndarray:
    """``(n, d)`` finite real array as float64; raise :class:`InputShapeError` naming ``parameter``."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise InputShapeError(f"{parameter} has dtype {x.dtype}; expected real numbers")
    if x.ndim != 2:
        raise InputShapeError(f"{parameter} has shape {x.shape}; expected (n_samples, n_features)")
    if n_features is not None and x.shape[1] != n_features:
        raise InputShapeError(f"{parameter} has {x.shape[1]} features; the model expects {n_features}")
    if not np.isfinite(x).all():
        raise InputShapeError(f"{parameter} contains NaN or infinite values")
    return x.astype(np.float64)


def timed_ms(function: Callable, *args, **kwargs) -> tuple[Any, float, float]:
    """(result, wall ms, CPU ms of this process).

    On a shared machine the CPU time (all threads of this process) is the better estimate of what
    the step costs on an idle core; with TenSEAL ``n_threads=1`` both agree when the machine is idle.
    """
    start, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, (time.perf_counter() - start) * 1000.0, (time.process_time() - cpu) * 1000.0


def macro_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Macro-averaged F1 (every class weighs the same)."""
    return float(f1_score(labels, predictions, average="macro", zero_division=0))


def square(x):
    """x**2: the CKKS-friendly activation of the Keras twins (one multiplication)."""
    return x * x



def check_output_range(twin_scores: np.ndarray, params: ckks.CKKSParams, parameter: str = "scores") -> None:
    """Refuse to run when the plaintext twin's scores would wrap around the first prime."""
    bound, worst = ckks.output_bound(params), float(np.abs(twin_scores).max())
    if worst >= bound:
        raise OutputRangeError(f"{parameter}: the plaintext twin reaches |score| = {worst:.3g}, but the last level "
                               f"of {params.name} holds |x| < {bound:g} (first prime {params.coeff_mod_bit_sizes[0]} "
                               f"bits, scale 2^{params.global_scale_bits}); shrink the last layer (calibration)")


def encrypted_square_dense(z: ts.CKKSVector, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> ts.CKKSVector:
    """``(z + b1)**2 @ w2 + b2`` for a ciphertext ``z`` that is the output of ``.mm`` (2 levels).

    Why not ``(z + b1).square().mm(w2)``: TenSEAL's ``.mm`` leaves its result replicated across all
    slots (period ``len(b1)``); a plaintext bias lands only on the first copy, and the next ``.mm``
    rotates un-biased copies into every output but the first (TenSEAL's tutorial CNN does this, so
    all its scores but class 0 are off).  Expanding the square keeps every copy consistent:
    ``(z + b1)^2 @ W2 = z^2 @ W2 + z @ (2 b1 * W2) + b1^2 @ W2``.
    """
    cross = 2.0 * np.asarray(b1)[:, None] * w2
    constant = (np.asarray(b1) ** 2) @ w2 + b2
    with ckks.ckks_errors("encrypted_square_dense"):
        ckks.ensure_depth(z, 2, "square then dense")
        return z.square().mm(w2.tolist()) + z.mm(cross.tolist()) + constant.tolist()


def inference_row(rung: int, name: str, runs: list[dict], twin: np.ndarray, labels: np.ndarray, public_blob: bytes,
                  ctx: ts.Context, params: ckks.CKKSParams) -> tuple[LadderRow, np.ndarray]:
    """The cost row of an encrypted inference rung from its per-image runs (``scores`` and ms/bytes
    keys, averaged) and its plaintext twin's scores; returns the row and the encrypted scores."""
    scores = np.stack([r["scores"] for r in runs])
    pred, labels = scores.argmax(1), np.asarray(labels)
    mean = {key: float(np.mean([r[key] for r in runs])) for key in runs[0] if key != "scores"}
    row = LadderRow(
        rung=rung, name=name, accuracy=float((pred == labels).mean()), n_test=len(labels),
        macro_f1=macro_f1(labels, pred), peak_memory_mb=ckks.peak_rss_mb(),
        context_bytes=len(public_blob), context_bytes_private=ckks.context_bytes(ctx, secret_key=True),
        security=ckks.describe_context(ctx, params), server_learns=SERVER_LEARNS[rung],
        mismatches_vs_twin=int((pred != twin.argmax(1)).sum()),
        twin_accuracy=float((twin.argmax(1) == labels).mean()),
        notes=f"max |score - twin| = {np.abs(scores - twin).max():.2e}", **mean)
    return row, scores
