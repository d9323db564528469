"""Security levels of the project's parameters, in one place, the error for weak parameters, and
the conversion of user input to arrays that every scheme shares.

The table is NIST SP 800-57 Part 1 Rev. 5, Table 2 (security strength of an integer-factorization
modulus).  Paillier's n and RSA's N are both factoring moduli, so both schemes use it.
"""
from __future__ import annotations

import numpy as np

from ppdl_utils.errors import PPDLError

# (modulus bits at least, classical security strength in bits), strongest first
NIST_IFC_STRENGTH = ((15360, 256), (7680, 192), (3072, 128), (2048, 112), (1024, 80))

#: Short exponents shorter than this are refused even for toy keys: a k-bit exponent falls to a
#: baby-step giant-step search in about 2^(k/2) steps, and 2^80 is the weakest level NIST lists.
MIN_SHORT_EXPONENT_BITS = 160


class ParameterError(PPDLError, ValueError):
    """An encryption parameter is malformed or would weaken the scheme; the message names it."""


def security_bits(modulus_bits: int) -> int:
    """Classical security strength (bits) of an n of this size; 0 means a toy key (teaching only)."""
    for bits, strength in NIST_IFC_STRENGTH:
        if modulus_bits >= bits:
            return strength
    return 0


def security_label(modulus_bits: int) -> str:
    """Human label of a modulus size: strength, and whether it is acceptable today."""
    strength = security_bits(modulus_bits)
    if strength == 0:
        return f"{modulus_bits}-bit n: toy key, no security (teaching only)"
    if strength < 112:
        return f"{modulus_bits}-bit n: ~{strength}-bit security, deprecated (NIST disallows < 112)"
    return f"{modulus_bits}-bit n: ~{strength}-bit classical security, not post-quantum"


def min_short_exponent_bits(modulus_bits: int) -> int:
    """Shortest exponent the short-exponent encryption accepts: twice the key's security level
    (a k-bit exponent gives at most k/2 bits of security), and never below 160 bits."""
    return max(MIN_SHORT_EXPONENT_BITS, 2 * security_bits(modulus_bits))


def as_array(values: object) -> np.ndarray:
    """`values` as an ndarray without numpy's silent conversions: Python lists and tuples become
    object arrays, because ``np.asarray([-1, 2**63])`` is float64 and ``np.asarray([True, 2])``
    int64.  Callers then check every element's type.  Ragged input raises ValueError."""
    if isinstance(values, (list, tuple)):
        return np.asarray(values, dtype=object)
    return np.asarray(values)
