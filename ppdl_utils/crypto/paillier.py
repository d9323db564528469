"""Paillier keys and the scheme's formulas, presented as in the paper: p, q, n = pq, g = n + 1,
lambda = lcm(p-1, q-1), mu = (L(g^lambda mod n^2))^-1 mod n, c = g^m * r^n mod n^2.

Scalar, readable functions for teaching live here; vectorized and fast paths live in
``cipher_array`` and ``fast_encrypt``.  Randomness comes from :mod:`secrets`.
"""
from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass, field

import gmpy2
from phe import paillier as phe_paillier

from ppdl_utils.errors import CiphertextError, PlaintextRangeError

DEFAULT_KEY_BITS = 2048

# NIST SP 800-57 Part 1 Rev. 5, Table 2: security strength of an integer-factorization modulus.
_NIST_IFC_STRENGTH = ((15360, 256), (7680, 192), (3072, 128), (2048, 112), (1024, 80))


def security_bits(modulus_bits: int) -> int:
    """Classical security strength (bits) of an n of this size; 0 means a toy key (teaching only)."""
    for bits, strength in _NIST_IFC_STRENGTH:
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


def L(x: int, n: int) -> int:
    """Paillier's L function, L(x) = (x - 1) / n (exact division on the right subgroup)."""
    return (x - 1) // n


@dataclass(frozen=True)
class PaillierPublicKey:
    """Public key (n, g) with g = n + 1."""

    n: int

    @property
    def g(self) -> int:
        return self.n + 1

    @property
    def n_square(self) -> int:
        return self.n * self.n

    @property
    def bits(self) -> int:
        return self.n.bit_length()

    @property
    def ciphertext_nbytes(self) -> int:
        """Bytes of one ciphertext, an element of Z*_{n^2}."""
        return (2 * self.bits + 7) // 8

    @property
    def fingerprint(self) -> str:
        """Short public identifier of the key (SHA-256 of n); safe to print."""
        return hashlib.sha256(str(self.n).encode()).hexdigest()[:16]

    @property
    def security_bits(self) -> int:
        return security_bits(self.bits)

    def to_phe(self) -> phe_paillier.PaillierPublicKey:
        return phe_paillier.PaillierPublicKey(self.n)


@dataclass(frozen=True, repr=False)
class PaillierPrivateKey:
    """Private key (lambda, mu) with the primes p, q it is derived from. Its repr hides secrets."""

    public: PaillierPublicKey
    p: int
    q: int
    lam: int = field(init=False)
    mu: int = field(init=False)

    def __post_init__(self) -> None:
        n = self.public.n
        lam = math.lcm(self.p - 1, self.q - 1)
        mu = pow(L(pow(self.public.g, lam, n * n), n), -1, n)
        object.__setattr__(self, "lam", lam)
        object.__setattr__(self, "mu", mu)

    def __repr__(self) -> str:
        return (f"PaillierPrivateKey(bits={self.public.bits}, fingerprint={self.public.fingerprint}, "
                "p, q, lambda, mu hidden)")

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        """IPython and hypothesis print through this hook: keep the secrets out of them too."""
        printer.text(repr(self))

    @property
    def n(self) -> int:
        return self.public.n

    def to_phe(self) -> phe_paillier.PaillierPrivateKey:
        return phe_paillier.PaillierPrivateKey(self.public.to_phe(), self.p, self.q)


def _random_prime(bits: int) -> int:
    """A uniformly drawn odd `bits`-bit probable prime (top two bits set so |p*q| is exact)."""
    while True:
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if gmpy2.is_prime(candidate, 50):
            return candidate


def keypair_from_primes(p: int, q: int) -> PaillierPrivateKey:
    """Build a key from chosen primes (the teaching widget uses small ones)."""
    p, q = int(p), int(q)
    for name, value in (("p", p), ("q", q)):
        if value < 3 or not gmpy2.is_prime(value, 50):
            raise ValueError(f"{name} = {value} is not an odd prime")
    if p == q:
        raise ValueError("p and q must be distinct primes")
    if math.gcd(p * q, (p - 1) * (q - 1)) != 1:
        raise ValueError(f"gcd(pq, (p-1)(q-1)) != 1 for p = {p}, q = {q}: choose other primes")
    return PaillierPrivateKey(PaillierPublicKey(p * q), p, q)


def generate_keypair(bits: int = DEFAULT_KEY_BITS) -> PaillierPrivateKey:
    """Fresh key with an exactly `bits`-bit modulus n = pq (p, q of bits/2 bits each)."""
    if bits < 16 or bits % 2:
        raise ValueError(f"key size must be an even number of bits >= 16, got {bits}")
    while True:
        p, q = _random_prime(bits // 2), _random_prime(bits // 2)
        if p != q and math.gcd(p * q, (p - 1) * (q - 1)) == 1 and (p * q).bit_length() == bits:
            return PaillierPrivateKey(PaillierPublicKey(p * q), p, q)


def random_r(public: PaillierPublicKey) -> int:
    """Uniform r in Z*_n (0 < r < n, gcd(r, n) = 1)."""
    while True:
        r = secrets.randbelow(public.n - 1) + 1
        if math.gcd(r, public.n) == 1:
            return r


def check_plaintext(public: PaillierPublicKey, m: int) -> int:
    m = int(m)
    if not 0 <= m < public.n:
        raise PlaintextRangeError(f"plaintext {m} outside [0, n) for a {public.bits}-bit key")
    return m


def check_ciphertext(public: PaillierPublicKey, c: int) -> int:
    c = int(c)
    if not 0 < c < public.n_square or math.gcd(c, public.n) != 1:
        raise CiphertextError(
            f"value is not a Paillier ciphertext of key {public.fingerprint} (not in Z*_(n^2)):"
            " tampered, truncated or produced under another key")
    return c


def encrypt_int(public: PaillierPublicKey, m: int, r: int | None = None) -> int:
    """Textbook c = g^m * r^n mod n^2 (fresh random r unless one is given)."""
    m = check_plaintext(public, m)
    r = random_r(public) if r is None else int(r)
    n2 = public.n_square
    return int(gmpy2.powmod(public.g, m, n2) * gmpy2.powmod(r, public.n, n2) % n2)


def decrypt_int(private: PaillierPrivateKey, c: int) -> int:
    """Textbook m = L(c^lambda mod n^2) * mu mod n."""
    c = check_ciphertext(private.public, c)
    n = private.n
    return int(L(int(gmpy2.powmod(c, private.lam, n * n)), n) * private.mu % n)


def add_ciphertexts(public: PaillierPublicKey, c1: int, c2: int) -> int:
    """E(m1) * E(m2) mod n^2 decrypts to m1 + m2 mod n."""
    return c1 * c2 % public.n_square


def add_plaintext(public: PaillierPublicKey, c: int, m: int) -> int:
    """E(m1) * g^m2 mod n^2 decrypts to m1 + m2 mod n."""
    return c * int(gmpy2.powmod(public.g, int(m) % public.n, public.n_square)) % public.n_square


def multiply_plaintext(public: PaillierPublicKey, c: int, k: int) -> int:
    """E(m)^k mod n^2 decrypts to k*m mod n (negative k uses the inverse of c)."""
    return int(gmpy2.powmod(c, int(k), public.n_square))
