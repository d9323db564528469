"""The framing every serialized ciphertext shares: magic, header length, JSON header, body.

    magic | uint32 big-endian header length | header (UTF-8 JSON object) | body

The header names the key (fingerprint), regime and shape, so a file loaded under another key is
a ``WrongKeyError`` and a truncated or padded one a ``CiphertextError``.  Framing is *not*
integrity: anyone can rewrite a frame.  ``crypto.bundle`` adds an HMAC over the whole frame.
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any, Iterable

import numpy as np

from ppdl_utils.errors import CiphertextError

MAX_HEADER_BYTES = 1 << 16


def pack(magic: bytes, header: dict[str, Any], body: bytes) -> bytes:
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return magic + struct.pack(">I", len(raw)) + raw + body


def as_bytes(data: object, what: str) -> bytes:
    """bytes / bytearray / memoryview as bytes; anything else is a CiphertextError naming `what`."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    kind = type(data).__name__
    hint = (" (raw ciphertext arrays, the old to_bytes() format, carry no key fingerprint: "
            "serialize again with to_bytes())" if kind == "ndarray" else "")
    raise CiphertextError(f"{what} must be bytes, got {kind}{hint}")


def unpack(data: object, magic: bytes, what: str) -> tuple[dict[str, Any], bytes]:
    """(header, body) of a frame; CiphertextError naming `what` and the defect otherwise."""
    blob = as_bytes(data, what)
    if not blob.startswith(magic):
        raise CiphertextError(f"{what} does not start with {magic!r}: not this kind of serialized ciphertext")
    start = len(magic) + 4
    if len(blob) < start:
        raise CiphertextError(f"{what} is truncated inside its header length")
    (size,) = struct.unpack(">I", blob[len(magic):start])
    if size > MAX_HEADER_BYTES or len(blob) < start + size:
        raise CiphertextError(f"{what} header length {size} is impossible for {len(blob)} bytes (truncated?)")
    try:
        header = json.loads(blob[start:start + size].decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise CiphertextError(f"{what} header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise CiphertextError(f"{what} header is a JSON {type(header).__name__}, expected an object")
    return header, blob[start + size:]


def field(header: dict[str, Any], name: str, kind: type, what: str) -> Any:
    """header[name], required to be of `kind` (bools are not ints); CiphertextError naming it."""
    if name not in header:
        raise CiphertextError(f"{what} header has no field {name!r}")
    value = header[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CiphertextError(f"{what} header field {name!r} must be {kind.__name__}, got {value!r:.60}")
    return value


def shape_field(header: dict[str, Any], what: str, max_items: int = 1 << 28) -> tuple[int, ...]:
    """header['shape'] as a tuple of non-negative ints with a sane number of entries."""
    shape = field(header, "shape", list, what)
    if len(shape) > 32 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise CiphertextError(f"{what} header field 'shape' must be a list of non-negative ints, got {shape!r:.60}")
    count = 1
    for d in shape:
        count *= d
    if count > max_items:
        raise CiphertextError(f"{what} header field 'shape' {shape} holds more than {max_items} entries")
    return tuple(shape)


def pack_big_ints(values: Iterable[int], width: int) -> bytes:
    """Fixed-width big-endian body of big-integer ciphertexts (Paillier, RSA)."""
    return b"".join(int(v).to_bytes(width, "big") for v in values)


def unpack_big_ints(header: dict[str, Any], body: bytes, width: int, what: str) -> np.ndarray:
    """The object array of ints that :func:`pack_big_ints` wrote, shaped as ``header['shape']``;
    CiphertextError when the header's width or the body's length does not match (truncated, padded)."""
    shape = shape_field(header, what)
    if field(header, "width", int, what) != width:
        raise CiphertextError(f"{what} header field 'width' is {header['width']}, expected {width}")
    count = math.prod(shape)
    if len(body) != count * width:
        raise CiphertextError(f"{what} body has {len(body)} bytes, shape {list(shape)} needs {count * width}"
                              " (truncated or padded)")
    values = np.empty(count, dtype=object)
    values[:] = [int.from_bytes(body[i * width:(i + 1) * width], "big") for i in range(count)]
    return values.reshape(shape)
