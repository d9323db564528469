"""What every attack returns (:class:`AttackResult`) and the input checks they share.

Every attack is a pure function of *public* values (ciphertexts, the public key, at most one
known pixel or one known image pair, a public reference histogram); none touches a private key.
``success`` is computed from the public data: when the input was not produced by the regime an
attack targets (above all the semantically secure ``randomized`` regime) the attack says so
instead of returning a silently wrong image.
"""
from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gmpy2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from ppdl_utils.errors import CiphertextError, ImageFormatError

_MPZ = type(gmpy2.mpz(0))


@dataclass
class AttackResult:
    """Outcome of one attack.

    ``coverage`` is the fraction of pixels the attack could decrypt (table
    look-ups) or found consistent with the targeted regime (algebraic attacks).
    ``success`` is decided from the public data only, never from the true image.
    ``table`` is the learned symbol -> gray-level map where there is one;
    ``alternative`` another plausible reconstruction (the reversed gray-level
    orientation of the ciphertext-only attack).
    """

    image: NDArray[np.uint8]
    success: bool
    coverage: float
    seconds: float
    notes: str = ""
    name: str = ""
    table: dict[Any, int] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    alternative: NDArray[np.uint8] | None = None

    def __repr__(self) -> str:  # keep reprs short: no pixel dump
        return (
            f"AttackResult(name={self.name!r}, success={self.success}, coverage={self.coverage:.4f}, "
            f"seconds={self.seconds:.3f}, shape={self.image.shape}, notes={self.notes!r})"
        )


# --------------------------------------------------------------------------- helpers


def positive_int(value: Any, name: str, minimum: int = 2) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, _MPZ)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def as_cipher_ints(cipher: ArrayLike, name: str = "cipher_ints") -> tuple[tuple[int, ...], list[Any]]:
    """Return (shape, flat list of gmpy2.mpz) for an array of non-negative integers."""
    arr = np.asarray(cipher)
    if arr.size == 0:
        raise CiphertextError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind in "iu":
        flat = [gmpy2.mpz(x) for x in arr.ravel().tolist()]
    elif arr.dtype == object:
        flat = []
        for x in arr.ravel().tolist():
            if isinstance(x, bool) or not isinstance(x, (int, np.integer, _MPZ)):
                raise CiphertextError(f"{name} must hold integers, found {type(x).__name__} {x!r}")
            flat.append(gmpy2.mpz(int(x)) if isinstance(x, np.integer) else gmpy2.mpz(x))
    else:
        raise CiphertextError(f"{name} must be an integer or object array of ints, got dtype {arr.dtype}")
    if any(x < 0 for x in flat):
        raise CiphertextError(f"{name} holds negative values; ciphertexts are residues >= 0")
    return arr.shape, flat


def flat_index(known_index: int | Sequence[int], shape: tuple[int, ...]) -> int:
    size = int(np.prod(shape))
    if isinstance(known_index, (int, np.integer)) and not isinstance(known_index, bool):
        idx = int(known_index)
        if not 0 <= idx < size:
            raise IndexError(f"known_index {idx} out of range for {size} pixels")
        return idx
    tup = tuple(int(i) for i in known_index)
    if len(tup) != len(shape) or any(not 0 <= i < s for i, s in zip(tup, shape)):
        raise IndexError(f"known_index {known_index!r} is not a valid index into shape {shape}")
    return int(np.ravel_multi_index(tup, shape))


def check_pixel_value(value: Any, name: str = "known_value", upper: int = 255) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not 0 <= v <= upper:
        raise ValueError(f"{name} must be within 0..{upper}, got {v}")
    return v


def as_symbols(cipher: ArrayLike, name: str) -> tuple[tuple[int, ...], list[Hashable]]:
    """Shape and flat list of hashable pixel symbols (Python ints for numeric dtypes)."""
    arr = np.asarray(cipher)
    if arr.size == 0:
        raise ImageFormatError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind == "f":
        raise ImageFormatError(f"{name} has float dtype {arr.dtype}; ciphertext symbols must be exact values")
    return arr.shape, arr.ravel().tolist()


def check_plain(img: ArrayLike, name: str = "plain_image") -> NDArray[np.int64]:
    arr = np.asarray(img)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ImageFormatError(f"{name} must have an integer dtype (e.g. uint8), got {arr.dtype}")
    if arr.size == 0:
        raise ImageFormatError(f"{name} is empty (shape {arr.shape})")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi > 255:
        raise ImageFormatError(f"{name} has pixel values in [{lo}, {hi}], expected within 0..255")
    return arr.astype(np.int64)


def encode_symbols(flat: list[Hashable]) -> tuple[NDArray[np.int64], list[Hashable]]:
    """Integer codes 0..K-1 for the symbols (first-seen order) and the list of distinct symbols."""
    ids: dict[Hashable, int] = {}
    codes = np.fromiter((ids.setdefault(x, len(ids)) for x in flat), dtype=np.int64, count=len(flat))
    return codes, list(ids)
