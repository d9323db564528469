"""Argument checks shared by the data modules (one definition each, so messages stay alike)."""
from __future__ import annotations

import numpy as np

from ppdl_utils.errors import DataError

__all__ = ["check_int", "normalise_class_name"]


def check_int(value, param: str, minimum: int = 1, allow_none: bool = False) -> int | None:
    """``value`` as an ``int >= minimum`` (``None`` passes through when ``allow_none``).

    Booleans are refused although they are ints: ``size=True`` is a mistake, not ``size=1``.

    Raises:
        DataError: naming ``param`` and the value given.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise DataError(f"'{param}' must be {wanted}{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def normalise_class_name(name: str) -> str:
    """Lower-case alphanumerics only: ``"Viral Pneumonia"``, ``"viral_pneumonia"`` and
    ``"Viral-Pneumonia"`` all give ``"viralpneumonia"`` (the datasets spell classes each way)."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())
