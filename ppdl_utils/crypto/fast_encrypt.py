"""Fast Paillier encryption for the key holder: CRT (mod p^2, q^2) + fixed-base combs.

The client who owns the images also owns the private key, so it may use p and q to encrypt.
c = (1 + m*n) * x mod n^2, where x is a random n-th residue computed one of two ways:

* ``exponent_bits=None`` — textbook: x = r^n for uniform r in Z*_n, via CRT.  Ciphertexts have
  exactly the textbook distribution; about 3-4x faster than ``phe``.
* ``exponent_bits=k`` (default ``short_exponent_bits(n)``) — short exponent: x = h^a with
  h = y^n fixed for the encryptor (y uniform in Z*_n) and a uniform k-bit exponent, evaluated
  with precomputed fixed-base tables (8-bit windows) mod p^2 and q^2.

**What the short-exponent mode assumes** (stronger than Paillier's DCR assumption):

* that h^a with a short uniform exponent (k >= 2x the security level) is indistinguishable from
  a uniform element of <h>, the short-exponent analogue (cf. Koshiba & Kurosawa, PKC 2004) used by
  Damgard-Jurik-Nielsen's efficient variants;
* h may be treated as **public** (worker processes receive it; it is a ciphertext of 0): the
  security rests on the exponents, never on hiding h;
* the ciphertexts' distribution **differs** from textbook Paillier's: they are uniform over the
  coset of the subgroup <h>, reached through 2^k exponents, not uniform over all n-th residues.
  Every ciphertext still decrypts with the standard private key.

Parameters that would silently weaken this are refused with a :class:`ParameterError` naming
them: exponents shorter than ``min_short_exponent_bits(n)`` (twice the key's security level, at
least 160 bits), a custom ``base`` that is not an n-th residue (h^lambda != 1 mod n^2) or has a
small order, and plaintexts that are not integers in [0, n) on every path.

Paillier is malleable: nothing here gives integrity (see ``crypto.bundle``).
"""
from __future__ import annotations

import secrets

import gmpy2
import numpy as np

from ppdl_utils.crypto.paillier import (
    PaillierPrivateKey,
    check_plaintext,
    check_plaintexts,
    is_integer,
    random_r,
    require_key_size,
)
from ppdl_utils.crypto.security import ParameterError, min_short_exponent_bits, security_bits

WINDOW_BITS = 8


SMOOTH_BOUND = 1 << 16  # a custom base whose order is this-smooth is refused (small order)


def short_exponent_bits(modulus_bits: int) -> int:
    """Exponent length used by default: twice the key's security level, at least 256 bits."""
    return max(256, 2 * security_bits(modulus_bits))


def check_exponent_bits(exponent_bits: object, modulus_bits: int) -> int | None:
    """None (textbook) or a multiple of 8 at least ``min_short_exponent_bits``; ParameterError else."""
    if exponent_bits is None:
        return None
    minimum = min_short_exponent_bits(modulus_bits)
    if not is_integer(exponent_bits):
        raise ParameterError(f"exponent_bits must be None (textbook) or an integer, got {exponent_bits!r:.40}")
    bits = int(exponent_bits)
    if bits < minimum:
        raise ParameterError(
            f"exponent_bits = {bits} is below {minimum} (twice the security level of a {modulus_bits}-bit key, "
            "at least 160): such short exponents make the ciphertexts guessable; use None for textbook r^n")
    if bits % WINDOW_BITS:
        raise ParameterError(f"exponent_bits must be a multiple of {WINDOW_BITS}, got {bits}")
    if bits > max(modulus_bits, minimum):  # longer exponents only grow the tables; textbook is then better
        raise ParameterError(f"exponent_bits = {bits} exceeds the {modulus_bits}-bit modulus; use None (textbook)")
    return bits


_SMALL_PRIMES: list[int] = []


def _smooth_part(value: int) -> int:
    """The largest divisor of `value` whose prime factors are all below SMOOTH_BOUND."""
    if not _SMALL_PRIMES:
        prime = 2
        while prime < SMOOTH_BOUND:
            _SMALL_PRIMES.append(prime)
            prime = int(gmpy2.next_prime(prime))
    part, rest = gmpy2.mpz(1), gmpy2.mpz(value)
    for prime in _SMALL_PRIMES:
        while rest % prime == 0:
            rest //= prime
            part *= prime
    return int(part)


def check_base(private: PaillierPrivateKey, base: object) -> int:
    """A custom h: an integer of Z*_(n^2) that is an n-th residue (h^lambda = 1 mod n^2) and whose
    order is not SMOOTH_BOUND-smooth (h = 1, n^2 - 1, ... would leave few distinct ciphertexts)."""
    n, n2 = private.n, private.public.n_square
    if not is_integer(base):
        raise ParameterError(f"base must be an integer (an n-th residue mod n^2), got {base!r:.40}")
    h = int(base)
    if not 1 < h < n2 or gmpy2.gcd(h, n) != 1:
        raise ParameterError("base must lie in Z*_(n^2) (1 < h < n^2, gcd(h, n) = 1) for key "
                             f"{private.public.fingerprint}")
    if gmpy2.powmod(h, private.lam, n2) != 1:
        raise ParameterError(f"base is not an n-th residue mod n^2 (h^lambda != 1) for key "
                             f"{private.public.fingerprint}: its ciphertexts would decrypt to garbage; "
                             "use h = y^n mod n^2 or leave base=None")
    if gmpy2.powmod(h, _smooth_part(private.lam), n2) == 1:
        raise ParameterError(f"base has a small ({SMOOTH_BOUND}-smooth) order mod n^2: its powers take few "
                             "values, so the ciphertexts would be nearly deterministic; leave base=None")
    return h



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
        if not isinstance(private, PaillierPrivateKey):
            raise ParameterError(f"FastEncryptor needs the private key (it works modulo p^2 and q^2), "
                                 f"got {type(private).__name__}")
        require_key_size(private.public, "FastEncryptor's private key")
        self.private = private
        n, p, q = private.n, private.p, private.q
        self.n, self.n2 = gmpy2.mpz(n), gmpy2.mpz(n) * n
        self.p2, self.q2 = gmpy2.mpz(p) ** 2, gmpy2.mpz(q) ** 2
        self._p2_inv_mod_q2 = gmpy2.invert(self.p2, self.q2)
        if is_integer(exponent_bits) and int(exponent_bits) == -1:
            exponent_bits = short_exponent_bits(private.public.bits)
        self.exponent_bits = exponent_bits = check_exponent_bits(exponent_bits, private.public.bits)
        if exponent_bits is None:
            if base is not None:
                raise ParameterError("base is only used with short exponents; textbook mode (exponent_bits=None) "
                                     "draws a fresh r per ciphertext")
            # r^n mod p^2 = r^(n mod p(p-1)) mod p^2 since |Z*_{p^2}| = p(p-1).
            self._exp_p = self.n % (gmpy2.mpz(p) * (p - 1))
            self._exp_q = self.n % (gmpy2.mpz(q) * (q - 1))
            self.base = None
            return
        # h = y^n: a random n-th residue; public, shared by worker processes so all use one table.
        self.base = check_base(private, base) if base is not None else int(
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
        """One ciphertext of an integer 0 <= m < n (PlaintextRangeError otherwise, floats included)."""
        return self._encrypt(check_plaintext(self.private.public, m))

    def _encrypt(self, m: int) -> gmpy2.mpz:
        return (1 + m * self.n) * self.random_nth_residue() % self.n2

    def encrypt_many(self, messages: "np.ndarray | list[int]") -> list[gmpy2.mpz]:
        """Fresh ciphertext for every message, in order (all checked before any is encrypted)."""
        return [self._encrypt(m) for m in check_plaintexts(self.private.public, messages)]
