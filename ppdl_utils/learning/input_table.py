"""The learnable input table: a 256-entry lookup that a model puts before its first layer, and its starts.

Deterministic encryption regimes are substitutions of the 256 gray levels (rendered back to bytes),
so a model whose first layer is a learnable ``Embedding(256, 3)`` can learn the inverse
substitution from ciphertext images and labels alone.  Where it starts matters:

* ``identity``: v / 127.5 - 1, the usual MobileNetV2 scaling (what a plain model sees);
* ``seriation``: a *ciphertext-only* estimate of the inverse substitution, by the attack of
  :mod:`ppdl_utils.attacks.substitution` -- anyone holding the ciphertexts can compute it;
* ``oracle``: from plaintext/ciphertext pairs -- a reference no server has.
"""
from __future__ import annotations

import os

import numpy as np

from ppdl_utils.attacks.substitution import attack_substitution_ciphertext_only

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's banner if this module loads it first

import keras  # noqa: E402

PIXEL_LEVELS = 256


def identity_table() -> np.ndarray:
    """(256, 3) initial table: pixel value v -> MobileNetV2 preprocessing v / 127.5 - 1 on 3 channels,
    so that on plain images the table model starts out equal to the ordinary model."""
    column = np.arange(PIXEL_LEVELS, dtype=np.float32) / 127.5 - 1.0
    return np.repeat(column[:, None], 3, axis=1)


def table_from_gray_levels(levels: "np.ndarray | dict") -> np.ndarray:
    """(256, 3) input-table initialisation from a gray level (0..255) per input value: a length-256
    array, or a {value: level} dict (values it lacks get the middle gray, 127.5)."""
    if isinstance(levels, dict):
        column = np.full(PIXEL_LEVELS, 127.5, dtype=np.float32)
        for value, level in levels.items():
            column[int(value)] = float(level)
    else:
        column = np.asarray(levels, dtype=np.float32).reshape(-1)
        if column.shape != (PIXEL_LEVELS,):
            raise ValueError(f"gray levels must have {PIXEL_LEVELS} entries, got shape {np.shape(levels)}")
    return np.repeat((column / 127.5 - 1.0)[:, None], 3, axis=1).astype(np.float32)


def seriation_table(cipher_images: np.ndarray, max_images: int = 100, seed: int = 0) -> np.ndarray:
    """(256, 3) input-table initialisation estimated from *ciphertext images alone*.

    Runs the ciphertext-only substitution attack
    (:func:`~ppdl_utils.attacks.substitution.attack_substitution_ciphertext_only`:
    spectral seriation of adjacent-value co-occurrences + histogram matching) on up to
    `max_images` training images, and maps each rendered value to the gray level it recovers.
    Anyone holding the ciphertexts can do this — one more sign that deterministic regimes are not
    secure.  For randomized ciphertexts the attack finds nothing and the result is ~meaningless."""
    images = np.asarray(cipher_images)
    if len(images) > max_images:
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), max_images, replace=False))]
    result = attack_substitution_ciphertext_only(images)
    return table_from_gray_levels(result.table or {})


def oracle_table(plain_images: np.ndarray, cipher_images: np.ndarray) -> np.ndarray:
    """(256, 3) input-table initialisation from *plaintext/ciphertext pairs*: each rendered value
    maps to the mean gray level of the pixels it stands for (values never seen get the middle gray).

    Not something a server can do (it needs the plaintexts): a reference start that already knows
    the inverse substitution, to tell a poor ciphertext-only estimate from a lossy rendering. Where
    the rendering merges gray levels (a ``table`` regime rendered ``c mod 256`` sends 256 random
    ciphertexts to ~162 distinct bytes), the merged levels stay merged."""
    plain = np.asarray(plain_images).reshape(-1).astype(np.int64)
    cipher = np.asarray(cipher_images).reshape(-1).astype(np.int64)
    if plain.shape != cipher.shape:
        raise ValueError(f"plain and cipher images differ in size: {np.shape(plain_images)} "
                         f"vs {np.shape(cipher_images)}")
    counts = np.bincount(cipher, minlength=PIXEL_LEVELS)
    sums = np.bincount(cipher, weights=plain, minlength=PIXEL_LEVELS)
    levels = np.where(counts > 0, sums / np.maximum(counts, 1), 127.5)
    return table_from_gray_levels(levels)


INPUT_TABLE_INITS = ("identity", "seriation", "oracle")


def input_table_init(kind: str, cipher_train: np.ndarray, plain_train: np.ndarray | None = None) -> np.ndarray:
    """The learnable input table's start, by name: ``"identity"`` (v / 127.5 - 1), ``"seriation"``
    (ciphertext-only estimate, :func:`seriation_table`) or ``"oracle"`` (from the plaintexts,
    :func:`oracle_table`: a reference, not a server's capability)."""
    if kind == "identity":
        return identity_table()
    if kind == "seriation":
        return seriation_table(cipher_train)
    if kind == "oracle":
        if plain_train is None:
            raise ValueError('input_table_init="oracle" needs the plain training images')
        return oracle_table(plain_train, cipher_train)
    raise ValueError(f"unknown input_table_init {kind!r}; expected one of {', '.join(INPUT_TABLE_INITS)}")


def input_table_block(input_size: int, name: str = "pixel_table", init: np.ndarray | None = None):
    """A model's input (raw pixel values, int32 (H, W)) and the table's output ((H, W, 3) floats)."""
    init = identity_table() if init is None else np.asarray(init, dtype=np.float32)
    if init.shape != (PIXEL_LEVELS, 3):
        raise ValueError(f"input table initialisation must have shape ({PIXEL_LEVELS}, 3), got {init.shape}")
    inputs = keras.Input((input_size, input_size), dtype="int32", name="pixel_index")
    table = keras.layers.Embedding(PIXEL_LEVELS, 3, name=name,
                                   embeddings_initializer=keras.initializers.Constant(init))
    return inputs, table(inputs)
