"""One entry point for the notebooks' images: a real folder when given, else the embedded
synthetic default (so that every notebook runs offline)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ppdl_utils.data.dataset import ImageDataset
from ppdl_utils.data.loaders import load_image_folder
from ppdl_utils.data.synthetic import make_chest_xray_like
from ppdl_utils.errors import DataError

#: Images per class of the embedded synthetic default when the caller does not say: enough for a
#: small CNN to show the study's finding (bench/check_synthetic_default.py, 64 px).
SYNTHETIC_PER_CLASS = 250


def load_chest_images(data_dir: "str | Path | None", size: int, n_per_class: int | None,
                      seed: int = 0, classes: list[str] | None = None) -> ImageDataset:
    """Class-per-folder images from `data_dir` (e.g. the Kaggle COVID-19 Radiography Database),
    or synthetic chest-X-ray-like images when `data_dir` is None/empty (`n_per_class` None:
    :data:`SYNTHETIC_PER_CLASS`; 64 px is the size it was checked at)."""
    if not data_dir:
        return make_chest_xray_like(n_per_class=n_per_class or SYNTHETIC_PER_CLASS, size=size, seed=seed,
                                    **({"classes": classes} if classes else {}))
    if not Path(data_dir).is_dir():
        raise DataError(f"data_dir {data_dir} is not a folder (expected one sub-folder per class)")
    return load_image_folder(data_dir, size=size, classes=classes, max_per_class=n_per_class, seed=seed)


def one_per_class(dataset: ImageDataset) -> tuple[np.ndarray, list[str]]:
    """The first image of every class, in class order (for the paper's Fig. 3 grid)."""
    picks = [int(np.flatnonzero(dataset.labels == label)[0]) for label in range(len(dataset.class_names))
             if (dataset.labels == label).any()]
    return dataset.images[picks], [dataset.class_names[dataset.labels[i]] for i in picks]


def source_label(dataset: ImageDataset) -> str:
    """The caption every figure carries: SYNTHETIC data, or the real dataset's name."""
    return "SYNTHETIC data (embedded default)" if dataset.source == "synthetic" else f"data: {dataset.name}"
