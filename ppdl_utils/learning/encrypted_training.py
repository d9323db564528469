"""Rung 5 of the privacy ladder: logistic regression trained by gradient descent on CKKS ciphertexts.

Parties.  The *client* (data owner) encrypts each training feature vector and its label and uploads
them.  The *server* runs full-batch gradient descent on ciphertexts with the degree-3 sigmoid
approximation ``0.5 + 0.197 z - 0.004 z^3`` (TenSEAL's tutorial).  The *key holder* refreshes the
weights between epochs: it decrypts the encrypted weights, re-encrypts them at the top of the modulus
chain and sends them back.  **What the key holder sees: the weight vector and bias after every epoch
(logged in** :attr:`TrainingRun.key_holder_log` **), never a feature vector or a label.**  The server
sees only ciphertexts, the training-set size and the number of features.

One epoch, per sample ``i`` (``c = lr / n``)::

    z_i  = x_i . w + b                      1 level  (dot product)
    e_i  = c * poly(z_i) - c * y_i          2 levels (degree-3 polyval, coefficients pre-scaled by c)
    w   <- w * (1 - lr * l2) - sum_i x_i * e_i          2 levels (broadcasting the 1-slot e_i)
    b   <- b - sum_i e_i

Pre-scaling the polynomial by ``c`` folds the learning-rate multiplication into the polynomial, so
an epoch needs 5 levels (:data:`ppdl_utils.crypto.ckks.TRAINING_8192`) and the accumulated sums stay
small.  The plaintext twin (:func:`plain_train`) runs exactly these formulas in float64.
Multi-class problems are trained one-vs-rest (one head per class, argmax of the linear scores).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tenseal as ts
from tqdm.auto import tqdm

from ppdl_utils.crypto import ckks
from ppdl_utils.learning.encrypted_common import (
    SERVER_LEARNS,
    InputShapeError,
    LadderRow,
    check_float_matrix,
    macro_f1,
    timed_ms,
)
from ppdl_utils.learning.hyperparameters import check_class_labels, check_epochs, check_rate

__all__ = [
    "POLY_SIGMOID3", "poly_sigmoid", "LogReg", "init_logreg", "plain_epoch", "plain_train", "predict_ovr",
    "client_encrypt_dataset", "server_load_dataset", "key_holder_encrypt", "key_holder_refresh",
    "server_epoch", "TrainingRun", "encrypted_train", "encrypted_train_ovr", "encrypted_training_cost",
]

#: Degree-3 least-squares approximation of the sigmoid on [-5, 5] (TenSEAL tutorial 1).
POLY_SIGMOID3 = (0.5, 0.197, 0.0, -0.004)


def poly_sigmoid(z: np.ndarray, coefficients: tuple[float, ...] = POLY_SIGMOID3) -> np.ndarray:
    """``sum_k c_k z^k`` (lowest degree first, as TenSEAL's ``polyval``)."""
    return sum(c * np.asarray(z, np.float64) ** k for k, c in enumerate(coefficients))


@dataclass
class LogReg:
    """One logistic-regression head: weights ``(d,)`` and bias."""

    w: np.ndarray
    b: float

    def scores(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float64) @ self.w + self.b


def init_logreg(n_features: int, seed: int = 0, scale: float = 0.01) -> LogReg:
    """Small seeded normal init (model init only; never used for cryptography)."""
    return LogReg(np.random.default_rng(seed).normal(0.0, scale, n_features), 0.0)


def _check_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = check_float_matrix(x, "x")
    y = np.asarray(y, np.float64).ravel()
    if len(y) != len(x) or not np.isin(y, (0.0, 1.0)).all():
        raise InputShapeError(f"y must hold {len(x)} labels in {{0, 1}}; got shape {y.shape}")
    return x, y


def plain_epoch(x: np.ndarray, y: np.ndarray, model: LogReg, lr: float, l2: float = 0.0,
                sigmoid: str = "poly") -> LogReg:
    """One full-batch step in the clear: the twin of :func:`server_epoch` (``sigmoid='exact'``: 1/(1+e^-z))."""
    z = x @ model.w + model.b
    s = poly_sigmoid(z) if sigmoid == "poly" else 1.0 / (1.0 + np.exp(-z))
    e = (lr / len(x)) * (s - y)
    return LogReg(model.w * (1.0 - lr * l2) - x.T @ e, float(model.b - e.sum()))


def plain_train(x: np.ndarray, y: np.ndarray, epochs: int, lr: float, l2: float = 0.0, seed: int = 0,
                sigmoid: str = "poly") -> tuple[LogReg, list[LogReg]]:
    """Train in the clear from :func:`init_logreg`; returns (final model, model after each epoch)."""
    x, y = _check_xy(x, y)
    epochs, lr = check_epochs(epochs), check_rate(lr, "lr")
    l2 = check_rate(l2, "l2", allow_zero=True)
    model, history = init_logreg(x.shape[1], seed), []
    for _ in range(epochs):
        model = plain_epoch(x, y, model, lr, l2, sigmoid)
        history.append(model)
    return model, history


def predict_ovr(heads: list[LogReg], x: np.ndarray) -> np.ndarray:
    """Class predictions: one head -> score > 0; several (one-vs-rest) -> argmax of the scores."""
    scores = np.stack([h.scores(x) for h in heads], axis=1)
    return (scores[:, 0] > 0).astype(int) if len(heads) == 1 else scores.argmax(1)


def client_encrypt_dataset(ctx: ts.Context, x: np.ndarray, y: np.ndarray) -> list[tuple[bytes, bytes]]:
    """Client: one ciphertext per feature vector and one per label; returns the uploads."""
    x, y = _check_xy(x, y)
    with ckks.ckks_errors("client_encrypt_dataset"):
        return [(ckks.serialize_vector(ts.ckks_vector(ctx, xi.tolist()), ctx),
                 ckks.serialize_vector(ts.ckks_vector(ctx, [float(yi)]), ctx)) for xi, yi in zip(x, y)]


def server_load_dataset(public_ctx: ts.Context, blobs: list[tuple[bytes, bytes]]
                        ) -> list[tuple[ts.CKKSVector, ts.CKKSVector]]:
    """Server: deserialize the uploads once, linked to the public context."""
    ckks.require_public(public_ctx)
    if not isinstance(blobs, (list, tuple)) or not blobs or not all(
            isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in blobs):
        raise InputShapeError("blobs must be a non-empty list of (features, label) ciphertext pairs")
    return [(ckks.vector_from(public_ctx, bx, f"blobs[{i}] features"),
             ckks.vector_from(public_ctx, by, f"blobs[{i}] label")) for i, (bx, by) in enumerate(blobs)]


def key_holder_encrypt(ctx: ts.Context, model: LogReg) -> tuple[bytes, bytes]:
    """Key holder: fresh encryptions of the weights and bias (top of the modulus chain)."""
    with ckks.ckks_errors("key_holder_encrypt"):
        return (ckks.serialize_vector(ts.ckks_vector(ctx, model.w.tolist()), ctx),
                ckks.serialize_vector(ts.ckks_vector(ctx, [float(model.b)]), ctx))


def key_holder_refresh(ctx: ts.Context, enc_w: bytes, enc_b: bytes) -> tuple[LogReg, bytes, bytes]:
    """Key holder: decrypt (it sees these weights) and re-encrypt; returns (weights seen, new w, new b)."""
    seen = LogReg(ckks.decrypt(ckks.vector_from(ctx, enc_w, "enc_w")),
                  float(ckks.decrypt(ckks.vector_from(ctx, enc_b, "enc_b"))[0]))
    return (seen, *key_holder_encrypt(ctx, seen))


def server_epoch(public_ctx: ts.Context, data: list[tuple[ts.CKKSVector, ts.CKKSVector]], enc_w: bytes,
                 enc_b: bytes, lr: float, l2: float = 0.0) -> tuple[bytes, bytes]:
    """Server: one full-batch gradient step on ciphertexts (5 levels); no secret key involved."""
    ckks.require_public(public_ctx)
    if not isinstance(data, (list, tuple)) or not data:
        raise InputShapeError("server_epoch: data must be a non-empty list of (features, label) ciphertexts "
                              "(server_load_dataset)")
    check_rate(lr, "lr")
    check_rate(l2, "l2", allow_zero=True)
    ckks.require_galois(public_ctx, "server_epoch (dot product)")
    w, b = ckks.vector_from(public_ctx, enc_w, "enc_w"), ckks.vector_from(public_ctx, enc_b, "enc_b")
    c = lr / len(data)
    coefficients = [c * a for a in POLY_SIGMOID3]  # fold the step size into the polynomial
    grad_w = grad_b = None
    with ckks.ckks_errors("server_epoch"):
        ckks.ensure_depth(w, 5, "server_epoch (dot, degree-3 sigmoid, gradient)")
        for x, y in data:
            ckks.require_public(x.context(), "training ciphertext context")
            e = (x.dot(w) + b).polyval(coefficients) - y * c
            g = x * e
            grad_w = g if grad_w is None else grad_w + g
            grad_b = e if grad_b is None else grad_b + e
        new_w = (w * (1.0 - lr * l2) if l2 else w) - grad_w
        new_b = b - grad_b
    return ckks.serialize_vector(new_w, public_ctx), ckks.serialize_vector(new_b, public_ctx)


@dataclass
class TrainingRun:
    """Result of :func:`encrypted_train`: the final head, what the key holder saw, and the costs."""

    model: LogReg
    key_holder_log: list[LogReg] = field(default_factory=list)  # weights after each epoch (what it sees)
    seconds_per_epoch: list[float] = field(default_factory=list)  # server wall time per epoch
    cpu_seconds_per_epoch: list[float] = field(default_factory=list)  # server CPU time per epoch
    refresh_ms: list[float] = field(default_factory=list)  # key holder decrypt + re-encrypt per epoch
    encrypt_ms: float = 0.0  # client, whole training set
    bytes_up: int = 0  # training set upload
    bytes_per_epoch: int = 0  # encrypted weights server -> key holder -> server


def encrypted_train(ctx: ts.Context, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, l2: float = 0.0,
                    seed: int = 0, progress: bool = False, public_ctx: ts.Context | None = None) -> TrainingRun:
    """Client encrypts, server trains ``epochs`` full-batch steps, key holder refreshes between them.

    ``public_ctx``: the server's copy (default: deserialized from :func:`ckks.public_context`).
    """
    x, y = _check_xy(x, y)
    epochs, lr = check_epochs(epochs), check_rate(lr, "lr")
    l2 = check_rate(l2, "l2", allow_zero=True)
    blobs, enc_ms, _ = timed_ms(client_encrypt_dataset, ctx, x, y)
    public_ctx = public_ctx or ckks.load_context(ckks.public_context(ctx))
    data = server_load_dataset(public_ctx, blobs)
    run = TrainingRun(init_logreg(x.shape[1], seed), encrypt_ms=enc_ms,
                      bytes_up=sum(len(bx) + len(by) for bx, by in blobs))
    enc_w, enc_b = key_holder_encrypt(ctx, run.model)
    for _ in tqdm(range(epochs), desc=f"rung 5 epochs (n={len(x)})", disable=not progress):
        (enc_w, enc_b), wall_ms, cpu_ms = timed_ms(server_epoch, public_ctx, data, enc_w, enc_b, lr, l2)
        run.seconds_per_epoch.append(wall_ms / 1000.0)
        run.cpu_seconds_per_epoch.append(cpu_ms / 1000.0)
        run.bytes_per_epoch = 2 * (len(enc_w) + len(enc_b))  # down to the key holder and back up
        (seen, enc_w, enc_b), ms, _ = timed_ms(key_holder_refresh, ctx, enc_w, enc_b)
        run.refresh_ms.append(ms)
        run.key_holder_log.append(seen)
    run.model = run.key_holder_log[-1] if run.key_holder_log else run.model
    return run


def encrypted_train_ovr(ctx: ts.Context, x: np.ndarray, labels: np.ndarray, epochs: int, lr: float,
                        l2: float = 0.0, seed: int = 0, progress: bool = False,
                        public_ctx: ts.Context | None = None) -> list[TrainingRun]:
    """Binary labels -> one head; ``k > 2`` classes -> ``k`` one-vs-rest heads (features re-sent per head)."""
    labels = check_class_labels(np.asarray(labels).ravel(), "labels")
    k = int(labels.max()) + 1
    targets = [labels == 1] if k <= 2 else [labels == c for c in range(k)]
    public_ctx = public_ctx or ckks.load_context(ckks.public_context(ctx))
    return [encrypted_train(ctx, x, t.astype(float), epochs, lr, l2, seed, progress, public_ctx) for t in targets]


def _plain_ovr(x: np.ndarray, labels: np.ndarray, epochs: int, lr: float, l2: float, seed: int,
               sigmoid: str) -> list[LogReg]:
    k = int(labels.max()) + 1
    targets = [labels == 1] if k <= 2 else [labels == c for c in range(k)]
    return [plain_train(x, t.astype(float), epochs, lr, l2, seed, sigmoid)[0] for t in targets]


def encrypted_training_cost(ctx: ts.Context, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                            y_test: np.ndarray, epochs: int, lr: float, l2: float = 0.0, seed: int = 0,
                            params: ckks.CKKSParams = ckks.TRAINING_8192, progress: bool = False,
                            public_blob: bytes | None = None) -> tuple[LadderRow, dict]:
    """Train encrypted and in the clear (poly twin, exact-sigmoid twin); score all on the test set.

    The row's ``server_ms`` is the mean server time per epoch, ``encrypt_ms`` the client's time per
    training sample, ``bytes_up`` the upload per training sample; ``mismatches_vs_twin`` counts test
    predictions that differ from the poly-sigmoid plaintext twin.  ``public_blob``: the server's
    context, ``ckks.public_context(ctx)`` (~2 s and 83 MB to serialize: pass it when calling again).
    """
    ckks.check_context(ctx, params)  # the row describes the context that runs, not the argument
    y_train = check_class_labels(np.asarray(y_train).ravel(), "y_train")
    y_test = check_class_labels(np.asarray(y_test).ravel(), "y_test", n_classes=int(y_train.max()) + 1)
    epochs, lr = check_epochs(epochs), check_rate(lr, "lr")
    public_blob = public_blob or ckks.public_context(ctx)
    runs = encrypted_train_ovr(ctx, x_train, y_train, epochs, lr, l2, seed, progress, ckks.load_context(public_blob))
    twin = _plain_ovr(x_train, y_train, epochs, lr, l2, seed, "poly")
    exact = _plain_ovr(x_train, y_train, epochs, lr, l2, seed, "exact")
    pred, twin_pred = predict_ovr([r.model for r in runs], x_test), predict_ovr(twin, x_test)
    n = len(x_train)
    row = LadderRow(
        rung=5, name=f"rung 5: encrypted LR training (n={n}, {epochs} epochs)",
        accuracy=float((pred == y_test).mean()), n_test=len(y_test), macro_f1=macro_f1(y_test, pred),
        encrypt_ms=sum(r.encrypt_ms for r in runs) / n, server_ms=1000 * float(np.mean(
            [sum(r.seconds_per_epoch[i] for r in runs) for i in range(epochs)])),
        decrypt_ms=float(np.mean([ms for r in runs for ms in r.refresh_ms])),
        server_cpu_ms=1000 * float(np.mean([sum(r.cpu_seconds_per_epoch[i] for r in runs) for i in range(epochs)])),
        bytes_up=runs[0].bytes_up / n, bytes_down=float(sum(r.bytes_per_epoch for r in runs)),
        peak_memory_mb=ckks.peak_rss_mb(), context_bytes=len(public_blob),
        context_bytes_private=ckks.context_bytes(ctx, secret_key=True), security=ckks.describe_context(ctx, params),
        server_learns=SERVER_LEARNS[5], mismatches_vs_twin=int((pred != twin_pred).sum()),
        twin_accuracy=float((twin_pred == y_test).mean()),
        notes="decrypt_ms = key-holder refresh per epoch; bytes_down = weights round trip per epoch")
    weight_gap = max(float(np.abs(r.model.w - t.w).max()) for r, t in zip(runs, twin))
    extra = {"runs": runs, "twin": twin, "exact": exact, "max_weight_gap": weight_gap,
             "exact_accuracy": float((predict_ovr(exact, x_test) == y_test).mean())}
    return row, extra
