"""Rungs 3 and 4 of the privacy ladder in batched mode: one encrypted evaluation serves N/2 images.

Rung 3 (MLP head on encrypted features) and rung 4 (CNN on encrypted pixels) keep their models and
plaintext twins (:mod:`encrypted_mlp`, :mod:`encrypted_cnn`); only the packing changes.  The client packs
up to N/2 = 4,096 images under one key in the column layout of :mod:`ppdl_utils.crypto.ckks_columns`
(ciphertext j holds input j of every image), the server evaluates the network once per batch with its
plaintext weights, and the client decrypts one ciphertext per class.  The convolution is a dense layer
from pixels to (filter, window) outputs whose 64 weights per filter repeat over the windows.

A batch never mixes clients: every image in it is encrypted under the one key of the client that
decrypts the scores (:class:`ColumnBatch` carries that key's fingerprint, and the server refuses to
combine batches of different keys).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ppdl_utils.crypto.ckks_columns import ColumnBatch, ColumnKeyHolder, ColumnServer
from ppdl_utils.crypto.ckks_packed import PackingError
from ppdl_utils.learning.encrypted_cnn import SquareCNN, check_images
from ppdl_utils.learning.encrypted_common import FeatureRangeError
from ppdl_utils.learning.encrypted_mlp import SquareMLP

__all__ = ["BatchCost", "conv_as_dense", "server_mlp_batch", "server_cnn_batch", "batched_scores"]


@dataclass
class BatchCost:
    """CPU seconds (one core) and bytes of one batch."""

    batch_size: int
    client_encrypt_s: float
    server_s: float
    client_decrypt_s: float
    bytes_up: int
    bytes_down: int

    @property
    def latency_ms(self) -> float:
        return 1000 * (self.client_encrypt_s + self.server_s + self.client_decrypt_s)

    @property
    def amortized_ms_per_image(self) -> float:
        return 1000 * self.server_s / self.batch_size


def conv_as_dense(cnn: SquareCNN) -> tuple[np.ndarray, np.ndarray]:
    """(pixels x filter-major outputs) weights and biases of the valid, strided convolution."""
    spec = cnn.spec
    size, k, s = spec.image_size, spec.kernel, spec.stride
    weights = np.zeros((size * size, spec.n_filters * spec.windows))
    for f in range(spec.n_filters):
        for w in range(spec.windows):
            row, col = divmod(w, spec.side)
            pixels = (np.arange(row * s, row * s + k)[:, None] * size + np.arange(col * s, col * s + k)[None, :])
            weights[pixels.ravel(), f * spec.windows + w] = cnn.kernels[f].ravel()
    return weights, np.repeat(cnn.conv_bias, spec.windows)


def server_mlp_batch(server: ColumnServer, batch: ColumnBatch, mlp: SquareMLP) -> ColumnBatch:
    """Dense -> square -> dense on a batch of scaled features."""
    if batch.width != mlp.n_features:
        raise PackingError(f"batch has {batch.width} features; the MLP takes {mlp.n_features}")
    return server.dense(server.square(server.dense(batch, mlp.w1, mlp.b1)), mlp.w2, mlp.b2)


def server_cnn_batch(server: ColumnServer, batch: ColumnBatch, cnn: SquareCNN,
                     conv: tuple[np.ndarray, np.ndarray] | None = None) -> ColumnBatch:
    """Conv -> square -> dense -> square -> dense on a batch of pixels (image_size^2 ciphertexts)."""
    if batch.width != cnn.spec.image_size ** 2:
        raise PackingError(f"batch has {batch.width} values per image; the CNN takes "
                           f"{cnn.spec.image_size}x{cnn.spec.image_size} pixels")
    conv_w, conv_b = conv if conv is not None else conv_as_dense(cnn)
    hidden = server.square(server.dense(batch, conv_w, conv_b))
    return server.dense(server.square(server.dense(hidden, cnn.w1, cnn.b1)), cnn.w2, cnn.b2)


def batched_scores(key_holder: ColumnKeyHolder, server: ColumnServer, model: "SquareMLP | SquareCNN",
                   inputs: np.ndarray, batch_size: int) -> tuple[np.ndarray, list[BatchCost]]:
    """Encrypted scores of every input, ``batch_size`` at a time, with each batch's cost.

    ``inputs``: scaled features (rung 3) or uint8 / [0, 1] images (rung 4).  Checked before any encryption:
    a batch larger than the slots, an empty one, images of another size, features of another width.
    """
    if not 1 <= batch_size <= key_holder.params.n_slots:
        raise PackingError(f"batch_size={batch_size}: must be 1..{key_holder.params.n_slots} (N/2 slots)")
    if isinstance(model, SquareCNN):
        flat = check_images(inputs, model.spec).reshape(len(inputs), -1)
        conv = conv_as_dense(model)
        evaluate = lambda batch: server_cnn_batch(server, batch, model, conv)  # noqa: E731
    else:
        flat = np.asarray(inputs, np.float64)
        if flat.ndim != 2 or flat.shape[1] != model.n_features:
            raise PackingError(f"features have shape {flat.shape}; the MLP takes {model.n_features} per image")
        outside = ~np.isfinite(flat) | (flat < 0) | (flat > 1)
        if outside.any():  # the weights were fitted on [0, 1]; beyond it the squares can overflow the chain
            row, col = map(int, np.argwhere(outside)[0])
            raise FeatureRangeError(f"inputs[{row}, {col}] = {flat[row, col]:.4g} is outside [0, 1]: scale the "
                                    f"features with the model's FeatureRange first ({int(outside.any(1).sum())} "
                                    f"image(s) affected)")
        evaluate = lambda batch: server_mlp_batch(server, batch, model)  # noqa: E731
    if len(flat) == 0:
        raise PackingError("inputs is empty: nothing to classify")
    scores, costs = [], []
    for start in range(0, len(flat), batch_size):
        part = flat[start:start + batch_size]
        t0 = time.process_time()
        batch = key_holder.encrypt(part)
        t1 = time.process_time()
        result = evaluate(batch)
        t2 = time.process_time()
        scores.append(key_holder.decrypt(result))
        t3 = time.process_time()
        costs.append(BatchCost(len(part), t1 - t0, t2 - t1, t3 - t2, batch.nbytes(), result.nbytes()))
    return np.concatenate(scores), costs
