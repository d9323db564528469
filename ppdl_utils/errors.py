"""Exceptions raised by ppdl_utils: each names the offending input, never a bare traceback."""
from __future__ import annotations

import os


class PPDLError(Exception):
    """Base class of every error this package raises on purpose."""


class PlaintextRangeError(PPDLError, ValueError):
    """A plaintext is outside the range the scheme or key can encrypt exactly."""


class ImageFormatError(PPDLError, ValueError):
    """An image array has the wrong dtype, shape or pixel values."""


class WrongKeyError(PPDLError, ValueError):
    """A ciphertext is used with a key it was not produced under."""


class CiphertextError(PPDLError, ValueError):
    """A ciphertext is malformed or was tampered with."""


class NoiseBudgetError(PPDLError, ArithmeticError):
    """A lattice ciphertext operation would exceed the noise that still decrypts correctly."""


class DataError(PPDLError, ValueError):
    """A dataset path, layout or file cannot be used; the message names the path."""


def as_path(value: object, parameter: str, error: type = DataError) -> "os.PathLike[str]":
    """`value` as a Path; anything that is not a path (None, a number) is `error` naming `parameter`."""
    from pathlib import Path

    if isinstance(value, (str, os.PathLike)) and str(value):
        return Path(value)
    raise error(f"{parameter} must be a file or folder path, got {value!r:.60}")


class AuditError(PPDLError, ValueError):
    """An encryption under audit cannot be measured: the callable raises, changes the shape or dtype,
    or a folder of plain and encrypted images does not pair up.  The message names the culprit."""
