"""The classifiers: the paper's transfer-learning MobileNetV2 and a small CNN for tests.

Every model here takes the images the way :mod:`ppdl_utils.learning.training` feeds them:

* ``input_kind(model) == "rgb"``: float ``(H, W, 3)`` in [-1, 1] (MobileNetV2 preprocessing of the
  grayscale pixel repeated on three channels);
* ``input_kind(model) == "index"``: the raw uint8 pixel values as int32 ``(H, W)``; the first layer
  is a learnable 256-entry lookup table (``learnable_input_table=True``).  Deterministic
  encryption regimes are substitutions of the 256 gray levels, so this layer can learn the
  inverse substitution from the ciphertext images and their labels alone.

Batch normalisation: Keras' default moving-average momentum (0.99 for Keras layers, 0.999 for the
MobileNetV2 application) makes the moving statistics lag far behind the weights when a network
is trained from scratch or fine-tuned on a small set; the model then scores 100% on its
training batches and chance on the test set (inference uses the moving statistics).
``bn_momentum=0.9`` fixes that; it is set on every BatchNormalization layer, nested ones included.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

# quiet TensorFlow's C++ start-up banner when this module is the first to import it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from ppdl_utils.errors import PPDLError  # noqa: E402

#: The offline stand-in for ``weights="imagenet"`` (converted Keras 3 weights, no top).
SHARED_IMAGENET_WEIGHTS = (Path(__file__).resolve().parents[3] / "shared" / "data" / "mobilenet_v2_imagenet"
                           / "mobilenet_v2_1.0_224_no_top.weights.h5")

PIXEL_LEVELS = 256
INDEX_INPUT = "index"
RGB_INPUT = "rgb"


class WeightsError(PPDLError, ValueError):
    """A pretrained-weights file is missing or does not fit the model; the message names the path."""


def default_weights() -> str | None:
    """The shared ImageNet weights file when it exists on this machine, else None (random init)."""
    return str(SHARED_IMAGENET_WEIGHTS) if SHARED_IMAGENET_WEIGHTS.is_file() else None


def set_bn_momentum(model: keras.Model, momentum: float) -> int:
    """Set the moving-average momentum of every BatchNormalization layer (nested models too);
    returns how many layers were changed."""
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"bn_momentum must be in [0, 1), got {momentum!r}")
    count = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)
            count += 1
    return count


def bn_momenta(model: keras.Model) -> list[float]:
    """The momentum of every BatchNormalization layer (nested models included)."""
    return [layer.momentum for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def input_kind(model: keras.Model) -> str:
    """``"index"`` for models whose first layer is the learnable pixel table (int inputs), else ``"rgb"``."""
    dtype = str(model.inputs[0].dtype)
    return INDEX_INPUT if "int" in dtype else RGB_INPUT


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

    Runs the ciphertext-only substitution attack (:func:`ppdl_utils.attacks.algebraic.attack_substitution_ciphertext_only`:
    spectral seriation of adjacent-value co-occurrences + histogram matching) on up to
    `max_images` training images, and maps each rendered value to the gray level it recovers.
    Anyone holding the ciphertexts can do this — one more sign that deterministic regimes are not
    secure.  For randomized ciphertexts the attack finds nothing and the result is ~meaningless."""
    from ppdl_utils.attacks.algebraic import attack_substitution_ciphertext_only

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
        raise ValueError(f"plain and cipher images differ in size: {np.shape(plain_images)} vs {np.shape(cipher_images)}")
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


def _input_table_block(input_size: int, name: str = "pixel_table", init: np.ndarray | None = None):
    init = identity_table() if init is None else np.asarray(init, dtype=np.float32)
    if init.shape != (PIXEL_LEVELS, 3):
        raise ValueError(f"input table initialisation must have shape ({PIXEL_LEVELS}, 3), got {init.shape}")
    inputs = keras.Input((input_size, input_size), dtype="int32", name="pixel_index")
    table = keras.layers.Embedding(PIXEL_LEVELS, 3, name=name,
                                   embeddings_initializer=keras.initializers.Constant(init))
    return inputs, table(inputs)


def _load_base_weights(base: keras.Model, weights: str, alpha: float) -> None:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"pretrained weights file {path} does not exist (pass weights=None to train from "
                           f"scratch, or the path of mobilenet_v2_1.0_224_no_top.weights.h5)")
    before = [keras.ops.convert_to_numpy(v.value) for v in base.weights]
    try:
        with warnings.catch_warnings():
            # keras only warns when parts of a file do not match ("... retain their freshly-initialized
            # weights"); the check below turns a partial load into an error
            warnings.simplefilter("ignore", UserWarning)
            base.load_weights(str(path))
    except Exception as exc:  # keras raises ValueError/KeyError/OSError depending on the mismatch
        raise WeightsError(f"cannot load weights file {path} into MobileNetV2(alpha={alpha}, include_top=False): "
                           f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    unchanged = [v.path for v, old in zip(base.weights, before)
                 if np.array_equal(keras.ops.convert_to_numpy(v.value), old)]
    if unchanged:
        raise WeightsError(f"weights file {path} does not fit MobileNetV2(alpha={alpha}, include_top=False): "
                           f"{len(unchanged)} of {len(before)} variables were not loaded "
                           f"(e.g. {', '.join(unchanged[:3])})")


def build_mobilenetv2(input_size: int, n_classes: int, weights: str | None = None, bn_momentum: float = 0.9,
                      dropout: float = 0.2, learnable_input_table: bool = False, alpha: float = 1.0,
                      input_table_init: np.ndarray | None = None, name: str | None = None) -> keras.Model:
    """MobileNetV2 (no top) + GlobalAveragePooling + Dropout + Dense softmax, every layer trainable.

    Args:
        input_size: side of the square input image.
        n_classes: number of output classes.
        weights: None (random init), ``"imagenet"`` (Keras download; not available offline, use the
            path instead) or the path of a Keras weights file for ``MobileNetV2(include_top=False)``,
            e.g. :func:`default_weights`.  Convolution weights do not depend on the input size.
        bn_momentum: moving-average momentum put on every BatchNormalization layer (0.9; Keras'
            default 0.999 gives chance test accuracy when the statistics shift, see module doc).
        dropout: rate of the Dropout layer before the classifier.
        learnable_input_table: take raw uint8 pixels (int32 ``(H, W)``) through a learnable
            ``Embedding(256, 3)`` initialised to the usual [-1, 1] scaling.
        alpha: width multiplier (1.0 for the paper's network; 0.35 makes a tiny one for quick runs).
        input_table_init: (256, 3) initial table (default :func:`identity_table`; see
            :func:`seriation_table`, :func:`table_from_gray_levels`).

    Raises:
        WeightsError: the weights file is missing or incompatible (the message names the path).
    """
    if int(input_size) < 32:
        raise ValueError(f"MobileNetV2 needs input_size >= 32, got {input_size}")
    input_size = int(input_size)
    base = keras.applications.MobileNetV2(input_shape=(input_size, input_size, 3), alpha=alpha,
                                          include_top=False, weights=None)
    if weights == "imagenet":
        try:
            reference = keras.applications.MobileNetV2(input_shape=(input_size, input_size, 3), alpha=alpha,
                                                       include_top=False, weights="imagenet")
        except Exception as exc:
            raise WeightsError(f"weights='imagenet' needs a download that failed ({type(exc).__name__}); "
                               f"offline, pass the weights file path instead, e.g. {SHARED_IMAGENET_WEIGHTS}"
                               ) from exc
        base.set_weights(reference.get_weights())
    elif weights is not None:
        _load_base_weights(base, str(weights), alpha)

    if learnable_input_table:
        inputs, x = _input_table_block(input_size, init=input_table_init)
    else:
        inputs = keras.Input((input_size, input_size, 3), name="image")
        x = inputs
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name=name or ("mobilenetv2_table" if learnable_input_table
                                                       else "mobilenetv2"))
    set_bn_momentum(model, bn_momentum)
    return model


def build_small_cnn(input_size: int, n_classes: int, learnable_input_table: bool = False,
                    bn_momentum: float = 0.9, width: int = 16, input_table_init: np.ndarray | None = None
                    ) -> keras.Model:
    """A few-thousand-parameter CNN with the same input conventions (for tests and quick runs)."""
    if learnable_input_table:
        inputs, x = _input_table_block(int(input_size), init=input_table_init)
    else:
        inputs = keras.Input((int(input_size), int(input_size), 3), name="image")
        x = inputs
    for i, filters in enumerate((width, 2 * width)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=bn_momentum, name=f"bn{i}")(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="small_cnn_table" if learnable_input_table else "small_cnn")
