"""Rung 3 of the privacy ladder: an MLP head evaluated on CKKS-encrypted features.

The client computes backbone features in the clear on its own machine (e.g. MobileNetV2 pooled
features reduced by a PCA fitted on training data), scales them with the range fitted on the
training set, encrypts the vector and uploads it.  The server, holding only the public context and
its plaintext model, evaluates ``Dense -> x**2 -> Dense`` on the ciphertext (3 levels of the
modulus chain) and returns encrypted scores; the client decrypts and takes the argmax.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tenseal as ts
from tqdm.auto import tqdm

from ppdl_utils.crypto import ckks
from ppdl_utils.learning.encrypted_common import (
    FeatureRange,
    InputShapeError,
    LadderRow,
    check_float_matrix,
    check_output_range,
    encrypted_square_dense,
    inference_row,
    square,
    timed_ms,
)

__all__ = [
    "SquareMLP", "build_keras_mlp", "train_keras_mlp", "mlp_from_keras", "quantize_first_layer", "plain_mlp_scores",
    "client_encrypt_features", "server_mlp", "client_decrypt_scores", "encrypted_mlp_cost",
]


@dataclass
class SquareMLP:
    """Plaintext weights of ``Dense(h) -> x**2 -> Dense(k)`` plus the fitted input range."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    feature_range: FeatureRange

    @property
    def n_features(self) -> int:
        return int(self.w1.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.w2.shape[1])


def build_keras_mlp(n_features: int, hidden: int, n_classes: int, activation: str = "square"):
    """Functional Keras model ``Dense(hidden) -> square|relu -> Dense(n_classes)`` (logits)."""
    import keras

    if activation not in ("square", "relu"):
        raise InputShapeError(f"activation={activation!r}; expected 'square' or 'relu'")
    inputs = keras.Input((n_features,), name="features")
    hidden_out = keras.layers.Dense(hidden, name="dense1")(inputs)
    act = keras.layers.Activation(square if activation == "square" else "relu", name=activation)(hidden_out)
    outputs = keras.layers.Dense(n_classes, name="dense2")(act)
    return keras.Model(inputs, outputs, name=f"mlp_{activation}")


def train_keras_mlp(features: np.ndarray, labels: np.ndarray, hidden: int = 16, activation: str = "square",
                    epochs: int = 30, seed: int = 0, n_classes: int | None = None, lr: float = 3e-3):
    """Train the head on scaled features (Adam, cross-entropy on logits); returns the Keras model."""
    import keras

    keras.utils.set_random_seed(seed)  # model init only, never the cryptography
    x = check_float_matrix(features, "features")
    k = int(n_classes or labels.max() + 1)
    model = build_keras_mlp(x.shape[1], hidden, k, activation)
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x.astype(np.float32), np.asarray(labels), epochs=epochs, batch_size=32, verbose=0)
    return model


def mlp_from_keras(model, feature_range: FeatureRange) -> SquareMLP:
    """Copy the Keras weights into the numpy/CKKS model (the same numbers on both sides)."""
    w1, b1 = (np.asarray(a, np.float64) for a in model.get_layer("dense1").get_weights())
    w2, b2 = (np.asarray(a, np.float64) for a in model.get_layer("dense2").get_weights())
    return SquareMLP(w1, b1, w2, b2, feature_range)


def quantize_first_layer(mlp: SquareMLP, bits: int = 8) -> SquareMLP:
    """The same MLP with its first layer's weights rounded to ``2**bits - 1`` levels per hidden unit
    (``w ~ s_k * q``, ``|q| <= 2**(bits-1) - 1``).

    Why: a batched server pays one ciphertext product per distinct weight of a hidden unit and one
    addition per input (:meth:`ColumnServer.dense <ppdl_utils.crypto.ckks_columns.ColumnServer.dense>`),
    so 2,368 inputs cost 255 products instead of 2,368.  The quantized model is the one served: its
    plaintext twin is :func:`plain_mlp_scores` of the returned model."""
    _check_mlp(mlp)
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise InputShapeError(f"bits={bits!r}: must be an integer in 2..16")
    top = 2 ** (int(bits) - 1) - 1
    step = np.abs(mlp.w1).max(axis=0) / top
    step[step == 0] = 1.0  # an all-zero hidden unit stays zero
    w1 = np.round(mlp.w1 / step) * step
    return SquareMLP(w1, mlp.b1.copy(), mlp.w2.copy(), mlp.b2.copy(), mlp.feature_range)


def _check_mlp(mlp: object) -> None:
    if not isinstance(mlp, SquareMLP):
        raise InputShapeError(f"mlp must be a SquareMLP (mlp_from_keras), got {type(mlp).__name__}")


def plain_mlp_scores(mlp: SquareMLP, scaled: np.ndarray) -> np.ndarray:
    """The plaintext twin: exactly the server's computation, in float64."""
    x = check_float_matrix(scaled, "scaled", n_features=mlp.n_features)
    return ((x @ mlp.w1 + mlp.b1) ** 2) @ mlp.w2 + mlp.b2


def client_encrypt_features(ctx: ts.Context, mlp: SquareMLP, raw: np.ndarray) -> bytes:
    """Client: scale one raw feature vector (range-checked) and encrypt it; returns the upload."""
    _check_mlp(mlp)
    row = np.asarray(raw, dtype=np.float64).reshape(1, -1) if np.ndim(raw) == 1 else raw
    scaled = mlp.feature_range.transform(row, "raw")[0]
    with ckks.ckks_errors("client_encrypt_features"):
        return ckks.serialize_vector(ts.ckks_vector(ctx, scaled.tolist()), ctx)


def server_mlp(public_ctx: ts.Context, ciphertext: bytes, mlp: SquareMLP) -> bytes:
    """Server: ``Dense -> square -> Dense`` on the encrypted features; sees no secret key."""
    ckks.require_public(public_ctx)
    ckks.require_galois(public_ctx, "server_mlp (vector-matrix product)")
    enc = ckks.vector_from(public_ctx, ciphertext, "ciphertext")  # WrongKeyError under another key
    _check_mlp(mlp)
    if enc.size() != mlp.n_features:
        raise InputShapeError(f"ciphertext holds {enc.size()} features; the model expects {mlp.n_features}")
    with ckks.ckks_errors("server_mlp"):
        ckks.ensure_depth(enc, 3, "server_mlp (dense, square, dense)")
        hidden = enc.mm(mlp.w1.tolist())  # b1 is folded into the next step, see encrypted_square_dense
        scores = encrypted_square_dense(hidden, mlp.b1, mlp.w2, mlp.b2)
    return ckks.serialize_vector(scores, public_ctx)


def client_decrypt_scores(ctx: ts.Context, ciphertext: bytes) -> np.ndarray:
    """Client: decrypt the returned scores (needs the secret key; refuses scores of another key)."""
    return ckks.decrypt(ckks.vector_from(ctx, ciphertext, "scores"))


def _one_image(ctx: ts.Context, public_ctx: ts.Context, mlp: SquareMLP, raw: np.ndarray) -> dict:
    up, enc_ms, enc_cpu = timed_ms(client_encrypt_features, ctx, mlp, raw)
    down, srv_ms, srv_cpu = timed_ms(server_mlp, public_ctx, up, mlp)
    scores, dec_ms, dec_cpu = timed_ms(client_decrypt_scores, ctx, down)
    return {"scores": scores, "encrypt_ms": enc_ms, "server_ms": srv_ms, "decrypt_ms": dec_ms,
            "bytes_up": len(up), "bytes_down": len(down), "server_cpu_ms": srv_cpu,
            "total_cpu_ms": enc_cpu + srv_cpu + dec_cpu}


def encrypted_mlp_cost(ctx: ts.Context, mlp: SquareMLP, raw: np.ndarray, labels: np.ndarray,
                       params: ckks.CKKSParams, name: str = "rung 3: MLP head on encrypted features",
                       progress: bool = True) -> tuple[LadderRow, np.ndarray]:
    """Classify every row of ``raw`` encrypted; returns the cost row and the encrypted scores."""
    ckks.check_context(ctx, params)  # the row describes the context that runs, not the argument
    raw = check_float_matrix(raw, "raw", n_features=mlp.n_features)
    twin = plain_mlp_scores(mlp, mlp.feature_range.transform(raw, "raw"))  # refuses out-of-range rows
    check_output_range(twin, params)
    public_blob = ckks.public_context(ctx)  # the one-off upload: public, relin and Galois keys
    public_ctx = ckks.load_context(public_blob)
    runs = [_one_image(ctx, public_ctx, mlp, row) for row in tqdm(raw, desc="rung 3 encrypted", disable=not progress)]
    return inference_row(3, name, runs, twin, labels, public_blob, ctx, params)
