"""Numpy arrays of Paillier ciphertexts: encrypt, decrypt, and the homomorphic operations.

Paillier is malleable: anyone with the public key can change E(m) into a valid E(m + k) or
E(k * m), and decryption cannot tell.  ``to_bytes``/``from_bytes`` carry the key fingerprint
(loading under another key is a ``WrongKeyError``) but no integrity; ``crypto.bundle`` adds an
HMAC for files and messages that must not be altered.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import gmpy2
import numpy as np

from ppdl_utils.crypto import serialization
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, check_ciphertext, is_integer
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.crypto.security import as_array
from ppdl_utils.errors import CiphertextError, PlaintextRangeError, WrongKeyError

ARRAY_MAGIC = b"PPDL-PAILLIER-ARRAY\n"
ARRAY_FORMAT = "ppdl-paillier-array-v1"


def key_sha256(public: PaillierPublicKey) -> str:
    """Full SHA-256 of n (the fingerprint is its first 16 hex digits): what serialized arrays carry."""
    return hashlib.sha256(public.n_decimal.encode()).hexdigest()


def as_plaintext_ints(values: "np.ndarray | int", public: PaillierPublicKey,
                      name: str = "plaintext", signed: bool = False) -> np.ndarray:
    """Validate integer plaintexts and return them as an object array of Python ints.

    Unsigned plaintexts must lie in [0, n); signed ones in (-n/2, n/2) and are stored mod n.
    """
    try:
        arr = as_array(values)
    except (ValueError, TypeError, OverflowError) as exc:
        raise PlaintextRangeError(f"{name} is not an array of integers: {exc}") from None
    if arr.dtype.kind not in "iuO" or arr.dtype == bool:
        raise PlaintextRangeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.dtype == object and not all(is_integer(v) for v in arr.flat):
        raise PlaintextRangeError(f"{name} must be integers, got non-integer objects (floats are refused)")
    ints = np.vectorize(int, otypes=[object])(arr) if arr.size else arr.astype(object)
    flat = ints.ravel()
    if flat.size:
        lo, hi = min(flat), max(flat)
        bound_lo, bound_hi = ((-(public.n // 2), public.n // 2) if signed else (0, public.n - 1))
        if lo < bound_lo or hi > bound_hi:
            bad = lo if lo < bound_lo else hi
            raise PlaintextRangeError(
                f"{name} value {bad} outside [{bound_lo}, {bound_hi}] for a {public.bits}-bit key")
    return np.vectorize(lambda m: m % public.n, otypes=[object])(ints) if signed and ints.size else ints


class CRTDecryptor:
    """m = CRT(L_p(c^(p-1) mod p^2) * h_p mod p, same mod q): phe's method, on gmpy2."""

    def __init__(self, private: PaillierPrivateKey) -> None:
        p, q = gmpy2.mpz(private.p), gmpy2.mpz(private.q)
        self.p, self.q, self.p2, self.q2 = p, q, p * p, q * q
        g = gmpy2.mpz(private.public.g)
        self.hp = gmpy2.invert((gmpy2.powmod(g, p - 1, self.p2) - 1) // p, p)
        self.hq = gmpy2.invert((gmpy2.powmod(g, q - 1, self.q2) - 1) // q, q)
        self.p_inv_q = gmpy2.invert(p, q)

    def __call__(self, c: int) -> int:
        mp = (gmpy2.powmod(c % self.p2, self.p - 1, self.p2) - 1) // self.p * self.hp % self.p
        mq = (gmpy2.powmod(c % self.q2, self.q - 1, self.q2) - 1) // self.q * self.hq % self.q
        return int(mp + self.p * ((mq - mp) * self.p_inv_q % self.q))




@dataclass
class PaillierArray:
    """An array of ciphertexts under one public key, tagged with the regime that produced it."""

    values: np.ndarray  # object array of Python ints in Z*_{n^2}
    public: PaillierPublicKey
    regime: str = "randomized"

    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    @property
    def nbytes(self) -> int:
        """Serialized size: one fixed-width element of Z*_{n^2} per entry."""
        return int(self.values.size) * self.public.ciphertext_nbytes

    def _same_key(self, other: "PaillierArray") -> None:
        if other.public.n != self.public.n:
            raise WrongKeyError(f"ciphertexts under keys {self.public.fingerprint} and "
                                f"{other.public.fingerprint} cannot be combined")

    def _result(self, values: np.ndarray, regime: str | None = None) -> "PaillierArray":
        return PaillierArray(values, self.public, regime or self.regime)

    def __add__(self, other: "PaillierArray | np.ndarray | int") -> "PaillierArray":
        """E(a) + E(b) -> E(a+b) (ciphertext product); E(a) + b -> E(a+b) (times g^b = 1 + bn)."""
        n, n2 = self.public.n, self.public.n_square
        if isinstance(other, PaillierArray):
            self._same_key(other)
            return self._result(np.frompyfunc(lambda a, b: a * b % n2, 2, 1)(self.values, other.values))
        plain = as_plaintext_ints(other, self.public, "added plaintext", signed=True)
        return self._result(np.frompyfunc(lambda c, m: c * (1 + m * n) % n2, 2, 1)(self.values, plain))

    __radd__ = __add__

    def __mul__(self, k: "np.ndarray | int") -> "PaillierArray":
        """E(a) * k -> E(k*a) by exponentiation; negative k works through the inverse."""
        n2 = self.public.n_square
        scalars = as_plaintext_ints(k, self.public, "scalar", signed=True)
        return self._result(np.frompyfunc(lambda c, s: int(gmpy2.powmod(c, s, n2)), 2, 1)(
            self.values, scalars))

    __rmul__ = __mul__

    def sum(self, axis: int | None = None) -> "PaillierArray":
        """Homomorphic sum along an axis (product of ciphertexts mod n^2)."""
        n2 = self.public.n_square
        mul = np.frompyfunc(lambda a, b: a * b % n2, 2, 1)
        values = self.values.ravel() if axis is None else self.values
        return self._result(np.asarray(mul.reduce(values, axis=0 if axis is None else axis), dtype=object))

    def validate(self) -> None:
        """Raise CiphertextError if any entry is not an element of Z*_{n^2}."""
        n, n2 = self.public.n, self.public.n_square
        for index, c in np.ndenumerate(self.values):
            if not (isinstance(c, (int, gmpy2.mpz)) and 0 < c < n2 and math.gcd(int(c), n) == 1):
                raise CiphertextError(f"entry {index} is not a ciphertext of key "
                                      f"{self.public.fingerprint}: tampered or truncated")

    def to_bytes(self) -> bytes:
        """Self-describing serialization: a header (key fingerprint, regime, shape, width) and the
        fixed-width big-endian ciphertexts.  No integrity: seal it with ``crypto.bundle`` for that."""
        width = self.public.ciphertext_nbytes
        header = {"format": ARRAY_FORMAT, "key_fingerprint": self.public.fingerprint,
                  "key_sha256": key_sha256(self.public), "key_bits": self.public.bits,
                  "regime": Regime.parse(self.regime).value, "shape": list(self.shape), "width": width}
        return serialization.pack(ARRAY_MAGIC, header, serialization.pack_big_ints(self.values.ravel(), width))

    @classmethod
    def from_bytes(cls, data: bytes, public: PaillierPublicKey, regime: str | None = None) -> "PaillierArray":
        """Load what ``to_bytes`` wrote.  WrongKeyError when it was written under another key;
        CiphertextError for anything truncated, padded or malformed (naming the defect)."""
        what = "serialized PaillierArray"
        header, body = serialization.unpack(data, ARRAY_MAGIC, what)
        if serialization.field(header, "format", str, what) != ARRAY_FORMAT:
            raise CiphertextError(f"{what} has format {header['format']!r}, expected {ARRAY_FORMAT!r}")
        if serialization.field(header, "key_sha256", str, what) != key_sha256(public):
            raise WrongKeyError(f"{what} was written under key {header.get('key_fingerprint')!r:.20}, "
                                f"not under the given key {public.fingerprint}")
        stored = _parse_regime(serialization.field(header, "regime", str, what), what)
        if regime is not None and Regime.parse(regime).value != stored:
            raise CiphertextError(f"{what} holds regime {stored!r}, the caller expected {regime!r}")
        values = serialization.unpack_big_ints(header, body, public.ciphertext_nbytes, what)
        array = cls(values, public, stored)
        array.validate()
        return array


def _parse_regime(value: str, what: str) -> str:
    try:
        return Regime.parse(value).value
    except ValueError:
        raise CiphertextError(f"{what} header field 'regime' is {value!r:.40}, not a known regime") from None


def decrypt_array(private: PaillierPrivateKey, ciphertexts: PaillierArray,
                  signed: bool = False, value_range: tuple[int, int] | None = None) -> np.ndarray:
    """Decrypt every entry. `signed` maps m > n/2 to m - n; `value_range` (inclusive) rejects
    results outside it.

    `value_range` is a plausibility check, **not** integrity: it catches truncation, random
    corruption and most wrong-key mixes, but Paillier is malleable, so a ciphertext multiplied
    by E(k) (or raised to a power) that still decrypts inside the range passes unnoticed.
    Integrity needs an authenticated bundle (``crypto.bundle``)."""
    if not isinstance(ciphertexts, PaillierArray):
        raise CiphertextError(f"decrypt_array needs a PaillierArray, got {type(ciphertexts).__name__}")
    if ciphertexts.public.n != private.n:
        raise WrongKeyError(f"ciphertexts are under key {ciphertexts.public.fingerprint}, "
                            f"the private key is for {private.public.fingerprint}")
    decrypt = CRTDecryptor(private)
    n, half = private.n, private.n // 2
    out = np.empty(ciphertexts.values.size, dtype=object)
    for i, c in enumerate(ciphertexts.values.ravel()):
        m = decrypt(check_ciphertext(private.public, c))
        out[i] = m - n if signed and m > half else m
    out = out.reshape(ciphertexts.shape)
    if value_range is not None and out.size:
        lo, hi = value_range
        bad = [(idx, m) for idx, m in np.ndenumerate(out) if not lo <= m <= hi]
        if bad:
            raise CiphertextError(
                f"{len(bad)} entries decrypt outside [{lo}, {hi}] (first at index {bad[0][0]}): corrupted, "
                "made under another key, or altered (an alteration that stays in range is NOT detected: "
                "use crypto.bundle for integrity)")
        return out.astype(np.int64)
    if out.size and all(-(2**62) < m < 2**62 for m in out.ravel()):
        return out.astype(np.int64)
    return out
