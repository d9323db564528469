"""Rung 4 of the privacy ladder: a small CNN evaluated on CKKS-encrypted pixels (TenSEAL im2col).

The client downsamples its X-ray to ``image_size`` px, scales pixels to [0, 1] and encrypts it with
the im2col encoding (one ciphertext holds every ``kernel x kernel`` window, padded to a power of
two).  The server, with the public context only, runs per filter ``conv2d_im2col`` (+ bias), packs
the filters into one vector, squares it, ``.mm(W1) + b1``, squares, ``.mm(W2) + b2``.  That uses
all 6 levels of :data:`ppdl_utils.crypto.ckks.CNN_8192` (``pack_vectors`` masks each channel, which
costs one), so the scores end on the 31-bit first prime and must stay below 16 in magnitude
(:func:`cnn_from_keras` calibrates the last layer).  The client decrypts the scores.

Order of the flattened conv output: TenSEAL packs filter by filter (``f * windows + window``) while
Keras flattens ``(row, col, filter)``; :func:`cnn_from_keras` permutes W1's rows so both sides
compute the same function.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tenseal as ts
from tqdm.auto import tqdm

from ppdl_utils.crypto import ckks
from ppdl_utils.learning.encrypted_common import (
    ImageTooLargeError,
    InputShapeError,
    LadderRow,
    check_output_range,
    encrypted_square_dense,
    inference_row,
    square,
    timed_ms,
)

__all__ = [
    "CNNSpec", "SquareCNN", "required_slots", "max_image_size", "check_images", "build_keras_cnn",
    "train_keras_cnn", "cnn_from_keras", "plain_cnn_scores", "client_encrypt_image", "server_cnn",
    "client_decrypt_scores", "encrypted_cnn_cost",
]


@dataclass(frozen=True)
class CNNSpec:
    """Shape of the encrypted CNN: conv ``kernel x kernel`` / ``stride`` -> square -> Dense -> square -> Dense."""

    image_size: int = 28
    # 8x8/4 tiles 28 px exactly (6x6 windows of 64 slots, no padding).  The first dense layer costs one
    # rotation per input (filters x windows): 3 x 36 = 108 take 2.2 s per image on one core, where
    # 7x7/3 with 4 filters (256 inputs) took 4.2 s, for the same accuracy
    kernel: int = 8
    stride: int = 4
    n_filters: int = 3
    hidden: int = 64
    n_classes: int = 2

    def __post_init__(self) -> None:
        for name in ("image_size", "kernel", "stride", "n_filters", "hidden", "n_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputShapeError(f"CNNSpec {name}={value!r:.40} must be a positive integer")
        if self.image_size < self.kernel:
            raise InputShapeError(f"CNNSpec image_size={self.image_size} is smaller than kernel={self.kernel}: "
                                  "the convolution would have no window")
        if self.n_classes < 2:
            raise InputShapeError(f"CNNSpec n_classes={self.n_classes}: a classifier needs at least 2 classes")

    @property
    def side(self) -> int:
        """Output side of the valid convolution."""
        return (self.image_size - self.kernel) // self.stride + 1

    @property
    def windows(self) -> int:
        return self.side * self.side


def _next_pow2(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


def required_slots(image_size: int, kernel: int, stride: int) -> int:
    """Slots the im2col encoding needs: windows x (kernel^2 rounded up to a power of two)."""
    side = (image_size - kernel) // stride + 1
    return side * side * _next_pow2(kernel * kernel)


def max_image_size(params: ckks.CKKSParams, kernel: int = 8, stride: int = 4) -> int:
    """Largest square image whose im2col encoding fits one ciphertext under ``params``."""
    size = kernel
    while required_slots(size + 1, kernel, stride) <= params.n_slots:
        size += 1
    return size


def check_images(images: np.ndarray, spec: CNNSpec, params: ckks.CKKSParams = ckks.CNN_8192,
                 parameter: str = "images") -> np.ndarray:
    """``(n, s, s)`` or ``(s, s)`` uint8 / [0, 1] floats -> float64 ``(n, s, s)`` in [0, 1].

    Raises:
        ImageTooLargeError: larger than ``spec.image_size`` (message names both sizes and the slot limit).
        InputShapeError: wrong dtype, rank, smaller size or float values outside [0, 1].
    """
    x = np.asarray(images)
    x = x[None] if x.ndim == 2 else x
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise InputShapeError(f"{parameter} has shape {np.shape(images)}; expected (n, s, s) or (s, s) grayscale")
    s, limit = x.shape[1], spec.image_size
    if s > limit:
        raise ImageTooLargeError(
            f"{parameter}: image size {s}x{s} is larger than the {limit}x{limit} the network accepts (conv "
            f"{spec.kernel}x{spec.kernel}/{spec.stride} needs {required_slots(s, spec.kernel, spec.stride)} slots, "
            f"one ciphertext at N={params.poly_modulus_degree} holds {params.n_slots}; at most "
            f"{max_image_size(params, spec.kernel, spec.stride)} px fits); downsample to {limit} px first")
    if s != limit:
        raise InputShapeError(f"{parameter}: image size {s}x{s}; the network was trained on {limit}x{limit}")
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if x.dtype.kind != "f" or not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise InputShapeError(f"{parameter} has dtype {x.dtype}; expected uint8 or floats in [0, 1]")
    return x.astype(np.float64)


def build_keras_cnn(spec: CNNSpec, activation: str = "square"):
    """Functional Keras twin: Conv2D(valid) -> act -> Flatten -> Dense -> act -> Dense (logits)."""
    import keras

    act = square if activation == "square" else "relu"
    inputs = keras.Input((spec.image_size, spec.image_size, 1), name="image")
    x = keras.layers.Conv2D(spec.n_filters, spec.kernel, strides=spec.stride, padding="valid", name="conv")(inputs)
    x = keras.layers.Activation(act, name=f"{activation}1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(spec.hidden, name="dense1")(x)
    x = keras.layers.Activation(act, name=f"{activation}2")(x)
    outputs = keras.layers.Dense(spec.n_classes, name="dense2")(x)
    return keras.Model(inputs, outputs, name=f"cnn_{activation}")


def train_keras_cnn(images: np.ndarray, labels: np.ndarray, spec: CNNSpec, activation: str = "square",
                    epochs: int = 10, seed: int = 0, lr: float = 1e-3, batch_size: int = 64):
    """Train the CNN (Adam, cross-entropy on logits) on uint8 or [0, 1] images; returns the Keras model."""
    import keras

    keras.utils.set_random_seed(seed)  # model init and shuffling only
    x = check_images(images, spec)[..., None].astype(np.float32)
    model = build_keras_cnn(spec, activation)
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, np.asarray(labels), epochs=epochs, batch_size=batch_size, verbose=0)
    return model


@dataclass
class SquareCNN:
    """Plaintext weights in the encrypted layout (W1 rows ordered filter-major)."""

    spec: CNNSpec
    kernels: np.ndarray  # (F, k, k)
    conv_bias: np.ndarray  # (F,)
    w1: np.ndarray  # (F * windows, hidden)
    b1: np.ndarray
    w2: np.ndarray  # (hidden, n_classes), divided by output_scale
    b2: np.ndarray
    output_scale: float = 1.0  # Keras logits = encrypted scores * output_scale


def cnn_from_keras(model, spec: CNNSpec, calibration: np.ndarray | None = None,
                   params: ckks.CKKSParams = ckks.CNN_8192, headroom: float = 4.0) -> SquareCNN:
    """Copy Keras weights; permute W1 rows from (row, col, filter) to (filter, row, col).

    With ``calibration`` images (training data), the last layer is divided by a positive factor
    so that the largest score stays below ``output_bound(params) / headroom``: all 6 levels are used,
    so only the 31-bit first prime is left (|score| < 16 at scale 2^26); larger logits would wrap.
    Dividing by a positive number leaves the argmax unchanged.
    """
    kernel, conv_bias = model.get_layer("conv").get_weights()  # kernel (k, k, 1, F)
    w1, b1 = model.get_layer("dense1").get_weights()
    w2, b2 = model.get_layer("dense2").get_weights()
    w1 = w1.reshape(spec.windows, spec.n_filters, spec.hidden).transpose(1, 0, 2).reshape(-1, spec.hidden)
    as64 = lambda a: np.asarray(a, np.float64)  # noqa: E731
    cnn = SquareCNN(spec, as64(kernel[:, :, 0, :].transpose(2, 0, 1)), as64(conv_bias), as64(w1), as64(b1),
                    as64(w2), as64(b2))
    if calibration is not None:
        worst = float(np.abs(plain_cnn_scores(cnn, calibration)).max())
        factor = max(1.0, worst * headroom / ckks.output_bound(params))
        cnn.w2, cnn.b2, cnn.output_scale = cnn.w2 / factor, cnn.b2 / factor, factor
    return cnn


def _windows(image: np.ndarray, spec: CNNSpec) -> np.ndarray:
    """(windows, k*k) patches in row-major window order, like TenSEAL's im2col."""
    k, s = spec.kernel, spec.stride
    return np.stack([image[i * s:i * s + k, j * s:j * s + k].ravel()
                     for i in range(spec.side) for j in range(spec.side)])


def plain_cnn_scores(cnn: SquareCNN, images: np.ndarray) -> np.ndarray:
    """The plaintext twin: the server's exact computation in float64, on uint8 / [0, 1] images."""
    x = check_images(images, cnn.spec)
    flat_k = cnn.kernels.reshape(cnn.spec.n_filters, -1)
    out = []
    for image in x:
        conv = (_windows(image, cnn.spec) @ flat_k.T + cnn.conv_bias).T.ravel()  # filter-major, as packed
        hidden = (conv ** 2) @ cnn.w1 + cnn.b1
        out.append((hidden ** 2) @ cnn.w2 + cnn.b2)
    return np.stack(out)


def client_encrypt_image(ctx: ts.Context, image: np.ndarray, spec: CNNSpec,
                         params: ckks.CKKSParams = ckks.CNN_8192) -> tuple[bytes, int]:
    """Client: validate and im2col-encrypt one image; returns (upload, number of windows)."""
    pixels = check_images(image, spec, params, "image")[0]
    with ckks.ckks_errors("im2col_encoding"):
        enc, windows_nb = ts.im2col_encoding(ctx, pixels.tolist(), spec.kernel, spec.kernel, spec.stride)
    return ckks.serialize_vector(enc, ctx), int(windows_nb)


def server_cnn(public_ctx: ts.Context, ciphertext: bytes, windows_nb: int, cnn: SquareCNN) -> bytes:
    """Server: conv -> square -> dense -> square -> dense on the encrypted image; no secret key."""
    ckks.require_public(public_ctx)
    ckks.require_galois(public_ctx, "server_cnn (conv2d_im2col / mm)")
    enc = ckks.vector_from(public_ctx, ciphertext, "ciphertext")  # WrongKeyError under another key
    if not isinstance(cnn, SquareCNN):
        raise InputShapeError(f"cnn must be a SquareCNN (cnn_from_keras), got {type(cnn).__name__}")
    if isinstance(windows_nb, bool) or not isinstance(windows_nb, (int, np.integer)) or windows_nb != cnn.spec.windows:
        raise InputShapeError(f"windows_nb={windows_nb!r:.40}; the network expects {cnn.spec.windows}")
    expected = required_slots(cnn.spec.image_size, cnn.spec.kernel, cnn.spec.stride)
    if enc.size() != expected:
        raise InputShapeError(f"ciphertext holds {enc.size()} values; an im2col-encoded {cnn.spec.image_size} px image "
                              f"holds {expected}")
    with ckks.ckks_errors("server_cnn"):
        ckks.ensure_depth(enc, 6, "server_cnn (conv, pack, square, dense, square, dense)")
        channels = [enc.conv2d_im2col(k.tolist(), windows_nb) + float(b) for k, b in zip(cnn.kernels, cnn.conv_bias)]
        x = ts.CKKSVector.pack_vectors(channels)  # masks each channel: one level
        x.square_()
        x = x.mm(cnn.w1.tolist())  # b1 is folded into the next step, see encrypted_square_dense
        x = encrypted_square_dense(x, cnn.b1, cnn.w2, cnn.b2)
    return ckks.serialize_vector(x, public_ctx)


def client_decrypt_scores(ctx: ts.Context, ciphertext: bytes) -> np.ndarray:
    """Client: decrypt the class scores (needs the secret key; refuses scores of another key)."""
    return ckks.decrypt(ckks.vector_from(ctx, ciphertext, "scores"))


def _one_image(ctx: ts.Context, public_ctx: ts.Context, cnn: SquareCNN, image: np.ndarray,
               params: ckks.CKKSParams) -> dict:
    (up, windows_nb), enc_ms, enc_cpu = timed_ms(client_encrypt_image, ctx, image, cnn.spec, params)
    down, srv_ms, srv_cpu = timed_ms(server_cnn, public_ctx, up, windows_nb, cnn)
    scores, dec_ms, dec_cpu = timed_ms(client_decrypt_scores, ctx, down)
    return {"scores": scores, "encrypt_ms": enc_ms, "server_ms": srv_ms, "decrypt_ms": dec_ms,
            "bytes_up": len(up), "bytes_down": len(down), "server_cpu_ms": srv_cpu,
            "total_cpu_ms": enc_cpu + srv_cpu + dec_cpu}


def encrypted_cnn_cost(ctx: ts.Context, cnn: SquareCNN, images: np.ndarray, labels: np.ndarray,
                       params: ckks.CKKSParams = ckks.CNN_8192, name: str = "rung 4: CNN on encrypted pixels",
                       progress: bool = True) -> tuple[LadderRow, np.ndarray]:
    """Classify every image encrypted; returns the cost row (means per image) and the scores."""
    ckks.check_context(ctx, params)  # the row describes the context that runs, not the argument
    twin = plain_cnn_scores(cnn, images)  # validates the images before any encryption
    check_output_range(twin, params)
    public_blob = ckks.public_context(ctx)  # the one-off upload: public, relin and Galois keys
    public_ctx = ckks.load_context(public_blob)
    runs = [_one_image(ctx, public_ctx, cnn, im, params) for im in tqdm(images, desc="rung 4 encrypted",
                                                                         disable=not progress)]
    return inference_row(4, name, runs, twin, labels, public_blob, ctx, params)
