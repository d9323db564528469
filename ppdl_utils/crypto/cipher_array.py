"""Numpy arrays of Paillier ciphertexts: encrypt, decrypt, and the homomorphic operations."""
from __future__ import annotations

import math
from dataclasses import dataclass

import gmpy2
import numpy as np

from ppdl_utils.errors import CiphertextError, PlaintextRangeError, WrongKeyError
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, check_ciphertext


def as_plaintext_ints(values: "np.ndarray | int", public: PaillierPublicKey,
                      name: str = "plaintext", signed: bool = False) -> np.ndarray:
    """Validate integer plaintexts and return them as an object array of Python ints.

    Unsigned plaintexts must lie in [0, n); signed ones in (-n/2, n/2) and are stored mod n.
    """
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuO" or arr.dtype == bool:
        raise PlaintextRangeError(f"{name} must be integers, got dtype {arr.dtype}")
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


class _CRTDecryptor:
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

    def to_bytes(self) -> np.ndarray:
        """Fixed-width big-endian serialization, shape (*shape, ciphertext_nbytes), uint8."""
        width = self.public.ciphertext_nbytes
        raw = b"".join(int(c).to_bytes(width, "big") for c in self.values.ravel())
        return np.frombuffer(raw, dtype=np.uint8).reshape(*self.shape, width)

    @classmethod
    def from_bytes(cls, data: np.ndarray, public: PaillierPublicKey,
                   regime: str = "randomized") -> "PaillierArray":
        width = public.ciphertext_nbytes
        if data.dtype != np.uint8 or data.ndim < 1 or data.shape[-1] != width:
            raise CiphertextError(f"expected uint8 bytes with last axis {width} for key "
                                  f"{public.fingerprint}, got {data.dtype} {data.shape}")
        flat = data.reshape(-1, width)
        values = np.empty(flat.shape[0], dtype=object)
        for i, row in enumerate(flat):
            values[i] = int.from_bytes(row.tobytes(), "big")
        array = cls(values.reshape(data.shape[:-1]), public, regime)
        array.validate()
        return array


def decrypt_array(private: PaillierPrivateKey, ciphertexts: PaillierArray,
                  signed: bool = False, value_range: tuple[int, int] | None = None) -> np.ndarray:
    """Decrypt every entry. `signed` maps m > n/2 to m - n; `value_range` (inclusive) rejects
    results outside it — the way to detect tampering, since Paillier has no integrity check."""
    if ciphertexts.public.n != private.n:
        raise WrongKeyError(f"ciphertexts are under key {ciphertexts.public.fingerprint}, "
                            f"the private key is for {private.public.fingerprint}")
    decrypt = _CRTDecryptor(private)
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
                f"{len(bad)} entries decrypt outside [{lo}, {hi}] (first at index {bad[0][0]}): "
                "the ciphertext was tampered with or was made under another key")
        return out.astype(np.int64)
    if out.size and all(-(2**62) < m < 2**62 for m in out.ravel()):
        return out.astype(np.int64)
    return out
