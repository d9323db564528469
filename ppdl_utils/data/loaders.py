"""Image loaders: class-per-folder image sets (Kaggle COVID-19 Radiography Database and the like)
and MedMNIST ``.npz`` files, read as uint8 grayscale :class:`ImageDataset` objects.

The dataset container lives in :mod:`ppdl_utils.data.dataset`, duplicate / label-conflict
handling in :mod:`ppdl_utils.data.duplicates`, and splits in :mod:`ppdl_utils.data.splits`.

Problems with the data raise :class:`ppdl_utils.errors.DataError`, whose message names the
path or parameter at fault, before the images are read where that can be known in advance.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ppdl_utils.data.checks import check_int, normalise_class_name
from ppdl_utils.data.dataset import ImageDataset, array_hash
from ppdl_utils.data.duplicates import duplicate_summary
from ppdl_utils.data.splits import SPLIT_NAMES
from ppdl_utils.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "load_medmnist_npz"]

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})

#: Folder names that are never class folders / never hold the images of a class.
_IGNORED_DIRS = frozenset({"masks", "__MACOSX"})

#: Above this many files a progress bar is shown while loading.
_PROGRESS_THRESHOLD = 300


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


# --------------------------------------------------------------------------------------
# class-per-folder loader
# --------------------------------------------------------------------------------------
def _check_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.exists():
        raise DataError(f"dataset root {root} does not exist")
    if not root.is_dir():
        raise DataError(f"dataset root {root} is not a directory")
    return root


def _link_target(path: Path) -> Path | None:
    """The folder a *link file* points to: a small text file holding one relative path, as a
    symlink becomes when a dataset is copied by a tool that does not keep links (the shared
    3-class folder links COVID/ and Normal/ to the 2-class folders this way)."""
    if not path.is_file() or path.suffix.lower() in IMAGE_EXTENSIONS or path.stat().st_size > 1024:
        return None
    try:
        target = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not target or "\n" in target:
        return None
    folder = (path.parent / target).resolve()
    return folder if folder.is_dir() else None


def _class_folders(root: Path) -> list[Path]:
    """Class folders of a dataset root, sorted by name; a link file counts as the folder it names."""
    entries = (p for p in root.iterdir() if not p.name.startswith(".") and p.name not in _IGNORED_DIRS)
    subdirs = sorted((p for p in entries if p.is_dir() or _link_target(p) is not None), key=lambda p: p.name)
    if not subdirs:
        raise DataError(f"no class folders in dataset root {root} (expected one sub-folder per class)")
    return subdirs


def _folder(entry: Path) -> Path:
    """A class entry's folder: itself, or the folder its link file names."""
    return entry if entry.is_dir() else _link_target(entry)


def _choose_classes(root: Path, classes: Sequence[str] | None) -> list[tuple[str, Path]]:
    """(class name, folder) per requested class, in label order; every sub-folder by default.

    A requested name matches a folder exactly or, failing that, ignoring case, spaces, ``_``
    and ``-`` (when exactly one folder matches that way)."""
    subdirs = _class_folders(root)
    if classes is None:
        return [(p.name, _folder(p)) for p in subdirs]
    if isinstance(classes, str):
        classes = [classes]
    if len(set(classes)) != len(classes):
        raise DataError(f"'classes' lists a class twice: {list(classes)}")
    by_name = {p.name: p for p in subdirs}
    chosen = []
    for cls in classes:
        folder = by_name.get(cls)
        if folder is None:
            matches = [p for p in subdirs if normalise_class_name(p.name) == normalise_class_name(cls)]
            folder = matches[0] if len(matches) == 1 else None
        if folder is None:
            raise DataError(
                f"class {cls!r} is listed in 'classes' but {root} has no folder {cls!r} "
                f"(class folders found: {[p.name for p in subdirs]})"
            )
        chosen.append((str(cls), _folder(folder)))
    return chosen


def _check_class_count(root: Path, chosen: list[tuple[str, Path]], requested: bool, min_classes: int) -> None:
    """Refuse fewer than `min_classes` classes now, not after loading (where scikit-learn or the
    training loop would fail much later with a message about arrays, not folders)."""
    if len(chosen) >= min_classes:
        return
    names = [name for name, _ in chosen]
    if requested:
        raise DataError(
            f"'classes' selects {len(chosen)} class(es) {names} under {root}; a classifier needs at "
            f"least {min_classes} (pass min_classes=1 to load a single class on purpose)"
        )
    # <class>/images/ + <class>/masks/ read as a dataset root gives the one "class" 'images'
    hint = " (it looks like one class's folder, not the dataset root)" if names == ["images"] else ""
    raise DataError(
        f"dataset folder {root} holds {len(chosen)} class folder(s) {names}{hint}; a classifier needs at "
        f"least {min_classes}: point at the folder that holds one sub-folder per class, or pass "
        f"min_classes=1 to load a single class on purpose"
    )


def _class_files(folder: Path, report: dict) -> list[Path]:
    """The image files of one class folder in natural order (``<class>/images/`` when present);
    ignored files and folders are counted in `report`."""
    img_dir = folder / "images"
    if not img_dir.is_dir():
        img_dir = folder
    else:
        report["ignored_dirs"].extend(str(p) for p in sorted(folder.iterdir()) if p.is_dir() and p.name != "images")
        report["ignored_files"] += sum(1 for p in folder.iterdir() if p.is_file())
    files = []
    for p in img_dir.iterdir():
        if _is_image_file(p):
            files.append(p)
        elif p.is_dir():
            if img_dir is folder:
                report["ignored_dirs"].append(str(p))
        else:
            report["ignored_files"] += 1
    if not files:
        raise DataError(
            f"class folder {folder} holds no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))} in {img_dir})"
        )
    return sorted(files, key=lambda p: _natural_key(p.name))


def _list_files(chosen: list[tuple[str, Path]], max_per_class: int | None, seed: int,
                report: dict) -> list[list[Path]]:
    """The files to read per class: all, or a seeded random subset of `max_per_class` kept in order."""
    rng = np.random.default_rng(seed)
    file_lists = []
    for cls, folder in chosen:
        files = _class_files(folder, report)
        if max_per_class is not None and len(files) > max_per_class:
            keep = np.sort(rng.choice(len(files), size=max_per_class, replace=False))
            files = [files[i] for i in keep]
        report["files_per_class"][cls] = len(files)
        file_lists.append(files)
    return file_lists


def _read_one(path: Path, size: int | None, skip_corrupt: bool) -> tuple[np.ndarray, str] | None:
    """(gray image, sha256 of the file bytes), or None for an unreadable file when skipping."""
    try:
        data = path.read_bytes()
        return _decode_image(data, size), hashlib.sha256(data).hexdigest()
    except Exception as exc:  # PIL raises many types for bad files
        if skip_corrupt:
            return None
        raise DataError(
            f"cannot read image {path}: {type(exc).__name__}: {exc} (pass skip_corrupt=True to skip unreadable files)"
        ) from exc


class _SameSize:
    """Remembers the first image's size; names two files of different sizes as soon as one appears
    (only needed when images keep their native size)."""

    def __init__(self, root: Path) -> None:
        self.root, self.first = root, None

    def check(self, path: Path, image: np.ndarray) -> None:
        if self.first is None:
            self.first = (path, image.shape)
        elif image.shape != self.first[1]:
            (p0, (h0, w0)), (h1, w1) = self.first, image.shape
            raise DataError(
                f"images under {self.root} have different sizes: {p0} is {w0}x{h0} px but {path} is "
                f"{w1}x{h1} px (width x height); pass size=<int> to resize every image to size x size"
            )


def _read_classes(root: Path, chosen: list[tuple[str, Path]], file_lists: list[list[Path]],
                  size: int | None, skip_corrupt: bool) -> tuple[list, list, list, list, list]:
    """Decode every file: (images, labels, paths, hashes, skipped paths)."""
    from tqdm.auto import tqdm

    images, labels, paths, hashes, skipped = [], [], [], [], []
    same = _SameSize(root) if size is None else None
    total = sum(len(f) for f in file_lists)
    with tqdm(total=total, desc=f"loading {root.name}", unit="img", disable=total <= _PROGRESS_THRESHOLD) as bar:
        for label, ((_, folder), files) in enumerate(zip(chosen, file_lists)):
            n_ok = 0
            for path in files:
                bar.update(1)
                read = _read_one(path, size, skip_corrupt)
                if read is None:
                    skipped.append(str(path))
                    continue
                if same is not None:
                    same.check(path, read[0])
                images.append(read[0])
                hashes.append(read[1])
                labels.append(label)
                paths.append(str(path))
                n_ok += 1
            if n_ok == 0:
                raise DataError(f"class folder {folder} holds no readable images (all {len(files)} skipped as corrupt)")
    return images, labels, paths, hashes, skipped


def load_image_folder(
    root: str | os.PathLike,
    size: int | None = 224,
    classes: Sequence[str] | None = None,
    skip_corrupt: bool = False,
    max_per_class: int | None = None,
    seed: int = 0,
    min_classes: int = 2,
) -> ImageDataset:
    """Load a class-per-folder image set as grayscale ``size x size`` uint8 images.

    Layout: ``root/<class>/*.png`` (also .jpg/.jpeg/.bmp/.tif/.tiff, any case).  When a class
    folder holds an ``images/`` sub-folder (newer COVID-19 Radiography Database releases:
    ``<class>/images/`` beside ``<class>/masks/``), only ``images/`` is read; ``masks/`` and
    files that are not images (``.xlsx`` metadata, READMEs) are ignored and counted in
    ``report``.  Class names may contain spaces (``"Viral Pneumonia"``).  Files are read in
    natural sorted order (``img2`` before ``img10``) within each class.

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
        min_classes: fewer classes than this is an error raised before any image is read
            (a classifier needs 2; pass 1 to load one class on purpose).

    Raises:
        DataError: root missing / not a folder, no class folders, fewer than ``min_classes``
            classes, a requested class missing (named with the folder), a class folder without
            images (named), an unreadable image (named) unless ``skip_corrupt``, two images of
            different native sizes with ``size=None`` (both named with their sizes).
    """
    root = _check_root(root)
    size = check_int(size, "size", allow_none=True)
    max_per_class = check_int(max_per_class, "max_per_class", allow_none=True)
    min_classes = check_int(min_classes, "min_classes")
    chosen = _choose_classes(root, classes)
    _check_class_count(root, chosen, classes is not None, min_classes)

    report: dict = {"root": str(root), "ignored_files": 0, "ignored_dirs": [], "files_per_class": {}}
    file_lists = _list_files(chosen, max_per_class, seed, report)
    images, labels, paths, hashes, skipped = _read_classes(root, chosen, file_lists, size, skip_corrupt)
    report.update(skipped_corrupt=len(skipped), skipped_corrupt_paths=skipped,
                  n_files=sum(len(f) for f in file_lists), n_images=len(images))
    report.update(duplicate_summary(labels, hashes))
    return ImageDataset(images=np.stack(images), labels=np.asarray(labels, dtype=np.int64),
                        class_names=[c for c, _ in chosen], paths=paths, source="folder", name=root.name,
                        report=report, hashes=hashes)


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
    if not len(images):
        return np.zeros((0, size, size), np.uint8)
    resize = lambda im: Image.fromarray(np.ascontiguousarray(im)).resize((size, size), Image.Resampling.BILINEAR)  # noqa: E731
    return np.stack([np.asarray(resize(im)) for im in images])


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise DataError(f"MedMNIST file {path} does not exist")
    if not path.is_file():
        raise DataError(f"MedMNIST path {path} is not a file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise DataError(f"cannot read MedMNIST file {path}: {type(exc).__name__}: {exc}") from exc


def _npz_split(content: dict[str, np.ndarray], s: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 gray images, int64 labels) of one official split, checked."""
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
    return images, labels.astype(np.int64)


#: More classes than this in an .npz without class_names is taken for a corrupt label, not a dataset.
MAX_NPZ_CLASSES = 1000


def _npz_class_names(raw: dict[str, tuple[np.ndarray, np.ndarray]], class_names: Sequence[str] | None,
                     path: Path) -> list[str]:
    n_classes = max((int(lab.max()) + 1 for _, lab in raw.values() if lab.size), default=1)
    if class_names is None:
        if n_classes > MAX_NPZ_CLASSES:
            raise DataError(f"MedMNIST file {path}: a label of {n_classes - 1} would make {n_classes} classes "
                            f"(more than {MAX_NPZ_CLASSES}): a corrupt label? pass class_names to allow it")
        present = set().union(*(set(np.unique(lab).tolist()) for _, lab in raw.values()))
        missing = sorted(set(range(n_classes)) - present)
        if missing:
            raise DataError(f"MedMNIST file {path}: labels skip the class(es) {missing[:5]} of 0..{n_classes - 1}; "
                            "pass class_names to name the classes explicitly")
        return [f"class {i}" for i in range(n_classes)]
    names = [str(c) for c in class_names]
    if len(names) < n_classes:
        raise DataError(f"'class_names' has {len(names)} names but {path} has labels up to {n_classes - 1}")
    return names


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
    size = check_int(size, "size", allow_none=True)
    if split is not None and split not in (*SPLIT_NAMES, "all"):
        raise DataError(f"'split' must be None, 'train', 'val', 'test' or 'all', got {split!r}")
    content = _read_npz(path)
    wanted = [split] if split in SPLIT_NAMES else \
        [s for s in SPLIT_NAMES if f"{s}_images" in content or f"{s}_labels" in content]
    if not wanted:
        raise DataError(f"MedMNIST file {path} has none of the keys train_images/val_images/test_images; "
                        f"keys present: {sorted(content)}")
    raw = {s: _npz_split(content, s, path) for s in wanted}
    names = _npz_class_names(raw, class_names, path)
    # hashes of the native images, so that a split (grouped by hash) does not depend on `size`
    native_hashes = {s: [array_hash(image) for image in im] for s, (im, _) in raw.items()}
    if size is not None:
        raw = {s: (_resize_stack(im, size), lab) for s, (im, lab) in raw.items()}

    def make(s: str, images: np.ndarray, labels: np.ndarray, report: dict, hashes: list[str]) -> ImageDataset:
        ds = ImageDataset(images=images, labels=labels, class_names=names, paths=None,
                          source="medmnist", name=f"{path.stem}:{s}", report=report, hashes=hashes)
        ds.report.update(duplicate_summary(ds.labels, ds.hashes))
        return ds

    if split == "all":
        images = np.concatenate([im for im, _ in raw.values()])
        labels = np.concatenate([lab for _, lab in raw.values()])
        official = np.concatenate([np.full(len(lab), s) for s, (_, lab) in raw.items()]).astype(str)
        hashes = [h for s in raw for h in native_hashes[s]]
        return make("all", images, labels, {"file": str(path), "official_split": official}, hashes)
    datasets = {s: make(s, im, lab, {"file": str(path), "split": s}, native_hashes[s]) for s, (im, lab) in raw.items()}
    return datasets[split] if split in SPLIT_NAMES else datasets
