"""Client-side image features for private inference: a public MobileNetV2 backbone, or plain
downsampled pixels when no backbone weights are available (the offline synthetic default)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ppdl_utils.errors import DataError


def pixel_features(images: np.ndarray, grid: int = 16) -> np.ndarray:
    """Block-mean downsampling of (N, H, W) uint8 images to grid x grid features in [0, 1]."""
    n, h, w = images.shape
    if h % grid or w % grid:
        raise DataError(f"image size {h}x{w} is not a multiple of the feature grid {grid}")
    blocks = images.reshape(n, grid, h // grid, grid, w // grid).mean(axis=(2, 4))
    return (blocks / 255.0).reshape(n, grid * grid).astype(np.float32)


def mobilenet_features(images: np.ndarray, weights: "str | Path", batch_size: int = 32) -> np.ndarray:
    """Global-average-pooled MobileNetV2 features (1280 per image) from a Keras weights file for
    `MobileNetV2(include_top=False)`; images are (N, H, W) uint8 grayscale, H = W >= 32."""
    from ppdl_utils.learning.models import build_backbone  # TensorFlow loads only when features are asked for

    model = build_backbone(images.shape[1], str(weights))  # WeightsError names a missing or unfit file
    rgb = np.repeat(images[..., None], 3, axis=-1).astype(np.float32) / 127.5 - 1.0
    return model.predict(rgb, batch_size=batch_size, verbose=0).astype(np.float32)


def image_features(images: np.ndarray, weights: "str | Path | None", grid: int = 16) -> tuple[np.ndarray, str]:
    """MobileNetV2 features when a weights file is given, else pixel features; returns (features, name)."""
    if weights:
        return mobilenet_features(images, weights), "MobileNetV2 (ImageNet) pooled features, d = 1280"
    return pixel_features(images, grid), f"downsampled pixels, d = {grid * grid} (no backbone weights given)"
