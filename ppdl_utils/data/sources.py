"""One entry point for the notebooks' images: a real folder when given, else the embedded
synthetic default (so that every notebook runs offline)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ppdl_utils.data.dataset import ImageDataset
from ppdl_utils.data.loaders import load_image_folder, load_medmnist_npz
from ppdl_utils.data.synthetic import make_chest_xray_like
from ppdl_utils.errors import DataError

#: Images per class of the embedded synthetic default when the caller does not say: enough for a
#: small CNN to show the study's finding (bench/check_synthetic_default.py, 64 px).
SYNTHETIC_PER_CLASS = 250


def load_chest_images(data_dir: "str | Path | None", size: int, n_per_class: int | None,
                      seed: int = 0, classes: list[str] | None = None) -> ImageDataset:
    """Class-per-folder images from `data_dir` (e.g. the Kaggle COVID-19 Radiography Database), a
    MedMNIST ``.npz`` file (its official train/val/test parts pooled, for the notebooks' own
    leakage-free split; `n_per_class` a seeded subset per class), or synthetic chest-X-ray-like
    images when `data_dir` is None/empty (`n_per_class` None: :data:`SYNTHETIC_PER_CLASS`; 64 px is
    the size it was checked at)."""
    if not data_dir:
        return make_chest_xray_like(n_per_class=n_per_class or SYNTHETIC_PER_CLASS, size=size, seed=seed,
                                    **({"classes": classes} if classes else {}))
    path = Path(data_dir)
    if path.suffix == ".npz":
        return _medmnist_images(path, size, n_per_class, seed, classes)
    if not path.is_dir():
        raise DataError(f"data_dir {data_dir} is not a folder (expected one sub-folder per class) "
                        "nor a MedMNIST .npz file")
    return load_image_folder(data_dir, size=size, classes=classes, max_per_class=n_per_class, seed=seed)


#: Class names of the MedMNIST files the kit is used with (the .npz holds label numbers only).
MEDMNIST_CLASS_NAMES = {"pneumoniamnist": ["normal", "pneumonia"]}


def _medmnist_images(path: Path, size: int, n_per_class: int | None, seed: int,
                     classes: list[str] | None) -> ImageDataset:
    """Every official part of a MedMNIST file in one dataset (named after the file)."""
    if classes:
        raise DataError(f"'classes' selects class folders; {path} is a MedMNIST file (leave classes=None)")
    if not path.is_file():
        raise DataError(f"data_dir {path} does not exist (expected a MedMNIST .npz file)")
    data = load_medmnist_npz(path, split="all", size=size, class_names=MEDMNIST_CLASS_NAMES.get(path.stem))
    data.name = path.stem
    if n_per_class is None:
        return data
    rng = np.random.default_rng(seed)
    keep = [np.sort(rng.choice(np.flatnonzero(data.labels == c), size=min(n_per_class, int((data.labels == c).sum())),
                               replace=False)) for c in range(len(data.class_names))]
    return data.subset(np.sort(np.concatenate(keep)))


def one_per_class(dataset: ImageDataset) -> tuple[np.ndarray, list[str]]:
    """The first image of every class, in class order (for the paper's Fig. 3 grid)."""
    picks = [int(np.flatnonzero(dataset.labels == label)[0]) for label in range(len(dataset.class_names))
             if (dataset.labels == label).any()]
    return dataset.images[picks], [dataset.class_names[dataset.labels[i]] for i in picks]


def source_label(dataset: ImageDataset) -> str:
    """The caption every figure carries: SYNTHETIC data, or the real dataset's name."""
    return "SYNTHETIC data (embedded default)" if dataset.source == "synthetic" else f"data: {dataset.name}"
