"""The dataset container: labelled uint8 grayscale images with a content hash per image.

Every image is kept as one uint8 grayscale channel, ``(N, H, W)``; :func:`to_rgb` makes the
three-channel copy that ImageNet-style networks expect.  Every image carries a content hash
(``sha256`` of the original file bytes, or of the array bytes for in-memory data), so exact
copies can be found and kept on the same side of a train/validation/test split.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ppdl_utils.errors import DataError

__all__ = ["ImageDataset", "to_rgb", "array_hash"]


def array_hash(image: np.ndarray) -> str:
    """sha256 of the array bytes: the content hash of an in-memory image."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


# --------------------------------------------------------------------------------------
# the dataset container
# --------------------------------------------------------------------------------------
@dataclass(eq=False)
class ImageDataset:
    """A labelled set of grayscale images.

    Attributes:
        images: ``(N, H, W)`` uint8 array, one grayscale channel.
        labels: ``(N,)`` int64 array of indices into ``class_names``.
        class_names: the name of each class, in label order.
        paths: the source file of each image, or ``None`` for in-memory / synthetic data.
        source: where the data came from (``"folder"``, ``"medmnist"``, ``"synthetic"``).
        name: a human-readable name (synthetic sets start with ``"SYNTHETIC"``).
        report: counts of what happened while loading / cleaning (skipped corrupt files,
            duplicates, label conflicts, ...).
        hashes: one content hash per image: sha256 of the original file bytes for files,
            of the array bytes otherwise (computed when not given).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    paths: list[str] | None = None
    source: str = "array"
    name: str = ""
    report: dict = field(default_factory=dict)
    hashes: list[str] | None = None

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise DataError(
                f"ImageDataset 'images' must be a (N, H, W) uint8 array, got shape {images.shape} "
                f"dtype {images.dtype}"
            )
        labels = np.asarray(self.labels)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"ImageDataset 'labels' must have shape ({len(images)},), got {labels.shape}"
            )
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"ImageDataset 'labels' must be integers, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
        self.class_names = [str(c) for c in self.class_names]
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise DataError(
                f"ImageDataset 'labels' must lie in [0, {len(self.class_names) - 1}] "
                f"(class_names={self.class_names}), got range [{labels.min()}, {labels.max()}]"
            )
        if self.paths is not None:
            self.paths = [str(p) for p in self.paths]
            if len(self.paths) != len(images):
                raise DataError(
                    f"ImageDataset 'paths' has {len(self.paths)} entries for {len(images)} images"
                )
        if self.hashes is None:
            self.hashes = [array_hash(im) for im in images]
        else:
            self.hashes = list(self.hashes)
            if len(self.hashes) != len(images):
                raise DataError(
                    f"ImageDataset 'hashes' has {len(self.hashes)} entries for {len(images)} images"
                )
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        counts = ", ".join(f"{c}: {n}" for c, n in self.class_counts().items())
        return f"ImageDataset({self.name!r}, source={self.source!r}, {len(self)} images {shape}, {counts})"

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.images.shape[1:3])  # type: ignore[return-value]

    def class_counts(self) -> dict[str, int]:
        """Number of images per class name (in label order, zeros included)."""
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {c: int(n) for c, n in zip(self.class_names, counts)}

    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> "ImageDataset":
        """A new dataset holding the given images (in the given order); report is copied."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return ImageDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            class_names=list(self.class_names),
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            source=self.source,
            name=self.name if name is None else name,
            report=dict(self.report),
            hashes=[self.hashes[i] for i in idx],  # type: ignore[index]
        )

    def to_rgb(self) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 copy with the gray channel repeated."""
        return to_rgb(self.images)


def to_rgb(images: np.ndarray) -> np.ndarray:
    """Repeat a grayscale channel three times: ``(N, H, W)`` -> ``(N, H, W, 3)``.

    A single ``(H, W)`` image gives ``(H, W, 3)``; an array whose last axis is already 3 and
    which has 4 dimensions is returned unchanged.  The dtype is kept.
    """
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 3:
        return arr
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3):
        raise DataError(f"to_rgb expects (N, H, W) or (H, W) images, got shape {arr.shape}")
    return np.repeat(arr[..., None], 3, axis=-1)
