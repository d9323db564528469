"""Textbook RSA on integer arrays: c = m^e mod N, multiplicatively homomorphic.

Textbook RSA is **deterministic by nature**: there is no randomness anywhere, so equal
plaintexts always give equal ciphertexts and anyone holding the public key can test
a guess m' by computing m'^e mod N.  Applied to 8-bit pixels it is a public
256-entry substitution: encrypting the values 0..255 once inverts every image.  It is
therefore NOT semantically secure, whatever the key size; the key size only protects
the factorisation of N.  (RSA-OAEP adds randomness and is secure, but destroys the
homomorphism.)  Only ``Regime.FIXED_R`` (alias "deterministic") is accepted.

Homomorphism: E(a) * E(b) mod N = E(a * b mod N).  Hence textbook RSA is **malleable**: anyone
with the public key turns E(m) into a valid E(k * m mod N), undetectably.  ``to_bytes``/
``from_bytes`` carry the key fingerprint, not integrity; ``crypto.bundle`` adds an HMAC.
Fixed points: 0^e = 0, 1^e = 1 and (N-1)^e = N-1 (e is odd), so those plaintexts are
"encrypted" to themselves.

Key generation uses ``cryptography`` (OpenSSL) with e = 65537.  Security of the key
(NIST SP 800-57 Part 1 Rev. 5, Table 2): 1024 bits -> 80 bits (disallowed),
2048 -> 112, 3072 -> 128, 7680 -> 192, 15360 -> 256.
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Union

import gmpy2
import numpy as np
from cryptography.hazmat.primitives.asymmetric import rsa

from ppdl_utils import secret_scan
from ppdl_utils.crypto import serialization
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.crypto.security import (
    ParameterError,
    as_array,
    security_bits,  # NIST SP 800-57 table: RSA's N is a factoring modulus
)
from ppdl_utils.errors import CiphertextError, PlaintextRangeError, WrongKeyError

__all__ = [
    "RSAPublicKey",
    "RSAPrivateKey",
    "keygen",
    "security_bits",
    "encrypt",
    "decrypt",
    "multiply",
    "ciphertext_nbytes",
    "to_bytes",
    "from_bytes",
    "DEFAULT_KEY_SIZE",
    "MIN_KEY_SIZE",
]

DEFAULT_KEY_SIZE = 2048
MIN_KEY_SIZE = 1024
PUBLIC_EXPONENT = 65537
IntArrayLike = Union[int, np.integer, np.ndarray, list, tuple]


@dataclass(frozen=True)
class RSAPublicKey:
    """Public modulus N and exponent e, as Python ints."""

    n: int
    e: int

    @property
    def key_size(self) -> int:
        return self.n.bit_length()

    @property
    def security_bits(self) -> int:
        """Security of the key (factoring N), not of textbook encryption, which is deterministic."""
        return security_bits(self.key_size)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.n:x}:{self.e:x}".encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """Short public identifier of (N, e); safe to print."""
        return self.sha256[:16]


@dataclass(frozen=True)
class RSAPrivateKey:
    """Full RSA key as Python ints; the CRT values speed up decryption."""

    n: int
    e: int
    d: int = field(repr=False)
    p: int = field(repr=False)
    q: int = field(repr=False)
    dp: int = field(repr=False)
    dq: int = field(repr=False)
    qinv: int = field(repr=False)

    @property
    def public(self) -> RSAPublicKey:
        return RSAPublicKey(self.n, self.e)

    @property
    def key_size(self) -> int:
        return self.n.bit_length()

    @property
    def security_bits(self) -> int:
        return security_bits(self.key_size)


def keygen(key_size: int = DEFAULT_KEY_SIZE) -> RSAPrivateKey:
    """Generate an RSA key with e = 65537; ValueError below 1024 bits, a warning below 2048."""
    if not isinstance(key_size, int) or key_size < MIN_KEY_SIZE:
        raise ParameterError(f"RSA key_size must be an int >= {MIN_KEY_SIZE} bits, got {key_size!r}")
    if key_size < 2048:
        warnings.warn(
            f"RSA key_size {key_size} is below 2048 bits, i.e. below the 112-bit security level "
            f"(about {security_bits(key_size)} bits); use it only for quick experiments",
            UserWarning,
            stacklevel=2,
        )
    priv = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=key_size)
    nums = priv.private_numbers()
    pub = nums.public_numbers
    key = RSAPrivateKey(pub.n, pub.e, nums.d, nums.p, nums.q, nums.dmp1, nums.dmq1, nums.iqmp)
    for name in ("d", "p", "q", "dp", "dq", "qinv"):
        secret_scan.register_secret("rsa", name, key.public.fingerprint, getattr(key, name))
    return key


# --------------------------------------------------------------------------- helpers
def _check_regime(regime: "Regime | str") -> Regime:
    if isinstance(regime, str) and not isinstance(regime, Regime) and regime.lower() == "deterministic":
        return Regime.FIXED_R
    r = Regime.parse(regime)
    if r is Regime.RANDOMIZED:
        raise ParameterError(
            "textbook RSA has no randomness, so regime 'randomized' is impossible; "
            "RSA-OAEP would be randomized but is not homomorphic. Use Regime.FIXED_R ('deterministic')"
        )
    if r is not Regime.FIXED_R:
        raise ParameterError(
            f"textbook RSA does not support regime {r.value!r}; it is deterministic: "
            "use Regime.FIXED_R ('deterministic')"
        )
    return r


def _is_int(v: object) -> bool:
    return isinstance(v, (int, np.integer, type(gmpy2.mpz(0)))) and not isinstance(v, (bool, np.bool_))


def _plaintexts(pub: RSAPublicKey, m: IntArrayLike) -> np.ndarray:
    """Validate plaintexts: integers in [0, N)."""
    try:
        arr = as_array(m)
    except (ValueError, TypeError, OverflowError) as exc:
        raise PlaintextRangeError(f"RSA plaintexts are not an array of integers: {exc}") from None
    if arr.dtype == object:
        if not all(_is_int(v) for v in arr.flat):
            raise PlaintextRangeError("RSA plaintexts must be integers in [0, N); got non-integer objects")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise PlaintextRangeError(f"RSA plaintexts must be integers in [0, N); got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= pub.n:
            raise PlaintextRangeError(
                f"RSA plaintexts must lie in [0, N) with N of {pub.key_size} bits; got values in [{lo}, {hi}]"
            )
    return arr


def _ciphertexts(n: int, c: IntArrayLike, what: str = "ciphertext") -> np.ndarray:
    """Validate ciphertexts: integers in [0, N); returned as an object array of Python ints."""
    try:
        arr = as_array(c)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CiphertextError(f"RSA {what} is not an array of integers: {exc}") from None
    if arr.dtype != object and not np.issubdtype(arr.dtype, np.integer):
        raise CiphertextError(f"RSA {what} must be integers in [0, N); got dtype {arr.dtype}")
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(arr.flat):
        if not _is_int(v):
            raise CiphertextError(f"RSA {what} must be integers in [0, N); got {type(v).__name__}")
        v = int(v)
        if not 0 <= v < n:
            raise CiphertextError(f"RSA {what} value out of range [0, N): not a ciphertext under this key")
        flat[i] = v
    return out


@lru_cache(maxsize=8)
def _byte_table(n: int, e: int) -> tuple[int, ...]:
    """E(0..255) for one public key: uint8 inputs are encrypted by table lookup."""
    return tuple(int(gmpy2.powmod(v, e, n)) for v in range(256))


def _map_unique(arr: np.ndarray, fn: Callable[[int], int]) -> np.ndarray:
    """Apply ``fn`` once per distinct value of ``arr`` (valid since the map is deterministic)."""
    out = np.empty(arr.shape, dtype=object)
    if arr.size == 0:
        return out
    values, inverse = np.unique(arr.reshape(-1), return_inverse=True)
    images = np.empty(len(values), dtype=object)
    images[:] = [fn(int(v)) for v in values]
    out.reshape(-1)[:] = images[inverse.reshape(-1)]
    return out


# --------------------------------------------------------------------------- scheme
def encrypt(pub: RSAPublicKey, m: IntArrayLike, regime: "Regime | str" = Regime.FIXED_R) -> np.ndarray:
    """c = m^e mod N elementwise; returns an object array of Python ints, shape of ``m``."""
    _check_regime(regime)
    arr = _plaintexts(pub, m)
    if arr.dtype == np.uint8:
        table = np.empty(256, dtype=object)
        table[:] = _byte_table(pub.n, pub.e)
        return np.asarray(table[arr], dtype=object)
    return _map_unique(arr, lambda v: int(gmpy2.powmod(v, pub.e, pub.n)))


def _decrypt_one(priv: RSAPrivateKey, c: int) -> int:
    """CRT decryption: m = m_q + q * (qinv * (m_p - m_q) mod p)."""
    mp = gmpy2.powmod(c, priv.dp, priv.p)
    mq = gmpy2.powmod(c, priv.dq, priv.q)
    return int(mq + priv.q * ((priv.qinv * (mp - mq)) % priv.p))


def decrypt(priv: RSAPrivateKey, c: IntArrayLike, dtype: "type | np.dtype" = np.int64) -> np.ndarray:
    """m = c^d mod N elementwise, as an int64 array (``dtype=object`` for plaintexts >= 2^63)."""
    arr = _ciphertexts(priv.n, c)
    plain = _map_unique(arr, lambda v: _decrypt_one(priv, v))
    if np.dtype(dtype) == object:
        return plain
    info = np.iinfo(dtype)
    if plain.size and (min(plain.flat) < info.min or max(plain.flat) > info.max):
        raise PlaintextRangeError(
            f"decrypted values do not fit {np.dtype(dtype)} (e.g. a product grew past it); "
            "call decrypt(..., dtype=object) for Python ints"
        )
    return plain.astype(dtype)


def multiply(pub: RSAPublicKey, c1: IntArrayLike, c2: IntArrayLike) -> np.ndarray:
    """E(a) * E(b) mod N = E(a * b mod N), elementwise with broadcasting."""
    x = _ciphertexts(pub.n, c1, "first ciphertext")
    y = _ciphertexts(pub.n, c2, "second ciphertext")
    return np.asarray((x * y) % pub.n, dtype=object)


def ciphertext_nbytes(pub: RSAPublicKey) -> int:
    """Bytes of one ciphertext: ceil(bits(N) / 8), 256 for a 2048-bit key."""
    return (pub.n.bit_length() + 7) // 8


CT_MAGIC = b"PPDL-RSA-CIPHERTEXT\n"
CT_FORMAT = "ppdl-rsa-ciphertext-v1"


def to_bytes(pub: RSAPublicKey, c: IntArrayLike) -> bytes:
    """Header (key fingerprint, shape) then fixed-width big-endian ciphertexts.  No integrity."""
    arr = _ciphertexts(pub.n, c)
    width = ciphertext_nbytes(pub)
    header = {"format": CT_FORMAT, "key_sha256": pub.sha256, "key_fingerprint": pub.fingerprint,
              "regime": Regime.FIXED_R.value, "shape": list(arr.shape), "width": width}
    return serialization.pack(CT_MAGIC, header, serialization.pack_big_ints(arr.flat, width))


def from_bytes(data: bytes, pub: RSAPublicKey) -> np.ndarray:
    """Load what ``to_bytes`` wrote: WrongKeyError under another key, CiphertextError if malformed."""
    what = "serialized RSA ciphertext"
    header, body = serialization.unpack(data, CT_MAGIC, what)
    if serialization.field(header, "format", str, what) != CT_FORMAT:
        raise CiphertextError(f"{what} has format {header['format']!r}, expected {CT_FORMAT!r}")
    if serialization.field(header, "key_sha256", str, what) != pub.sha256:
        raise WrongKeyError(f"{what} was written under key {header.get('key_fingerprint')!r:.20}, "
                            f"not under the given key {pub.fingerprint}")
    return _ciphertexts(pub.n, serialization.unpack_big_ints(header, body, ciphertext_nbytes(pub), what))
