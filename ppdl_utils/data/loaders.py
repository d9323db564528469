"""Image datasets: loaders for class-per-folder image sets and MedMNIST ``.npz`` files,
exact-duplicate / label-conflict handling, and leakage-free stratified splits.

Every image is kept as one uint8 grayscale channel, ``(N, H, W)``; :func:`to_rgb` makes the
three-channel copy that ImageNet-style networks expect.  Every image carries a content hash
(``sha256`` of the original file bytes, or of the array bytes for in-memory data), so exact
copies can be found and kept on the same side of a train/validation/test split.

Problems with the data raise :class:`ppdl_utils.errors.DataError`, whose message names the
path or parameter at fault.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ppdl_utils.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "to_rgb",
    "load_image_folder",
    "load_medmnist_npz",
    "find_duplicates",
    "duplicate_summary",
    "resolve_label_conflicts",
    "stratified_split",
    "split_dataset",
    "split_table",
]

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

#: Folder names that are never class folders / never hold the images of a class.
_IGNORED_DIRS = frozenset({"masks", "__MACOSX"})

#: Above this many files a progress bar is shown while loading.
_PROGRESS_THRESHOLD = 300

SPLIT_NAMES = ("train", "val", "test")
_TABLE_COLUMNS = {"train": "Training", "val": "Validation", "test": "Testing"}


def _array_hash(image: np.ndarray) -> str:
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
            self.hashes = [_array_hash(im) for im in images]
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


# --------------------------------------------------------------------------------------
# reading one image
# --------------------------------------------------------------------------------------
def _to_gray_uint8(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit grayscale 'L'.

    16-bit / 32-bit / float images (common for DICOM exports) are min-max scaled to 0..255
    per image instead of being clipped, which PIL's ``convert("L")`` would do.
    """
    if img.mode == "L":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if arr.ndim == 3:  # e.g. "I;16" multi-band exotic cases
            arr = arr.mean(axis=-1)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) * (255.0 / (hi - lo))
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    if img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    return img.convert("L")


def _decode_image(data: bytes, size: int | None) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        gray = _to_gray_uint8(img)
        if size is not None and gray.size != (size, size):
            gray = gray.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.uint8).copy()


def _is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)] + [name]


def _normalise_class(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _check_size(size, param: str = "size") -> int | None:
    if size is None:
        return None
    if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size < 1:
        raise DataError(f"'{param}' must be a positive int or None, got {size!r}")
    return int(size)


# --------------------------------------------------------------------------------------
# class-per-folder loader
# --------------------------------------------------------------------------------------
def load_image_folder(
    root: str | os.PathLike,
    size: int | None = 224,
    classes: Sequence[str] | None = None,
    skip_corrupt: bool = False,
    max_per_class: int | None = None,
    seed: int = 0,
) -> ImageDataset:
    """Load a class-per-folder image set as grayscale ``size x size`` uint8 images.

    Layout: ``root/<class>/*.png`` (also .jpg/.jpeg/.bmp/.tif/.tiff, any case).  When a class
    folder holds an ``images/`` sub-folder (newer COVID-19 Radiography Database releases:
    ``<class>/images/`` beside ``<class>/masks/``), only ``images/`` is read; ``masks/`` and
    files that are not images (``.xlsx`` metadata, READMEs) are ignored and counted in
    ``report``.  Class names may contain spaces (``"Viral Pneumonia"``).

    Args:
        root: the dataset folder (e.g. ``COVID-19_Radiography_Dataset/``).
        size: side of the square output (PIL bilinear resize, antialiased when shrinking);
            ``None`` keeps the native size, which must then be the same for every image.
        classes: which class folders to load, in label order.  A requested name matches a
            folder exactly or, failing that, ignoring case, spaces, ``_`` and ``-``
            (``"Viral_Pneumonia"`` finds ``Viral Pneumonia/``); the dataset's ``class_names``
            are the requested names.  Default: every sub-folder, sorted by name.
        skip_corrupt: skip unreadable images (listed in ``report["skipped_corrupt_paths"]``,
            counted in ``report["skipped_corrupt"]``) instead of raising.
        max_per_class: keep at most this many files per class, a random subset drawn with
            ``seed`` (the kept files stay in sorted order).
        seed: seed of that subset.

    Files are read in natural sorted order (``img2`` before ``img10``) within each class.

    Raises:
        DataError: root missing / not a folder, no class folders, a requested class missing,
            a class folder without images (named), an unreadable image (named) unless
            ``skip_corrupt``.
    """
    root = Path(root)
    size = _check_size(size)
    if max_per_class is not None and (
        isinstance(max_per_class, bool) or not isinstance(max_per_class, (int, np.integer)) or max_per_class < 1
    ):
        raise DataError(f"'max_per_class' must be a positive int or None, got {max_per_class!r}")
    if not root.exists():
        raise DataError(f"dataset root {root} does not exist")
    if not root.is_dir():
        raise DataError(f"dataset root {root} is not a directory")

    subdirs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in _IGNORED_DIRS),
        key=lambda p: p.name,
    )
    if not subdirs:
        raise DataError(f"no class folders in dataset root {root} (expected one sub-folder per class)")

    if classes is None:
        chosen = [(p.name, p) for p in subdirs]
    else:
        if isinstance(classes, str):
            classes = [classes]
        if len(set(classes)) != len(classes):
            raise DataError(f"'classes' lists a class twice: {list(classes)}")
        by_name = {p.name: p for p in subdirs}
        chosen = []
        for cls in classes:
            folder = by_name.get(cls)
            if folder is None:
                matches = [p for p in subdirs if _normalise_class(p.name) == _normalise_class(cls)]
                folder = matches[0] if len(matches) == 1 else None
            if folder is None:
                raise DataError(
                    f"class {cls!r} requested but there is no folder {root / cls}; "
                    f"class folders found: {[p.name for p in subdirs]}"
                )
            chosen.append((str(cls), folder))

    rng = np.random.default_rng(seed)
    report: dict = {"root": str(root), "ignored_files": 0, "ignored_dirs": [], "files_per_class": {}}
    file_lists: list[list[Path]] = []
    for cls, folder in chosen:
        img_dir = folder / "images"
        if not img_dir.is_dir():
            img_dir = folder
        else:
            report["ignored_dirs"].extend(
                str(p) for p in sorted(folder.iterdir()) if p.is_dir() and p.name != "images"
            )
            report["ignored_files"] += sum(1 for p in folder.iterdir() if p.is_file())
        files, ignored = [], 0
        for p in img_dir.iterdir():
            if _is_image_file(p):
                files.append(p)
            elif p.is_dir():
                if img_dir is folder:
                    report["ignored_dirs"].append(str(p))
            else:
                ignored += 1
        report["ignored_files"] += ignored
        if not files:
            raise DataError(
                f"class folder {folder} holds no images "
                f"(looked for {', '.join(sorted(IMAGE_EXTENSIONS))} in {img_dir})"
            )
        files.sort(key=lambda p: _natural_key(p.name))
        if max_per_class is not None and len(files) > max_per_class:
            keep = np.sort(rng.choice(len(files), size=int(max_per_class), replace=False))
            files = [files[i] for i in keep]
        report["files_per_class"][cls] = len(files)
        file_lists.append(files)

    total = sum(len(f) for f in file_lists)
    images: list[np.ndarray] = []
    labels: list[int] = []
    paths: list[str] = []
    hashes: list[str] = []
    skipped: list[str] = []
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=f"loading {root.name}", unit="img", disable=total <= _PROGRESS_THRESHOLD) as bar:
        for label, ((cls, folder), files) in enumerate(zip(chosen, file_lists)):
            n_ok = 0
            for path in files:
                bar.update(1)
                try:
                    data = path.read_bytes()
                    arr = _decode_image(data, size)
                except Exception as exc:  # PIL raises many types for bad files
                    if skip_corrupt:
                        skipped.append(str(path))
                        continue
                    raise DataError(
                        f"cannot read image {path}: {type(exc).__name__}: {exc} "
                        f"(pass skip_corrupt=True to skip unreadable files)"
                    ) from exc
                images.append(arr)
                labels.append(label)
                paths.append(str(path))
                hashes.append(hashlib.sha256(data).hexdigest())
                n_ok += 1
            if n_ok == 0:
                raise DataError(f"class folder {folder} holds no readable images (all {len(files)} skipped as corrupt)")

    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise DataError(
            f"images under {root} have different sizes {sorted(shapes)[:5]}; pass size=<int> to resize them"
        )
    report["skipped_corrupt"] = len(skipped)
    report["skipped_corrupt_paths"] = skipped
    report["n_files"] = total
    report["n_images"] = len(images)
    report.update(duplicate_summary(labels, hashes))
    return ImageDataset(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=[c for c, _ in chosen],
        paths=paths,
        source="folder",
        name=root.name,
        report=report,
        hashes=hashes,
    )


# --------------------------------------------------------------------------------------
# MedMNIST
# --------------------------------------------------------------------------------------
def _npz_images_to_gray(images: np.ndarray, key: str, path: Path) -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and arr.shape[-1] == 3:  # RGB MedMNIST sets: ITU-R 601-2 luma, as PIL "L"
        arr = arr.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        arr = np.clip(np.rint(arr), 0, 255)
    if arr.ndim != 3:
        raise DataError(f"{path}: key {key!r} must hold (N, H, W) or (N, H, W, 3) images, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 255 or not np.all(np.mod(arr, 1) == 0)):
            raise DataError(f"{path}: key {key!r} must hold integer pixel values 0..255 (dtype {arr.dtype})")
        arr = arr.astype(np.uint8)
    return arr


def _resize_stack(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1:] == (size, size):
        return images
    return np.stack(
        [np.asarray(Image.fromarray(np.ascontiguousarray(im)).resize((size, size), Image.Resampling.BILINEAR)) for im in images]
    ) if len(images) else np.zeros((0, size, size), np.uint8)


def load_medmnist_npz(
    path: str | os.PathLike,
    split: str | None = None,
    size: int | None = None,
    class_names: Sequence[str] | None = None,
) -> "ImageDataset | dict[str, ImageDataset]":
    """Load a MedMNIST ``.npz`` file (keys ``train_images``, ``train_labels``, ``val_*``, ``test_*``).

    Args:
        path: the ``.npz`` file (e.g. ``pneumoniamnist.npz``).
        split: ``"train"``, ``"val"`` or ``"test"`` for one official split; ``None`` returns a
            dict ``{"train": ..., "val": ..., "test": ...}`` of the splits present in the file;
            ``"all"`` concatenates them into one dataset whose ``report["official_split"]``
            holds each image's split name (for a re-split with :func:`split_dataset`).
        size: resize to ``size x size`` (PIL bilinear); ``None`` keeps the native size.
        class_names: names of the classes (e.g. ``["normal", "pneumonia"]``);
            default ``"class 0"``, ``"class 1"``, ...

    Labels may be stored as ``(N, 1)`` or ``(N,)``; multi-label sets (``(N, k)``, k > 1) are
    rejected.  RGB sets are converted to gray with the ITU-R 601-2 luma weights.

    Raises:
        DataError: missing/unreadable file, missing key, length mismatch, bad label values.
    """
    path = Path(path)
    size = _check_size(size)
    if split is not None and split not in (*SPLIT_NAMES, "all"):
        raise DataError(f"'split' must be None, 'train', 'val', 'test' or 'all', got {split!r}")
    if not path.exists():
        raise DataError(f"MedMNIST file {path} does not exist")
    if not path.is_file():
        raise DataError(f"MedMNIST path {path} is not a file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            content = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise DataError(f"cannot read MedMNIST file {path}: {type(exc).__name__}: {exc}") from exc

    if split in SPLIT_NAMES:
        wanted = [split]
    else:
        wanted = [s for s in SPLIT_NAMES if f"{s}_images" in content or f"{s}_labels" in content]
        if not wanted:
            raise DataError(
                f"MedMNIST file {path} has none of the keys train_images/val_images/test_images; "
                f"keys present: {sorted(content)}"
            )
    raw: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for s in wanted:
        for key in (f"{s}_images", f"{s}_labels"):
            if key not in content:
                raise DataError(f"MedMNIST file {path} has no key {key!r}; keys present: {sorted(content)}")
        images = _npz_images_to_gray(content[f"{s}_images"], f"{s}_images", path)
        labels = np.asarray(content[f"{s}_labels"])
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise DataError(
                f"MedMNIST file {path}: key '{s}_labels' has shape {labels.shape}; only single-label "
                f"(N,) or (N, 1) labels are supported"
            )
        if len(labels) != len(images):
            raise DataError(
                f"MedMNIST file {path}: '{s}_images' has {len(images)} images but '{s}_labels' has {len(labels)} labels"
            )
        if labels.size and (not np.all(np.mod(labels, 1) == 0) or labels.min() < 0):
            raise DataError(f"MedMNIST file {path}: '{s}_labels' must be non-negative integers")
        raw[s] = (images, labels.astype(np.int64))

    n_classes = max((int(l.max()) + 1 for _, l in raw.values() if l.size), default=1)
    if class_names is None:
        names = [f"class {i}" for i in range(n_classes)]
    else:
        names = [str(c) for c in class_names]
        if len(names) < n_classes:
            raise DataError(
                f"'class_names' has {len(names)} names but {path} has labels up to {n_classes - 1}"
            )
    if size is not None:
        raw = {s: (_resize_stack(im, size), lab) for s, (im, lab) in raw.items()}

    def make(s: str, images: np.ndarray, labels: np.ndarray, report: dict) -> ImageDataset:
        ds = ImageDataset(images=images, labels=labels, class_names=names, paths=None,
                          source="medmnist", name=f"{path.stem}:{s}", report=report)
        ds.report.update(duplicate_summary(ds.labels, ds.hashes))
        return ds

    if split == "all":
        order = list(raw)
        images = np.concatenate([raw[s][0] for s in order])
        labels = np.concatenate([raw[s][1] for s in order])
        official = np.concatenate([np.full(len(raw[s][1]), s) for s in order]).astype(str)
        return make("all", images, labels, {"file": str(path), "official_split": official})
    datasets = {s: make(s, im, lab, {"file": str(path), "split": s}) for s, (im, lab) in raw.items()}
    return datasets[split] if split in SPLIT_NAMES else datasets


# --------------------------------------------------------------------------------------
# duplicates and label conflicts
# --------------------------------------------------------------------------------------
def _groups_by_hash(hashes: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, h in enumerate(hashes):
        groups[h].append(i)
    return groups


def duplicate_summary(labels: Sequence[int] | np.ndarray, hashes: Sequence[Hashable]) -> dict[str, int]:
    """Counts of exact duplicates and label conflicts (keys documented in :func:`resolve_label_conflicts`)."""
    labels = np.asarray(labels)
    groups = _groups_by_hash(hashes)
    conflicting = [g for g in groups.values() if len(set(labels[g].tolist())) > 1]
    return {
        "distinct_images": len(groups),
        "duplicate_groups": sum(1 for g in groups.values() if len(g) > 1),
        "duplicate_files": sum(len(g) - 1 for g in groups.values()),
        "conflicting_images": len(conflicting),
        "conflicting_files": sum(len(g) for g in conflicting),
    }


def find_duplicates(dataset: ImageDataset) -> list[list[int]]:
    """Groups (2 or more indices, ascending) of images with equal content hash, ordered by first index."""
    groups = [g for g in _groups_by_hash(dataset.hashes).values() if len(g) > 1]  # type: ignore[arg-type]
    return sorted(groups, key=lambda g: g[0])


def resolve_label_conflicts(dataset: ImageDataset, rule: str = "drop_conflicting") -> ImageDataset:
    """Keep one copy of every distinct image and settle images filed under several labels.

    Exact duplicates (equal content hash) carrying the same label are collapsed to their first
    copy.  An image found under two or more *different* labels is a label conflict:

    * ``rule="drop_conflicting"`` (default): every copy of it is dropped, since its true label
      is unknown and keeping either label would train/test on contradictory targets;
    * ``rule="majority"``: it is kept once with the label most of its copies carry; ties are
      dropped.

    Returns a new dataset (the input is unchanged) in the original order of first copies.
    Its ``report`` gains: ``rule``, ``n_before``, ``n_after``, ``distinct_images``,
    ``duplicate_copies_removed`` (extra copies removed, conflicts included),
    ``conflicting_images`` (distinct images under >= 2 labels), ``conflicting_files``
    (files those images occupy), ``conflicts_dropped`` (distinct images dropped) and
    ``conflicts_relabelled`` (kept with their majority label, rule "majority" only).
    """
    if rule not in ("drop_conflicting", "majority"):
        raise DataError(f"'rule' must be 'drop_conflicting' or 'majority', got {rule!r}")
    groups = _groups_by_hash(dataset.hashes)  # type: ignore[arg-type]
    keep: list[int] = []
    new_labels: dict[int, int] = {}
    n_conflicts = n_conflict_files = n_dropped = n_relabelled = 0
    for idx in groups.values():
        labs = dataset.labels[idx].tolist()
        counts = Counter(labs)
        if len(counts) == 1:
            keep.append(idx[0])
            continue
        n_conflicts += 1
        n_conflict_files += len(idx)
        if rule == "drop_conflicting":
            n_dropped += 1
            continue
        (top, n_top), (_, n_second) = counts.most_common(2)
        if n_top == n_second:
            n_dropped += 1
            continue
        first = next(i for i, lab in zip(idx, labs) if lab == top)
        keep.append(first)
        new_labels[first] = top
        n_relabelled += 1
    keep.sort()
    out = dataset.subset(keep)
    for pos, i in enumerate(keep):
        if i in new_labels:
            out.labels[pos] = new_labels[i]
    out.report.update(
        {
            "rule": rule,
            "n_before": len(dataset),
            "n_after": len(out),
            "distinct_images": len(groups),
            "duplicate_copies_removed": len(dataset) - len(groups),
            "conflicting_images": n_conflicts,
            "conflicting_files": n_conflict_files,
            "conflicts_dropped": n_dropped,
            "conflicts_relabelled": n_relabelled,
        }
    )
    return out


# --------------------------------------------------------------------------------------
# leakage-free stratified split
# --------------------------------------------------------------------------------------
def _largest_remainder(n: int, fractions: np.ndarray) -> np.ndarray:
    raw = n * fractions
    base = np.floor(raw).astype(np.int64)
    rest = n - int(base.sum())
    if rest > 0:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[:rest]] += 1
    return base


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Split indices into train/val/test, stratified by label and leakage-free by group.

    All members of a group (e.g. the same content hash: exact copies of one image) land in the
    same part, so no image is in two parts.  Within each class the parts get
    ``fractions * n_class`` samples rounded by largest remainder; with singleton groups this
    is exact (each part within 1 of ``fraction * n_class``), larger groups are placed first
    (largest first, random among equal sizes) where the remaining shortfall is largest, so the
    proportions stay close.  A group whose members have different labels (a label conflict:
    resolve those first) is stratified under its most common label.

    Args:
        labels: ``(N,)`` class labels.
        groups: ``(N,)`` group keys (e.g. ``dataset.hashes``); ``None``: every index alone.
        fractions: 3 fractions (train, val, test) or 2 (train, test), non-negative, sum 1.
        seed: the same seed and inputs give the same split.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}`` (or train/test), sorted int64 arrays.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(f"'labels' must be one-dimensional, got shape {labels.shape}")
    n = len(labels)
    if groups is None:
        group_keys: list = list(range(n))
    else:
        group_keys = list(groups)
        if len(group_keys) != n:
            raise DataError(f"'groups' has {len(group_keys)} entries but 'labels' has {n}")
    fr = np.asarray(list(fractions), dtype=np.float64)
    if fr.ndim != 1 or len(fr) not in (2, 3) or np.any(~np.isfinite(fr)) or np.any(fr < 0) or abs(fr.sum() - 1) > 1e-6:
        raise DataError(f"'fractions' must be 2 or 3 non-negative numbers summing to 1, got {tuple(fractions)}")
    fr = fr / fr.sum()
    names = SPLIT_NAMES if len(fr) == 3 else ("train", "test")
    rng = np.random.default_rng(seed)

    members = _groups_by_hash(group_keys)
    # stratum of each group: its most common label (ties: smallest label)
    by_class: dict = defaultdict(list)
    for key, idx in members.items():
        counts = Counter(labels[idx].tolist())
        best = max(counts.values())
        stratum = min(lab for lab, c in counts.items() if c == best)
        by_class[stratum].append(idx)

    parts: list[list[int]] = [[] for _ in names]
    for stratum in sorted(by_class):
        glist = by_class[stratum]
        n_cls = sum(len(g) for g in glist)
        target = _largest_remainder(n_cls, fr)
        filled = np.zeros(len(fr), dtype=np.int64)
        perm = rng.permutation(len(glist))
        sizes = np.array([len(glist[i]) for i in perm])
        order = perm[np.argsort(-sizes, kind="stable")]
        for gi in order:
            g = glist[gi]
            deficit = target - filled
            k = int(np.argmax(deficit))  # first part with the largest shortfall
            parts[k].extend(g)
            filled[k] += len(g)
    return {name: np.sort(np.asarray(p, dtype=np.int64)) for name, p in zip(names, parts)}


def split_dataset(
    dataset: ImageDataset, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, ImageDataset]]:
    """:func:`stratified_split` grouped by content hash; returns ``(indices, datasets)``."""
    split = stratified_split(dataset.labels, dataset.hashes, fractions=fractions, seed=seed)
    parts = {k: dataset.subset(v, name=f"{dataset.name}:{k}") for k, v in split.items()}
    return split, parts


def split_table(dataset: ImageDataset, split: dict[str, np.ndarray]) -> pd.DataFrame:
    """Images per class and part, laid out like the paper's Table I.

    Rows: the class names, then ``Total``; columns ``Training``, ``Validation``, ``Testing``
    (those present in ``split``).
    """
    unknown = set(split) - set(_TABLE_COLUMNS)
    if unknown:
        raise DataError(f"'split' has unknown parts {sorted(unknown)}; expected {list(_TABLE_COLUMNS)}")
    data = {}
    for part, column in _TABLE_COLUMNS.items():
        if part not in split:
            continue
        idx = np.asarray(split[part], dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(dataset)):
            raise DataError(f"'split[{part!r}]' holds indices outside [0, {len(dataset) - 1}]")
        data[column] = np.bincount(dataset.labels[idx], minlength=len(dataset.class_names)).astype(np.int64)
    table = pd.DataFrame(data, index=pd.Index(list(dataset.class_names), name="Class"))
    table.loc["Total"] = table.sum(axis=0)
    return table.astype(np.int64)
