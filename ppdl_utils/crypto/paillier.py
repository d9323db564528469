"""Paillier keys and the scheme's formulas, presented as in the paper: p, q, n = pq, g = n + 1,
lambda = lcm(p-1, q-1), mu = (L(g^lambda mod n^2))^-1 mod n, c = g^m * r^n mod n^2.

Scalar, readable functions for teaching live here; vectorized and fast paths live in
``cipher_array`` and ``fast_encrypt``.  Randomness comes from :mod:`secrets`.

**Paillier is malleable: it has no integrity.**  Anyone holding the public key can turn E(m) into
a valid E(m + k) or E(k * m) (that is the homomorphism), and nothing in a ciphertext reveals it.
Integrity needs an authenticated bundle (``crypto.bundle``: HMAC over the serialized ciphertexts).
"""
from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass, field

import gmpy2
import numpy as np
from phe import paillier as phe_paillier

from ppdl_utils import secret_scan
from ppdl_utils.crypto.security import ParameterError, as_array, security_bits, security_label
from ppdl_utils.errors import CiphertextError, PlaintextRangeError

__all__ = ["DEFAULT_KEY_BITS", "MIN_SECURE_KEY_BITS", "InsecureKeyError", "require_key_size",
           "security_bits", "security_label", "L", "PaillierPublicKey",
           "PaillierPrivateKey", "keypair_from_primes", "generate_keypair", "random_r", "is_integer",
           "check_plaintext", "check_plaintexts", "check_ciphertext", "encrypt_int", "decrypt_int",
           "add_ciphertexts", "add_plaintext", "multiply_plaintext", "register_key_secrets"]

DEFAULT_KEY_BITS = 2048
#: Smallest modulus used without an explicit, labelled teaching/quick mode (NIST: 112-bit security).
MIN_SECURE_KEY_BITS = 2048


class InsecureKeyError(ParameterError):
    """A key below MIN_SECURE_KEY_BITS was created or used without the explicit teaching/quick mode."""
_MPZ = type(gmpy2.mpz(0))


def L(x: int, n: int) -> int:
    """Paillier's L function, L(x) = (x - 1) / n (exact division on the right subgroup)."""
    return (x - 1) // n


@dataclass(frozen=True)
class PaillierPublicKey:
    """Public key (n, g) with g = n + 1.

    ``insecure_ok`` marks a key below :data:`MIN_SECURE_KEY_BITS` that was made or loaded in the
    explicit teaching/quick mode (``allow_insecure=True``); encryptors refuse a small key without it.
    """

    n: int
    insecure_ok: bool = field(default=False, compare=False, kw_only=True)

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
        return hashlib.sha256(self.n_decimal.encode()).hexdigest()[:16]

    @property
    def n_decimal(self) -> str:
        """n in decimal (gmpy2: str() refuses more than 4300 digits, i.e. keys over ~14000 bits)."""
        return gmpy2.mpz(self.n).digits(10)

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
        if not isinstance(self.public, PaillierPublicKey):
            raise ParameterError(f"public must be a PaillierPublicKey, got {type(self.public).__name__}")
        for name, value in (("p", self.p), ("q", self.q)):
            if not is_integer(value) or int(value) < 3:
                raise ParameterError(f"{name} must be an odd prime, got {type(value).__name__}")
        n = self.public.n
        if self.p == self.q:
            raise ParameterError("p and q are equal: n = p^2 is not a Paillier modulus")
        if self.p * self.q != n:
            raise ParameterError(f"p * q != n for key {self.public.fingerprint}: these primes are not this key's")
        lam = math.lcm(self.p - 1, self.q - 1)
        try:
            mu = pow(L(pow(self.public.g, lam, n * n), n), -1, n)
        except ValueError:
            raise ParameterError("gcd(n, (p-1)(q-1)) != 1: p and q do not make a Paillier key") from None
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


def register_key_secrets(private: PaillierPrivateKey) -> None:
    """Record p, q, lambda, mu in the active secret registry (a no-op when none is active)."""
    for name, value in (("p", private.p), ("q", private.q), ("lambda", private.lam), ("mu", private.mu)):
        secret_scan.register_secret("paillier", name, private.public.fingerprint, value, public=(private.public.n,))


def keypair_from_primes(p: int, q: int) -> PaillierPrivateKey:
    """Build a key from chosen primes (the teaching widget uses small ones)."""
    for name, value in (("p", p), ("q", q)):
        if not is_integer(value):
            raise ParameterError(f"{name} must be an integer, got {type(value).__name__}")
    p, q = int(p), int(q)
    for name, value in (("p", p), ("q", q)):
        if value < 3 or not gmpy2.is_prime(value, 50):
            raise ParameterError(f"{name} = {value} is not an odd prime")
    if p == q:
        raise ParameterError("p and q must be distinct primes")
    if math.gcd(p * q, (p - 1) * (q - 1)) != 1:
        raise ParameterError(f"gcd(pq, (p-1)(q-1)) != 1 for p = {p}, q = {q}: choose other primes")
    # chosen primes are the teaching widget's toy keys: labelled insecure, never saved by keyfiles
    key = PaillierPrivateKey(PaillierPublicKey(p * q, insecure_ok=(p * q).bit_length() < MIN_SECURE_KEY_BITS), p, q)
    register_key_secrets(key)
    return key


def require_key_size(public: PaillierPublicKey, where: str = "key") -> None:
    """Refuse a key below :data:`MIN_SECURE_KEY_BITS` unless it was made or loaded in the explicit
    teaching/quick mode (``insecure_ok``).  Encryptors and the jobs that use a key call this."""
    if not isinstance(public, PaillierPublicKey):
        raise ParameterError(f"{where} must be a Paillier key, got {type(public).__name__}")
    if public.bits < MIN_SECURE_KEY_BITS and not public.insecure_ok:
        raise InsecureKeyError(
            f"{where} is a {public.bits}-bit key ({security_label(public.bits)}); keys below "
            f"{MIN_SECURE_KEY_BITS} bits are used only in the labelled teaching/quick mode: make it with "
            f"generate_keypair(bits, allow_insecure=True) or load it with allow_insecure=True")


def generate_keypair(bits: int = DEFAULT_KEY_BITS, allow_insecure: bool = False) -> PaillierPrivateKey:
    """Fresh key with an exactly `bits`-bit modulus n = pq (p, q of bits/2 bits each).

    Below :data:`MIN_SECURE_KEY_BITS` (2048) only with ``allow_insecure=True`` (teaching, quick
    runs, cost tables): the key is then labelled ``insecure_ok`` and keyfiles saves it only under an
    ``.INSECURE.`` file name.

    Raises:
        ParameterError: `bits` is not an even integer >= 16.
        InsecureKeyError: `bits` < 2048 without ``allow_insecure``.
    """
    if not is_integer(bits) or isinstance(bits, bool) or bits < 16 or bits % 2:
        raise ParameterError(f"key size must be an even number of bits >= 16, got {bits!r}")
    bits = int(bits)
    insecure = bits < MIN_SECURE_KEY_BITS
    if insecure and allow_insecure is not True:
        raise InsecureKeyError(f"key_bits={bits} is below {MIN_SECURE_KEY_BITS} ({security_label(bits)}); "
                               "pass allow_insecure=True for a labelled teaching/quick key")
    while True:
        p, q = _random_prime(bits // 2), _random_prime(bits // 2)
        if p != q and math.gcd(p * q, (p - 1) * (q - 1)) == 1 and (p * q).bit_length() == bits:
            key = PaillierPrivateKey(PaillierPublicKey(p * q, insecure_ok=insecure), p, q)
            register_key_secrets(key)
            return key


def random_r(public: PaillierPublicKey) -> int:
    """Uniform r in Z*_n (0 < r < n, gcd(r, n) = 1)."""
    while True:
        r = secrets.randbelow(public.n - 1) + 1
        if math.gcd(r, public.n) == 1:
            return r


def is_integer(value: object) -> bool:
    """An exact integer (Python, numpy or gmpy2), not a bool, float, string or None."""
    return isinstance(value, (int, np.integer, _MPZ)) and not isinstance(value, (bool, np.bool_))


def _show(value: int) -> str:
    """A value for an error message: huge ones abbreviated (an out-of-range value is not a secret)."""
    text = gmpy2.mpz(value).digits(10)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"


def check_plaintext(public: PaillierPublicKey, m: object, name: str = "plaintext") -> int:
    """m as an int in [0, n); PlaintextRangeError for floats, bools, other types or values outside."""
    if not is_integer(m):
        raise PlaintextRangeError(f"{name} must be an integer in [0, n), got {type(m).__name__} {m!r:.40}"
                                  " (floats are refused, not truncated)")
    m = int(m)
    if not 0 <= m < public.n:
        raise PlaintextRangeError(f"{name} {_show(m)} outside [0, n) for a {public.bits}-bit key")
    return m


def check_plaintexts(public: PaillierPublicKey, values: object, name: str = "plaintext") -> list[int]:
    """Many plaintexts (any shape, flattened in order) as ints in [0, n); vectorized for int arrays."""
    try:
        arr = as_array(values)
    except (ValueError, TypeError, OverflowError) as exc:
        raise PlaintextRangeError(f"{name}s are not an array of integers: {exc}") from None
    if arr.dtype.kind in "iu":
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= public.n):
            bad = int(arr.min()) if int(arr.min()) < 0 else int(arr.max())
            raise PlaintextRangeError(f"{name} {_show(bad)} outside [0, n) for a {public.bits}-bit key")
        return [int(m) for m in arr.ravel()]
    if arr.dtype != object:
        raise PlaintextRangeError(f"{name}s must be integers in [0, n), got dtype {arr.dtype}"
                                  " (floats are refused, not truncated)")
    return [check_plaintext(public, m, name) for m in arr.ravel()]


def check_ciphertext(public: PaillierPublicKey, c: object) -> int:
    if not is_integer(c):
        raise CiphertextError(f"a Paillier ciphertext must be an integer, got {type(c).__name__}")
    c = int(c)
    if not 0 < c < public.n_square or math.gcd(c, public.n) != 1:
        raise CiphertextError(
            f"value is not a Paillier ciphertext of key {public.fingerprint} (not in Z*_(n^2)):"
            " tampered, truncated or produced under another key")
    return c


def _check_r(public: PaillierPublicKey, r: object) -> int:
    if not is_integer(r) or not 0 < int(r) < public.n or math.gcd(int(r), public.n) != 1:
        raise ParameterError(f"r must be an integer in Z*_n (0 < r < n, gcd(r, n) = 1), got {r!r:.40}")
    return int(r)


def encrypt_int(public: PaillierPublicKey, m: int, r: int | None = None) -> int:
    """Textbook c = g^m * r^n mod n^2 (fresh random r unless one is given).

    A chosen r makes the ciphertext deterministic (r = 1 is the insecure ``r_one`` regime): pass
    one only to show the formulas."""
    m = check_plaintext(public, m)
    r = random_r(public) if r is None else _check_r(public, r)
    n2 = public.n_square
    return int(gmpy2.powmod(public.g, m, n2) * gmpy2.powmod(r, public.n, n2) % n2)


def decrypt_int(private: PaillierPrivateKey, c: int) -> int:
    """Textbook m = L(c^lambda mod n^2) * mu mod n.

    A bare integer carries no key fingerprint: a ciphertext of another key of the same size
    decrypts to a random-looking integer and *cannot be detected here*.  Use ``PaillierArray``
    (``to_bytes``/``from_bytes`` carry the fingerprint) or an authenticated bundle to detect it."""
    c = check_ciphertext(private.public, c)
    n = private.n
    return int(L(int(gmpy2.powmod(c, private.lam, n * n)), n) * private.mu % n)


def add_ciphertexts(public: PaillierPublicKey, c1: int, c2: int) -> int:
    """E(m1) * E(m2) mod n^2 decrypts to m1 + m2 mod n."""
    return check_ciphertext(public, c1) * check_ciphertext(public, c2) % public.n_square


def _check_scalar(value: object, name: str) -> int:
    if not is_integer(value):
        raise PlaintextRangeError(f"{name} must be an integer, got {type(value).__name__} {value!r:.40}"
                                  " (floats are refused, not truncated)")
    return int(value)


def add_plaintext(public: PaillierPublicKey, c: int, m: int) -> int:
    """E(m1) * g^m2 mod n^2 decrypts to m1 + m2 mod n."""
    m = _check_scalar(m, "added plaintext")
    c = check_ciphertext(public, c)
    return c * int(gmpy2.powmod(public.g, m % public.n, public.n_square)) % public.n_square


def multiply_plaintext(public: PaillierPublicKey, c: int, k: int) -> int:
    """E(m)^k mod n^2 decrypts to k*m mod n (negative k uses the inverse of c)."""
    k = _check_scalar(k, "scalar")
    return int(gmpy2.powmod(check_ciphertext(public, c), k, public.n_square))
