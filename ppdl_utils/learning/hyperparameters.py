"""Checks of training settings shared by every training loop (Keras and encrypted): a negative
epoch count, a NaN learning rate or labels outside the classes are errors naming the setting,
never a run that "trains" nothing or diverges silently."""
from __future__ import annotations

import math

import numpy as np

from ppdl_utils.errors import PPDLError


class TrainingParameterError(PPDLError, ValueError):
    """A training setting (epochs, learning rate, labels, ...) is malformed; the message names it."""


def check_epochs(epochs: object, name: str = "epochs", minimum: int = 1) -> int:
    """`epochs` as an int >= `minimum` (bools, floats and strings refused)."""
    if isinstance(epochs, (bool, np.bool_)) or not isinstance(epochs, (int, np.integer)) or epochs < minimum:
        raise TrainingParameterError(f"{name}={epochs!r:.40} must be an integer >= {minimum}")
    return int(epochs)


def check_rate(value: object, name: str = "lr", allow_zero: bool = False, maximum: float = 1e3) -> float:
    """A finite float in (0, maximum] ([0, maximum] with `allow_zero`): learning rates, L2 factors."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TrainingParameterError(f"{name}={value!r:.40} must be a number")
    value = float(value)
    low_ok = value >= 0 if allow_zero else value > 0
    if not math.isfinite(value) or not low_ok or value > maximum:
        bound = "[0" if allow_zero else "(0"
        raise TrainingParameterError(f"{name}={value!r} must be finite and in {bound}, {maximum:g}]")
    return value


#: More classes than this is taken for a corrupt label (a label of 7,000,000 would make 7,000,001 heads).
MAX_CLASSES = 1000


def check_class_labels(labels: object, name: str = "labels", n_classes: int | None = None,
                       max_classes: int = MAX_CLASSES) -> np.ndarray:
    """Integer labels 0..k-1 (int64), at least two classes present unless `n_classes` is given, and at
    most `max_classes` classes."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise TrainingParameterError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TrainingParameterError(f"{name} must be integer class indices, got dtype {arr.dtype}")
    low, high = int(arr.min()), int(arr.max())
    limit = n_classes if n_classes is not None else min(high + 1, max_classes)
    if low < 0 or high >= limit:
        raise TrainingParameterError(f"{name} must be class indices in 0..{limit - 1}, found {low}..{high}")
    if n_classes is None and limit < 2:
        raise TrainingParameterError(f"{name} hold a single class ({high}); a classifier needs at least two")
    return arr.astype(np.int64)
