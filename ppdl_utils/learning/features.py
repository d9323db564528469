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


#: Bumped when the preprocessing below changes, so cached features and trained heads are told apart.
_PREPROCESSING = "gray->rgb, x/127.5-1, global average per block, v1"


def extractor_fingerprint(weights: "str | Path", image_size: int, layers: tuple[str, ...]) -> str:
    """16 hex digits naming the client's feature extractor: weights file bytes, layers, size, preprocessing.

    It travels with encrypted features, so a head trained on one extractor refuses features of another
    (another backbone, resolution or block set), which would decrypt to plausible but meaningless scores.
    """
    import hashlib

    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(repr((int(image_size), tuple(layers), _PREPROCESSING)).encode())
    return digest.hexdigest()[:16]


def multiblock_features(images: np.ndarray, weights: "str | Path", layers: "tuple[str, ...] | None" = None,
                        batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """Pooled features of several MobileNetV2 blocks (2,368 by default) for (N, H, W) uint8 images.

    The backbone is the public ImageNet model, never trained on the images it describes: the client can
    run it in the clear without revealing anything a server could learn from.
    """
    from tqdm.auto import tqdm

    from ppdl_utils.learning.models import MULTIBLOCK_LAYERS, build_multiblock_extractor

    layers = tuple(layers or MULTIBLOCK_LAYERS)
    if images.ndim != 3 or images.shape[1] != images.shape[2] or images.shape[1] < 32 or images.dtype != np.uint8:
        raise DataError(f"images must be (N, S, S) uint8 with S >= 32; got {images.shape} {images.dtype}")
    model = build_multiblock_extractor(images.shape[1], str(weights), layers)
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="backbone features", disable=not progress,
                      unit="batch"):
        chunk = images[start:start + batch_size]
        rgb = np.repeat(chunk[..., None], 3, axis=-1).astype(np.float32) / 127.5 - 1.0
        out.append(np.asarray(model(rgb, training=False), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, model.output_shape[-1]), np.float32)


def cached_multiblock_features(images: np.ndarray, hashes: list[str], weights: "str | Path",
                               cache_dir: "str | Path | None", layers: "tuple[str, ...] | None" = None
                               ) -> tuple[np.ndarray, str]:
    """:func:`multiblock_features`, kept under ``cache_dir`` by extractor fingerprint and image hashes.

    Returns (features, extractor fingerprint).  The backbone is the slow part of the client's work
    (about 30 ms per 224-px image on one core); a study over several split seeds pays it once.
    """
    import hashlib

    from ppdl_utils.learning.models import MULTIBLOCK_LAYERS

    layers = tuple(layers or MULTIBLOCK_LAYERS)
    fingerprint = extractor_fingerprint(weights, images.shape[1], layers)
    if len(hashes) != len(images):
        raise DataError(f"hashes: {len(hashes)} given for {len(images)} images")
    path = None
    if cache_dir:
        content = hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"features_{fingerprint}_{content}.npy"
        if path.is_file():
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(images):
                return cached, fingerprint
    features = multiblock_features(images, weights, layers)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.npy")
        np.save(tmp, features, allow_pickle=False)
        tmp.replace(path)
    return features, fingerprint
