"""Regev-style secret-key LWE encryption of integer arrays, vectorized with numpy.

One element m in [0, t) is encrypted as the pair (a, b) with

    a <- uniform in Z_q^n,   e <- rounded Gaussian(sigma), |e| <= B,
    b  = <a, s> + e + Delta * m  (mod q),   Delta = q // t,

under a secret key s in {-1, 0, 1}^n (ternary, as in SEAL and the
HomomorphicEncryption.org standard).  Decryption rounds (b - <a, s>) / Delta.
It is correct while |e| < Delta / 2, so every ciphertext carries a worst-case
``noise_bound`` that homomorphic operations update; an operation whose bound would
reach Delta / 2 raises :class:`NoiseBudgetError` instead of returning a ciphertext
that might decrypt wrongly.

Homomorphic operations (all plaintext results are **mod t**):

* ``add(c1, c2)``      E(m1) + E(m2) = E(m1 + m2 mod t),      bound b1 + b2
* ``add_plain(c, k)``  E(m) + k      = E(m + k mod t),        bound unchanged
* ``mul_plain(c, k)``  k * E(m)      = E(k * m mod t),        bound b * |k mod+- t|

``q % t == 0`` is required so that Delta * t = q: a plaintext wrapping around t then
adds no extra error, and a scalar k can be replaced by its centred residue mod t.

Randomness: every value (a, s, e) comes from the operating-system CSPRNG through
:func:`secrets.token_bytes`.  A CSPRNG-seeded ``numpy`` PCG64 would be faster, but
PCG64 is not a cryptographic generator: its state can be recovered from outputs, and
the uniform ``a`` vectors are published in every ciphertext, so they would expose the
stream that also produced the secret errors.

Regimes (see :mod:`ppdl_utils.crypto.regimes`): ``Regime.RANDOMIZED`` draws fresh (a, e) per
element (IND-CPA under LWE).  ``Regime.FIXED_R`` reuses one secret (a0, e0) stored in
the key for every element, so equal messages give equal ciphertexts and
b1 - b2 = Delta * (m1 - m2) reveals every difference: it is NOT secure.

Integrity: LWE is **malleable**, like every additively homomorphic scheme: anyone can add
Delta * k to b and obtain a valid E(m + k); decryption cannot tell.  ``to_bytes``/``from_bytes``
carry the key fingerprint (another key is a ``WrongKeyError``), not integrity; ``crypto.bundle``
adds an HMAC for that.

Memory: a RANDOMIZED ciphertext holds (n + 1) int64 values per element (8 kB per pixel
at n = 1024); a fresh FIXED_R ciphertext shares one read-only a0 view until an operation.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from ppdl_utils import secret_scan
from ppdl_utils.crypto import serialization
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.crypto.security import ParameterError, as_array
from ppdl_utils.errors import CiphertextError, NoiseBudgetError, PlaintextRangeError, WrongKeyError

__all__ = [
    "LWEParams",
    "DEFAULT",
    "TEACHING",
    "LWESecretKey",
    "LWECiphertext",
    "keygen",
    "encrypt",
    "decrypt",
    "add",
    "add_plain",
    "mul_plain",
    "measure_noise",
    "serialized_nbytes",
    "to_bytes",
    "from_bytes",
    "SUPPORTED_REGIMES",
]

TAIL_CUT = 6  # errors are resampled until |e| <= floor(TAIL_CUT * sigma)
MAX_Q = 2**31  # keeps every product of two residues inside int64
SUPPORTED_REGIMES = (Regime.RANDOMIZED, Regime.FIXED_R)

IntArrayLike = Union[int, np.integer, np.ndarray, list, tuple]


@dataclass(frozen=True)
class LWEParams:
    """LWE dimension n, ciphertext modulus q, plaintext modulus t, error width sigma.

    ``security_bits`` is the claimed classical security of ``Regime.RANDOMIZED``
    encryption; ``note`` says where the claim comes from.
    """

    n: int
    q: int
    t: int
    sigma: float
    name: str
    security_bits: int
    note: str

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and self.n >= 1):
            raise ParameterError(f"LWE dimension n must be a positive int, got {self.n!r}")
        if not (isinstance(self.q, int) and 2 <= self.q <= MAX_Q):
            raise ParameterError(f"modulus q must be an int in [2, 2^31], got {self.q!r}")
        if not (isinstance(self.t, int) and 2 <= self.t <= self.q):
            raise ParameterError(f"plaintext modulus t must be an int in [2, q], got {self.t!r}")
        if self.q % self.t:
            raise ParameterError(f"q = {self.q} must be a multiple of t = {self.t} (so that Delta * t = q)")
        if not self.sigma > 0:
            raise ParameterError(f"sigma must be positive, got {self.sigma!r}")
        if 2 * self.error_bound >= self.delta:
            raise ParameterError(
                f"fresh noise bound {self.error_bound} already reaches Delta/2 = {self.delta / 2:g}: "
                "choose a larger q/t or a smaller sigma"
            )

    @property
    def delta(self) -> int:
        """Scaling factor Delta = q // t placing m in the high bits of b."""
        return self.q // self.t

    @property
    def error_bound(self) -> int:
        """B = floor(6 sigma): every fresh error satisfies |e| <= B (tail-cut sampling)."""
        return int(math.floor(TAIL_CUT * self.sigma))

    @property
    def modulus_nbytes(self) -> int:
        """Bytes needed for one residue mod q: ceil(log2(q) / 8)."""
        return ((self.q - 1).bit_length() + 7) // 8

    @property
    def ciphertext_nbytes_per_element(self) -> int:
        """(n + 1) residues per encrypted element."""
        return (self.n + 1) * self.modulus_nbytes

    @property
    def max_fresh_multiplier(self) -> int:
        """Largest |k| such that k * (fresh ciphertext) still decrypts: B * |k| < Delta / 2."""
        if self.error_bound == 0:
            return self.t // 2
        return min((self.delta - 1) // (2 * self.error_bound), self.t // 2)


DEFAULT = LWEParams(
    n=1024,
    q=2**26,
    t=2**12,
    sigma=8 / math.sqrt(2 * math.pi),  # ~3.19, the HE-standard error width
    name="LWE-1024-q26",
    security_bits=128,
    note=(
        "~128-bit classical security (estimate, not a proof). Justification: "
        "HomomorphicEncryption.org Security Standard v1.1 (Albrecht et al., Nov 2018), table for "
        "ternary (and error-distribution) secrets, sigma = 8/sqrt(2*pi) ~ 3.19, row n = 1024: "
        "128-bit classical security allows log2(q) <= 27 (192-bit: <= 19; 128-bit quantum: <= 25), "
        "the same bound SEAL enforces (SEAL_HE_STD_PARMS_128_TC(1024) = 27). We use log2(q) = 26, one bit "
        "below the bound, a ternary secret and this sigma. The table comes from the LWE estimator, whose "
        "attacks are generic LWE attacks, so it applies to plain LWE of the same (n, q, sigma); it was "
        "computed with m = n samples, while a symmetric Regev key gives one sample per encrypted "
        "element (the primal attack's optimum is about n samples). Below the 128-bit quantum row "
        "(needs log2 q <= 25). Only Regime.RANDOMIZED has this security; FIXED_R has none. "
        "Compare FrodoKEM-640: n = 640, q = 2^15, sigma = 2.8, NIST level 1."
    ),
)

TEACHING = LWEParams(
    n=16,
    q=2**26,
    t=2**12,
    sigma=8 / math.sqrt(2 * math.pi),
    name="TEACHING-INSECURE-n16",
    security_bits=0,
    note=(
        "INSECURE: n = 16 falls to lattice reduction in milliseconds, and the 3^16 ~ 4.3e7 ternary "
        "secrets can be brute-forced. Same q, t, sigma as DEFAULT so noise budgets match; for "
        "reading the arithmetic and fast tests only."
    ),
)


# --------------------------------------------------------------------------- sampling
def _uniform_mod(q: int, size: int) -> np.ndarray:
    """``size`` independent uniform residues mod q (q <= 2^31) from the OS CSPRNG."""
    out = np.empty(size, dtype=np.int64)
    mask = (1 << (q - 1).bit_length()) - 1
    filled = 0
    while filled < size:
        need = size - filled
        raw = np.frombuffer(secrets.token_bytes(4 * need), dtype="<u4").astype(np.int64) & mask
        good = raw[raw < q]  # rejection sampling keeps the distribution exactly uniform
        take = min(len(good), need)
        out[filled : filled + take] = good[:take]
        filled += take
    return out


def _ternary(size: int) -> np.ndarray:
    """``size`` uniform values in {-1, 0, 1} from the OS CSPRNG."""
    out = np.empty(size, dtype=np.int64)
    filled = 0
    while filled < size:
        need = size - filled
        raw = np.frombuffer(secrets.token_bytes(need + 16), dtype=np.uint8)
        good = raw[raw < 255].astype(np.int64) % 3 - 1
        take = min(len(good), need)
        out[filled : filled + take] = good[:take]
        filled += take
    return out


def _rounded_gaussian(sigma: float, bound: int, size: int) -> np.ndarray:
    """Rounded Gaussian(0, sigma) samples, resampled until |e| <= bound (Box-Muller on CSPRNG bits)."""
    out = np.empty(size, dtype=np.int64)
    filled = 0
    while filled < size:
        need = size - filled
        half = (need + 1) // 2
        raw = np.frombuffer(secrets.token_bytes(16 * half), dtype="<u8") >> np.uint64(11)
        u = (raw.astype(np.float64) + 1.0) / 2.0**53  # uniform in (0, 1]
        radius = np.sqrt(-2.0 * np.log(u[:half]))
        angle = 2.0 * np.pi * u[half:]
        z = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])
        e = np.rint(sigma * z).astype(np.int64)
        good = e[np.abs(e) <= bound]
        take = min(len(good), need)
        out[filled : filled + take] = good[:take]
        filled += take
    return out


# --------------------------------------------------------------------------- keys and ciphertexts
@dataclass(frozen=True, eq=False)
class LWESecretKey:
    """Secret s in {-1,0,1}^n, plus the fixed (a0, e0) used only by ``Regime.FIXED_R``."""

    params: LWEParams
    s: np.ndarray = field(repr=False)
    fixed_a: np.ndarray = field(repr=False)
    fixed_e: int = field(repr=False)
    fingerprint: str

    def __repr__(self) -> str:
        return f"LWESecretKey(params={self.params.name}, fingerprint={self.fingerprint})"


@dataclass(frozen=True, eq=False)
class LWECiphertext:
    """An array of LWE ciphertexts: ``a`` has shape (*shape, n), ``b`` has shape ``shape``.

    ``noise_bound`` is a worst-case bound on |e| over all elements; decryption is
    guaranteed while 2 * noise_bound < Delta.
    """

    a: np.ndarray = field(repr=False)
    b: np.ndarray = field(repr=False)
    params: LWEParams
    key_fingerprint: str
    noise_bound: int
    regime: Regime

    __array_ufunc__ = None  # make `ndarray + ct` call ct.__radd__ instead of looping over ct

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.b.shape)

    @property
    def size(self) -> int:
        return int(self.b.size)

    @property
    def noise_headroom(self) -> int:
        """How much the noise bound may still grow: largest bound allowed minus the current one."""
        return (self.params.delta - 1) // 2 - self.noise_bound

    def __repr__(self) -> str:
        return (
            f"LWECiphertext(shape={self.shape}, params={self.params.name}, regime={self.regime.value}, "
            f"noise_bound={self.noise_bound}, key={self.key_fingerprint})"
        )

    def __add__(self, other: "LWECiphertext | IntArrayLike") -> "LWECiphertext":
        if isinstance(other, LWECiphertext):
            return add(self, other)
        return add_plain(self, other)

    __radd__ = __add__

    def __sub__(self, other: "LWECiphertext | IntArrayLike") -> "LWECiphertext":
        if isinstance(other, LWECiphertext):
            return add(self, mul_plain(other, -1))
        return add_plain(self, _negate_plain(other, self.params.t))

    def __neg__(self) -> "LWECiphertext":
        return mul_plain(self, -1)

    def __mul__(self, k: IntArrayLike) -> "LWECiphertext":
        if isinstance(k, LWECiphertext):
            return NotImplemented  # ciphertext x ciphertext needs relinearisation: not in this scheme
        return mul_plain(self, k)

    __rmul__ = __mul__


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.flags.writeable:
        x.setflags(write=False)
    return x


def keygen(params: LWEParams = DEFAULT) -> LWESecretKey:
    """Sample a ternary secret key (and the FIXED_R pair) from the OS CSPRNG."""
    s = _readonly(_ternary(params.n))
    fixed_a = _readonly(_uniform_mod(params.q, params.n))
    fixed_e = int(_rounded_gaussian(params.sigma, params.error_bound, 1)[0])
    # A random identifier, not a hash of s: it reveals nothing about the key.
    key = LWESecretKey(params, s, fixed_a, fixed_e, fingerprint=secrets.token_hex(8))
    secret_scan.register_secret("lwe", "s", key.fingerprint, s, sequence=True)
    return key


# --------------------------------------------------------------------------- plaintext handling
def _integer_array(values: IntArrayLike, what: str, t: int) -> np.ndarray:
    """Values as an integer (or object-of-int) ndarray; PlaintextRangeError for anything else."""
    try:
        arr = as_array(values)
    except (ValueError, TypeError, OverflowError) as exc:
        raise PlaintextRangeError(f"{what} are not an array of integers: {exc}") from None
    if arr.dtype == object:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr.flat):
            raise PlaintextRangeError(f"{what} must be integers in Z_t = [0, {t}); got non-integer objects")
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise PlaintextRangeError(
            f"{what} must have an integer dtype (plaintext space Z_t = [0, {t})); got dtype {arr.dtype}"
        )
    return arr


def _reduce_mod_t(values: IntArrayLike, what: str, t: int) -> np.ndarray:
    """Integers reduced into [0, t) as int64 (numpy and Python % both give a non-negative result)."""
    return np.asarray(_integer_array(values, what, t) % t).astype(np.int64)


def _negate_plain(values: IntArrayLike, t: int) -> np.ndarray:
    return (-_reduce_mod_t(values, "plaintext", t)) % t


def _check_regime(regime: "Regime | str") -> Regime:
    r = Regime.parse(regime)
    if r not in SUPPORTED_REGIMES:
        names = ", ".join(x.value for x in SUPPORTED_REGIMES)
        raise ParameterError(f"LWE encryption does not support regime {r.value!r}; use one of: {names}")
    return r


def _check_key(key: LWESecretKey, ct: LWECiphertext) -> None:
    if not isinstance(ct, LWECiphertext):
        raise CiphertextError(f"expected an LWECiphertext, got {type(ct).__name__}")
    if ct.params != key.params:
        raise WrongKeyError(
            f"ciphertext uses parameter set {ct.params.name!r} but the key is for {key.params.name!r}"
        )
    if ct.key_fingerprint != key.fingerprint:
        raise WrongKeyError(
            f"ciphertext was encrypted under key {ct.key_fingerprint}, not under the given key {key.fingerprint}"
        )


def _check_compatible(c1: LWECiphertext, c2: LWECiphertext) -> None:
    if c1.params != c2.params:
        raise WrongKeyError(
            f"cannot combine ciphertexts under different parameter sets ({c1.params.name!r} vs {c2.params.name!r})"
        )
    if c1.key_fingerprint != c2.key_fingerprint:
        raise WrongKeyError(
            f"cannot combine ciphertexts under different keys ({c1.key_fingerprint} vs {c2.key_fingerprint})"
        )


def _checked_bound(params: LWEParams, bound: int, operation: str) -> int:
    """Return ``bound`` if 2 * bound < Delta, else raise NoiseBudgetError naming the operation."""
    if 2 * bound >= params.delta:
        raise NoiseBudgetError(
            f"{operation}: the noise bound would become {bound}, reaching Delta/2 = {params.delta / 2:g} "
            f"(params {params.name!r}); the result could decrypt wrongly"
        )
    return bound


# --------------------------------------------------------------------------- scheme
def encrypt(key: LWESecretKey, messages: IntArrayLike, regime: "Regime | str" = Regime.RANDOMIZED) -> LWECiphertext:
    """Encrypt an integer array with entries in [0, t), any shape, elementwise."""
    r = _check_regime(regime)
    p = key.params
    m = _integer_array(messages, "LWE messages", p.t)
    if m.size and (m.min() < 0 or m.max() >= p.t):
        raise PlaintextRangeError(
            f"LWE messages must lie in [0, t) = [0, {p.t}); got values in [{m.min()}, {m.max()}]"
        )
    m = m.astype(np.int64)
    shape = m.shape
    if r is Regime.RANDOMIZED:
        a = _uniform_mod(p.q, m.size * p.n).reshape(shape + (p.n,))
        e = _rounded_gaussian(p.sigma, p.error_bound, m.size).reshape(shape)
        b = (np.asarray(a @ key.s) + e + p.delta * m) % p.q
    else:  # FIXED_R: the same (a0, e0) for every element -> deterministic, NOT secure
        a = np.broadcast_to(key.fixed_a, shape + (p.n,))  # a read-only view, no copy
        b = (int(key.fixed_a @ key.s) + key.fixed_e + p.delta * m) % p.q
    return LWECiphertext(_readonly(a), _readonly(b), p, key.fingerprint, p.error_bound, r)


def _phase(key: LWESecretKey, ct: LWECiphertext) -> np.ndarray:
    """b - <a, s> mod q = Delta * m + e (mod q)."""
    return np.asarray(ct.b - ct.a @ key.s) % ct.params.q


def decrypt(key: LWESecretKey, ct: LWECiphertext) -> np.ndarray:
    """Recover the int64 plaintext array (values in [0, t)); WrongKeyError for a foreign ciphertext."""
    _check_key(key, ct)
    p = ct.params
    return np.asarray(((_phase(key, ct) + p.delta // 2) // p.delta) % p.t, dtype=np.int64)


def measure_noise(key: LWESecretKey, ct: LWECiphertext) -> np.ndarray:
    """The actual errors e (centred, int64) of a ciphertext that still decrypts correctly."""
    m = decrypt(key, ct)
    p = ct.params
    e = (_phase(key, ct) - p.delta * m) % p.q
    return np.where(e >= p.q // 2, e - p.q, e).astype(np.int64)


def add(c1: LWECiphertext, c2: LWECiphertext) -> LWECiphertext:
    """E(m1) + E(m2) -> E((m1 + m2) mod t); shapes broadcast; noise bounds add."""
    _check_compatible(c1, c2)
    p = c1.params
    bound = _checked_bound(p, c1.noise_bound + c2.noise_bound, "add")
    regime = Regime.FIXED_R if c1.regime is c2.regime is Regime.FIXED_R else Regime.RANDOMIZED
    a = (c1.a + c2.a) % p.q
    b = (c1.b + c2.b) % p.q
    return LWECiphertext(_readonly(a), _readonly(b), p, c1.key_fingerprint, bound, regime)


def add_plain(ct: LWECiphertext, values: IntArrayLike) -> LWECiphertext:
    """E(m) + k -> E((m + k) mod t) for integers k (any sign, broadcast); noise unchanged."""
    p = ct.params
    k = _reduce_mod_t(values, "plaintext addend", p.t)
    b = (ct.b + p.delta * k) % p.q
    a = ct.a if b.shape == ct.b.shape else np.broadcast_to(ct.a, b.shape + (p.n,))
    return LWECiphertext(_readonly(a), _readonly(b), p, ct.key_fingerprint, ct.noise_bound, ct.regime)


def mul_plain(ct: LWECiphertext, k: IntArrayLike) -> LWECiphertext:
    """k * E(m) -> E((k * m) mod t) for integers k (scalar or array, any sign).

    k is first reduced to its centred residue k' in [-t/2, t/2): since Delta * t = q,
    k' * E(m) decrypts to the same k * m mod t with the smaller noise |k'| * bound.
    """
    p = ct.params
    kc = _reduce_mod_t(k, "plaintext multiplier", p.t)
    kc = np.where(kc >= p.t - p.t // 2, kc - p.t, kc)  # centred residue
    worst = int(np.abs(kc).max()) if kc.size else 0
    bound = _checked_bound(p, ct.noise_bound * worst, f"mul_plain by k with max |k mod+- t| = {worst}")
    a = (ct.a * kc[..., np.newaxis]) % p.q
    b = (ct.b * kc) % p.q
    return LWECiphertext(_readonly(a), _readonly(b), p, ct.key_fingerprint, bound, ct.regime)


def serialized_nbytes(ct: LWECiphertext) -> int:
    """Bytes to store ``ct`` packed: size * (n + 1) * ceil(log2(q) / 8).

    Divide by the plaintext bytes (1 per uint8 pixel) for the ciphertext expansion;
    DEFAULT gives 1025 * 4 = 4100 bytes per element.
    """
    return ct.size * ct.params.ciphertext_nbytes_per_element


def dot_plain(ct: LWECiphertext, weights: IntArrayLike) -> LWECiphertext:
    """W @ E(x) -> E(W @ x mod t) for an integer matrix W of shape (K, d) and ct of shape (d,), or of
    shape (batch, d) for a batch of vectors (one per row: result shape (batch, K)).

    The server-side step of a linear layer: a' = W A, b' = W b (mod q).  Each output's noise
    bound is sum_j |w_kj'| * bound (centred residues w'), checked like every other operation.
    """
    p = ct.params
    if ct.b.ndim not in (1, 2):
        raise ParameterError(f"dot_plain needs a ciphertext vector (d,) or batch (batch, d), got shape {ct.shape}")
    w = _reduce_mod_t(weights, "weight matrix", p.t)
    if w.ndim != 2 or w.shape[1] != ct.b.shape[-1]:
        raise ParameterError(f"weights must have shape (K, {ct.b.shape[-1]}), got {w.shape}")
    w = np.where(w >= p.t - p.t // 2, w - p.t, w).astype(np.int64)  # centred residues
    worst = int(np.abs(w).sum(axis=1).max()) if w.size else 0
    bound = _checked_bound(p, ct.noise_bound * worst, f"dot_plain with max row |W|_1 = {worst}")
    if ct.b.shape[-1] * (p.t // 2) * p.q >= 2**63:  # each sum of d products |w| * residue must fit int64
        raise ParameterError(f"dot_plain over {ct.b.shape[-1]} terms could overflow int64 with q = {p.q}, t = {p.t}")
    a = (w @ (np.asarray(ct.a) % p.q)) % p.q
    b = ((np.asarray(ct.b) % p.q) @ w.T) % p.q
    return LWECiphertext(_readonly(a), _readonly(b), p, ct.key_fingerprint, bound, ct.regime)


# --------------------------------------------------------------------------- serialization
CT_MAGIC = b"PPDL-LWE-CIPHERTEXT\n"
CT_FORMAT = "ppdl-lwe-ciphertext-v1"


def _params_header(p: LWEParams) -> dict:
    return {"n": p.n, "q": p.q, "t": p.t, "sigma": p.sigma, "name": p.name}


def to_bytes(ct: LWECiphertext) -> bytes:
    """Header (key fingerprint, parameter set, regime, shape, noise bound) then a and b as
    little-endian uint32 residues.  No integrity: seal it with ``crypto.bundle`` for that."""
    header = {"format": CT_FORMAT, "key_fingerprint": ct.key_fingerprint, "params": _params_header(ct.params),
              "regime": ct.regime.value, "shape": list(ct.shape), "noise_bound": int(ct.noise_bound)}
    a = np.ascontiguousarray(np.asarray(ct.a) % ct.params.q, dtype="<u4")
    b = np.ascontiguousarray(np.asarray(ct.b) % ct.params.q, dtype="<u4")
    return serialization.pack(CT_MAGIC, header, a.tobytes() + b.tobytes())


def from_bytes(data: bytes, key: LWESecretKey) -> LWECiphertext:
    """Load what ``to_bytes`` wrote, for `key`: WrongKeyError when it belongs to another key or
    parameter set, CiphertextError for anything malformed (naming the defect)."""
    what = "serialized LWE ciphertext"
    header, body = serialization.unpack(data, CT_MAGIC, what)
    if serialization.field(header, "format", str, what) != CT_FORMAT:
        raise CiphertextError(f"{what} has format {header['format']!r}, expected {CT_FORMAT!r}")
    if serialization.field(header, "key_fingerprint", str, what) != key.fingerprint:
        raise WrongKeyError(f"{what} was encrypted under key {header['key_fingerprint']!r:.24}, "
                            f"not under the given key {key.fingerprint}")
    p = key.params
    if serialization.field(header, "params", dict, what) != _params_header(p):
        raise WrongKeyError(f"{what} uses another parameter set than the key's {p.name!r}")
    try:
        regime = _check_regime(serialization.field(header, "regime", str, what))
    except ValueError as exc:
        raise CiphertextError(f"{what} header field 'regime': {exc}") from None
    shape = serialization.shape_field(header, what, max_items=(1 << 30) // (p.n + 1))
    bound = serialization.field(header, "noise_bound", int, what)
    if not p.error_bound <= bound <= (p.delta - 1) // 2:
        raise CiphertextError(f"{what} header field 'noise_bound' = {bound} outside "
                              f"[{p.error_bound}, {(p.delta - 1) // 2}]")
    count = math.prod(shape)
    if len(body) != 4 * count * (p.n + 1):
        raise CiphertextError(f"{what} body has {len(body)} bytes, shape {list(shape)} needs "
                              f"{4 * count * (p.n + 1)} (truncated or padded)")
    values = np.frombuffer(body, dtype="<u4").astype(np.int64)
    if values.size and values.max() >= p.q:
        raise CiphertextError(f"{what} holds residues >= q = {p.q}: corrupt")
    a = values[: count * p.n].reshape(shape + (p.n,))
    b = values[count * p.n:].reshape(shape)
    return LWECiphertext(_readonly(a), _readonly(b), p, key.fingerprint, bound, regime)
