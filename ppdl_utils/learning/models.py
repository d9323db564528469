"""The classifiers: the paper's transfer-learning MobileNetV2, a small CNN for quick runs, and the
MLP / gray-image CNN of the scheme comparison (notebook 05) -- one place for every Keras model.

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

from ppdl_utils.config import WeightsError, default_weights_path  # noqa: E402
from ppdl_utils.learning.input_table import input_table_block  # noqa: E402

INDEX_INPUT = "index"
RGB_INPUT = "rgb"


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


def _load_base_weights(base: keras.Model, weights: str, alpha: float) -> None:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"pretrained weights file {path} does not exist: pass the offline ImageNet weights "
                           f"({default_weights_path()}) or weights=None to train from random initialisation")
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
            e.g. :func:`ppdl_utils.config.resolve_weights`.  Convolution weights do not depend on the input size.
        bn_momentum: moving-average momentum put on every BatchNormalization layer (0.9; Keras'
            default 0.999 gives chance test accuracy when the statistics shift, see module doc).
        dropout: rate of the Dropout layer before the classifier.
        learnable_input_table: take raw uint8 pixels (int32 ``(H, W)``) through a learnable
            ``Embedding(256, 3)`` initialised to the usual [-1, 1] scaling.
        alpha: width multiplier (1.0 for the paper's network; 0.35 makes a tiny one for quick runs).
        input_table_init: (256, 3) initial table (default :func:`identity_table`; see
            :mod:`ppdl_utils.learning.input_table`).

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
                               f"offline, pass the weights file path instead, e.g. {default_weights_path()}"
                               ) from exc
        base.set_weights(reference.get_weights())
    elif weights is not None:
        _load_base_weights(base, str(weights), alpha)

    if learnable_input_table:
        inputs, x = input_table_block(input_size, init=input_table_init)
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
        inputs, x = input_table_block(int(input_size), init=input_table_init)
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


def build_mlp(n_features: int, n_classes: int) -> keras.Model:
    """The scheme comparison's model for tabular features: 64-32 ReLU units, dropout 0.2."""
    return keras.Sequential([
        keras.Input((n_features,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(n_classes, activation="softmax"),
    ], name="mlp")


def _gray_conv_block(filters: int, pool: bool, bn_momentum: float) -> list:
    layers = [keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
              keras.layers.BatchNormalization(momentum=bn_momentum),  # 0.999 gives chance accuracy here
              keras.layers.ReLU()]
    return layers + ([keras.layers.MaxPooling2D()] if pool else [])


def build_gray_cnn(height: int, width: int, n_classes: int, bn_momentum: float = 0.9) -> keras.Model:
    """The scheme comparison's model for standardized one-channel images (any value range, e.g.
    rendered LWE or RSA ciphertexts): 3 conv blocks (16-32-64), global average pooling, dropout."""
    return keras.Sequential([
        keras.Input((height, width, 1)),
        *_gray_conv_block(16, True, bn_momentum), *_gray_conv_block(32, True, bn_momentum),
        *_gray_conv_block(64, False, bn_momentum),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(n_classes, activation="softmax"),
    ], name="gray_cnn")


def build_backbone(input_size: int, weights: str, alpha: float = 1.0) -> keras.Model:
    """MobileNetV2 (no top) + global average pooling: the public feature extractor of private
    inference (1280 features per image at alpha 1.0), loaded from a weights file and checked."""
    base = keras.applications.MobileNetV2(input_shape=(int(input_size), int(input_size), 3), alpha=alpha,
                                          include_top=False, weights=None, pooling="avg")
    _load_base_weights(base, str(weights), alpha)
    return base


#: MobileNetV2 layers pooled by the multi-block extractor: two expansion outputs (after ReLU6), the last
#: bottleneck and the final activation -> 192 + 576 + 320 + 1280 = 2,368 features at alpha 1.0.
MULTIBLOCK_LAYERS = ("block_6_expand_relu", "block_13_expand_relu", "block_16_project_BN", "out_relu")


def build_multiblock_extractor(input_size: int, weights: str, layers: tuple[str, ...] = MULTIBLOCK_LAYERS
                               ) -> keras.Model:
    """The public ImageNet MobileNetV2, frozen, with the global average of several blocks concatenated.

    Earlier blocks keep texture and local contrast that the last block has pooled away; on X-rays a
    linear model on the concatenation separates the classes better than on the last block alone.
    """
    base = keras.applications.MobileNetV2(input_shape=(int(input_size), int(input_size), 3), alpha=1.0,
                                          include_top=False, weights=None)
    _load_base_weights(base, str(weights), 1.0)
    names = {layer.name for layer in base.layers}
    unknown = [name for name in layers if name not in names]
    if unknown:
        raise WeightsError(f"layers {unknown} are not layers of MobileNetV2 (alpha 1.0)")
    pooled = [keras.layers.GlobalAveragePooling2D(name=f"pool_{name}")(base.get_layer(name).output)
              for name in layers]
    return keras.Model(base.input, keras.layers.Concatenate(name="features")(pooled), name="multiblock")
