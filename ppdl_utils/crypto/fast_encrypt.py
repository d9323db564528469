"""Fast Paillier encryption for the key holder: CRT (mod p^2, q^2) + fixed-base combs.

The client who owns the images also owns the private key, so it may use p and q to encrypt.
c = (1 + m*n) * x mod n^2, where x is a random n-th residue computed one of two ways:

* ``exponent_bits=None`` — textbook: x = r^n for uniform r in Z*_n, via CRT.  Ciphertexts have
  exactly the textbook distribution; about 3-4x faster than ``phe``.
* ``exponent_bits=k`` (default ``short_exponent_bits(n)``) — short exponent: x = h^a with
  h = y^n fixed for the encryptor (y uniform in Z*_n) and a uniform k-bit exponent, evaluated
  with precomputed fixed-base tables (8-bit windows) mod p^2 and q^2.
  **Security assumption** (stated because it is stronger than Paillier's DCR): that h^a with a
  short uniform exponent (k >= 2x the security level) is indistinguishable from a uniform element
  of <h>, the short-exponent analogue (cf. Koshiba & Kurosawa, PKC 2004) used by Damgard-Jurik-
  Nielsen's efficient variants.  Every ciphertext still decrypts with the standard private key.
"""
from __future__ import annotations

import secrets

import gmpy2
import numpy as np

from ppdl_utils.crypto.paillier import PaillierPrivateKey, random_r

WINDOW_BITS = 8


def short_exponent_bits(modulus_bits: int) -> int:
    """Exponent length used by default: twice the key's security level, at least 256 bits."""
    from ppdl_utils.crypto.paillier import security_bits

    return max(256, 2 * security_bits(modulus_bits))


class _FixedBaseComb:
    """h^a mod M for any a < 2^(8*windows) with one multiplication per 8-bit window."""

    def __init__(self, base: int, modulus: int, windows: int) -> None:
        self.modulus = gmpy2.mpz(modulus)
        self.tables: list[list[gmpy2.mpz]] = []
        step = gmpy2.mpz(base) % self.modulus
        for _ in range(windows):
            row = [gmpy2.mpz(1)]
            for _ in range((1 << WINDOW_BITS) - 1):
                row.append(row[-1] * step % self.modulus)
            self.tables.append(row)
            step = row[-1] * step % self.modulus  # base^(256^(i+1))

    def power(self, exponent_bytes: bytes) -> gmpy2.mpz:
        acc = gmpy2.mpz(1)
        mod = self.modulus
        for row, digit in zip(self.tables, exponent_bytes):
            acc = acc * row[digit] % mod
        return acc


class FastEncryptor:
    """Vectorized Paillier encryption under a private key (see module docstring for modes)."""

    def __init__(self, private: PaillierPrivateKey, exponent_bits: int | None = -1,
                 base: int | None = None) -> None:
        self.private = private
        n, p, q = private.n, private.p, private.q
        self.n, self.n2 = gmpy2.mpz(n), gmpy2.mpz(n) * n
        self.p2, self.q2 = gmpy2.mpz(p) ** 2, gmpy2.mpz(q) ** 2
        self._p2_inv_mod_q2 = gmpy2.invert(self.p2, self.q2)
        if exponent_bits == -1:
            exponent_bits = short_exponent_bits(private.public.bits)
        self.exponent_bits = exponent_bits
        if exponent_bits is None:
            # r^n mod p^2 = r^(n mod p(p-1)) mod p^2 since |Z*_{p^2}| = p(p-1).
            self._exp_p = self.n % (gmpy2.mpz(p) * (p - 1))
            self._exp_q = self.n % (gmpy2.mpz(q) * (q - 1))
            self.base = None
            return
        if exponent_bits % WINDOW_BITS:
            raise ValueError(f"exponent_bits must be a multiple of {WINDOW_BITS}, got {exponent_bits}")
        # h = y^n: a random n-th residue; shared by worker processes so all use one table.
        self.base = int(base) if base is not None else int(
            gmpy2.powmod(random_r(private.public), self.n, self.n2))
        windows = exponent_bits // WINDOW_BITS
        self._comb_p = _FixedBaseComb(self.base % self.p2, self.p2, windows)
        self._comb_q = _FixedBaseComb(self.base % self.q2, self.q2, windows)

    def _crt(self, xp: gmpy2.mpz, xq: gmpy2.mpz) -> gmpy2.mpz:
        return xp + self.p2 * ((xq - xp) * self._p2_inv_mod_q2 % self.q2)

    def random_nth_residue(self) -> gmpy2.mpz:
        """x = r^n (textbook) or h^a (short exponent), an encryption of 0 up to the factor g^0."""
        if self.base is None:
            r = gmpy2.mpz(random_r(self.private.public))
            return self._crt(gmpy2.powmod(r % self.p2, self._exp_p, self.p2),
                             gmpy2.powmod(r % self.q2, self._exp_q, self.q2))
        a = secrets.token_bytes(self.exponent_bits // WINDOW_BITS)
        return self._crt(self._comb_p.power(a), self._comb_q.power(a))

    def encrypt(self, m: int) -> gmpy2.mpz:
        """One ciphertext of 0 <= m < n (range checked by callers that vectorize)."""
        return (1 + m * self.n) * self.random_nth_residue() % self.n2

    def encrypt_many(self, messages: "np.ndarray | list[int]") -> list[gmpy2.mpz]:
        """Fresh ciphertext for every message, in order."""
        return [self.encrypt(int(m)) for m in np.ravel(messages)]
