"""CKKS with TenSEAL: parameter sets checked against the HomomorphicEncryption.org table,
contexts (private for the key holder, public for the server), sizes, and clear errors.

CKKS encrypts vectors of real numbers approximately: every multiplication is followed by a
*rescale* that divides by the next prime of the coefficient-modulus chain, so a chain
``[q0, p1, ..., pL, special]`` allows ``L`` multiplications (``L`` = number of middle primes).
The middle primes should have the bit size of the scale (otherwise the scale drifts after each
rescale); ``q0`` must hold the final scale plus the integer part of the result; the last prime is
the special prime used for key switching (relinearisation, rotations).

Security follows the HomomorphicEncryption.org standard (Albrecht et al. 2018, table 1, ternary or
uniform secret, classical 128-bit): the total ``sum(coeff_mod_bit_sizes)`` may not exceed
:data:`HE_STANDARD_MAX_LOGQ` for the ring.  SEAL itself refuses to build a context above that
table, so ``insecure=True`` is only a label: it marks parameter sets picked for speed in tests and
teaching, never reviewed, and every description of them says ``INSECURE (teaching/test only)``.

Parameters are validated once, by :func:`validate_params` (ring, primes, scale against the chain);
the security a result reports is read from the context actually used (:func:`security_of_context`,
:func:`describe_context`, :func:`check_context`), never from an argument alone.

Every serialized ciphertext carries the fingerprint of the context's public key
(:func:`context_fingerprint`): :func:`serialize_vector` / :func:`seal_ciphertext` write it and
:func:`vector_from` / :func:`open_ciphertext` refuse bytes made under another key with a
``WrongKeyError`` (instead of decrypting them to garbage).  The fingerprint identifies the key; it
is not a MAC: it does not stop someone from altering a ciphertext's values.

TenSEAL draws its own randomness (SEAL's PRNG); nothing here seeds the cryptography.
"""
from __future__ import annotations

import contextlib
import hashlib
import resource
import weakref
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import tenseal as ts
import tenseal.sealapi  # noqa: F401  (registers the SEAL types the chain inspection returns)

from ppdl_utils.errors import CiphertextError, NoiseBudgetError, PPDLError, WrongKeyError

__all__ = [
    "HE_STANDARD_MAX_LOGQ", "INSECURE_LABEL", "CKKSParams", "CNN_8192", "MLP_8192", "TRAINING_8192",
    "InsecureParametersError", "CKKSParameterError", "ScaleMismatchError", "MissingKeyError",
    "MissingSecretKeyError", "MissingGaloisKeysError", "MissingRelinKeysError", "SecretKeyOnServerError",
    "DepthExhaustedError", "security_bits", "describe", "validate_params", "insecure_test_params",
    "make_context", "public_context", "load_context", "require_public", "require_galois",
    "context_bytes", "ciphertext_bytes", "chain_bits", "remaining_depth", "ensure_depth",
    "ckks_errors", "decrypt", "checked_mul", "check_same_scale", "output_bound", "peak_rss_mb",
    "circuit_weights", "balance_scale", "MIN_SCALE_BITS", "context_fingerprint", "seal_ciphertext",
    "open_ciphertext", "serialize_vector", "vector_from", "security_of_context", "context_chain",
    "check_context", "describe_context",
]

#: Maximal total coefficient-modulus bits for 128-bit classical security (HE standard, table 1).
HE_STANDARD_MAX_LOGQ: dict[int, int] = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}
INSECURE_LABEL = "INSECURE (teaching/test only)"
_MAX_PRIME_BITS = 60  # SEAL's limit on one prime of the chain
#: Smallest scale accepted: fresh CKKS noise is ~2^10 to 2^14, so a 2^20 scale leaves ~1e-2 precision.
MIN_SCALE_BITS = 20


class InsecureParametersError(PPDLError, ValueError):
    """The coefficient modulus is larger than the 128-bit HE-standard table allows for the ring."""


class CKKSParameterError(PPDLError, ValueError):
    """A CKKS parameter (ring, chain, scale) is malformed; the message names it."""


class ScaleMismatchError(CKKSParameterError):
    """Scale and modulus chain do not fit together, or two ciphertexts carry different scales."""


class MissingKeyError(PPDLError, ValueError):
    """The context lacks a key the operation needs."""


class MissingSecretKeyError(MissingKeyError):
    """Decryption was asked of a context without the secret key (a public / server context)."""


class MissingGaloisKeysError(MissingKeyError):
    """A rotation-based operation (sum, dot, matmul, conv2d_im2col) on a context without Galois keys."""


class MissingRelinKeysError(MissingKeyError):
    """A ciphertext-ciphertext multiplication on a context without relinearisation keys."""


class SecretKeyOnServerError(PPDLError, ValueError):
    """A server-side function was handed a context that holds the secret key."""


class DepthExhaustedError(NoiseBudgetError):
    """A multiplication would need a modulus-chain level the ciphertext no longer has."""


@dataclass(frozen=True)
class CKKSParams:
    """One CKKS parameter set: ring dimension N, modulus chain (bits per prime), scale 2**bits."""

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    global_scale_bits: int
    name: str = "custom"
    insecure: bool = False
    circuit: str = ""  # multiplication pattern for balance_scale, e.g. "ppspsp"; "" keeps 2**scale_bits
    notes: str = field(default="", compare=False)

    @property
    def total_bits(self) -> int:
        """log2 of the whole coefficient modulus (what the security table bounds)."""
        return int(sum(self.coeff_mod_bit_sizes))

    @property
    def n_slots(self) -> int:
        """Real numbers one ciphertext holds (N / 2)."""
        return self.poly_modulus_degree // 2

    @property
    def max_multiplications(self) -> int:
        """Multiplicative depth: one rescale per middle prime."""
        return max(len(self.coeff_mod_bit_sizes) - 2, 0)


def security_bits(params: CKKSParams) -> int:
    """128 when the chain fits the HE-standard table for the ring, 0 for ``insecure`` sets.

    Raises:
        InsecureParametersError: the chain is too long for the ring (names ``coeff_mod_bit_sizes``).
        CKKSParameterError: the ring is not in the table (names ``poly_modulus_degree``).
    """
    if not isinstance(params, CKKSParams):
        raise CKKSParameterError(f"params must be a CKKSParams, got {type(params).__name__}")
    if params.insecure:
        return 0
    limit = HE_STANDARD_MAX_LOGQ.get(params.poly_modulus_degree)
    if limit is None:
        raise CKKSParameterError(f"poly_modulus_degree={params.poly_modulus_degree} is not in the HE-standard "
                                 f"table {sorted(HE_STANDARD_MAX_LOGQ)}")
    if params.total_bits > limit:
        raise InsecureParametersError(
            f"coeff_mod_bit_sizes={list(params.coeff_mod_bit_sizes)} totals {params.total_bits} bits, above the "
            f"{limit} bits the HE standard allows for 128-bit security at poly_modulus_degree="
            f"{params.poly_modulus_degree}")
    return 128


def describe(params: CKKSParams) -> str:
    """One line: name, ring, chain, scale, depth and security label (``INVALID`` when
    :func:`validate_params` refuses the set)."""
    try:
        validate_params(params)
    except CKKSParameterError as exc:
        return f"{getattr(params, 'name', 'params')}: INVALID ({exc})"
    if params.insecure:
        label = INSECURE_LABEL
    else:
        try:
            label = f"{security_bits(params)}-bit classical (HE standard)"
        except (InsecureParametersError, CKKSParameterError) as exc:
            label = f"INSECURE: {exc}"
    return (f"{params.name}: N={params.poly_modulus_degree}, chain={list(params.coeff_mod_bit_sizes)} "
            f"({params.total_bits} bits), scale=2^{params.global_scale_bits}, "
            f"depth={params.max_multiplications}, {label}")


def validate_params(params: CKKSParams) -> None:
    """Structural checks SEAL would otherwise answer with an opaque message.

    Raises:
        CKKSParameterError / ScaleMismatchError naming the parameter at fault.
    """
    if not isinstance(params, CKKSParams):
        raise CKKSParameterError(f"params must be a CKKSParams, got {type(params).__name__}")
    n, chain, scale = params.poly_modulus_degree, params.coeff_mod_bit_sizes, params.global_scale_bits

    def is_int(value: object) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))

    if not is_int(n):
        raise CKKSParameterError(f"poly_modulus_degree={n!r:.40} must be an integer")
    if not isinstance(chain, (tuple, list)) or not all(is_int(b) for b in chain):
        raise CKKSParameterError(f"coeff_mod_bit_sizes={chain!r:.60} must be a sequence of integers (bits per prime)")
    if not is_int(scale):
        raise ScaleMismatchError(f"global_scale_bits={scale!r:.40} must be an integer")
    chain = [int(b) for b in chain]
    if not MIN_SCALE_BITS <= scale <= _MAX_PRIME_BITS:
        raise ScaleMismatchError(f"global_scale_bits={scale} must be in {MIN_SCALE_BITS}..{_MAX_PRIME_BITS}: a smaller "
                                 "scale drowns the values in the encryption noise")
    if n not in HE_STANDARD_MAX_LOGQ:
        raise CKKSParameterError(f"poly_modulus_degree={n} must be one of {sorted(HE_STANDARD_MAX_LOGQ)}")
    if len(chain) < 2:
        raise CKKSParameterError(f"coeff_mod_bit_sizes={chain} needs at least two primes (data + special)")
    if any(not 10 <= b <= _MAX_PRIME_BITS for b in chain):
        raise CKKSParameterError(f"coeff_mod_bit_sizes={chain}: every prime must have 10..{_MAX_PRIME_BITS} bits")
    if scale >= chain[0]:
        raise ScaleMismatchError(f"global_scale_bits={scale} must be below the first prime ({chain[0]} bits): "
                                 f"the first prime holds the final scale plus the integer part")
    middle = chain[1:-1]
    if any(b != scale for b in middle):
        raise ScaleMismatchError(f"global_scale_bits={scale} differs from the middle primes {middle} of "
                                 f"coeff_mod_bit_sizes: each rescale divides by one of them, so the scale drifts")
    if chain[-1] < max(chain[:-1]):
        raise CKKSParameterError(f"coeff_mod_bit_sizes={chain}: the last (special) prime should be at least "
                                 f"as large as every other prime, or key switching adds large noise")


#: Rung 4 (CNN on encrypted pixels): conv, pack (mask), square, dense, square, dense = all 6 levels; 218 bits.
CNN_8192 = CKKSParams(8192, (31, 26, 26, 26, 26, 26, 26, 31), 26, "CNN_8192", circuit="ppspsp")
#: Rung 3 (MLP head on encrypted features): dense, square, dense = 3 levels; 190 of 218 bits.
MLP_8192 = CKKSParams(8192, (50, 30, 30, 30, 50), 30, "MLP_8192", circuit="psp")
#: Rung 5 (encrypted training): dot (1), degree-3 sigmoid (2), broadcast gradient (2) = 5 levels; 218 bits.
#: TenSEAL's tutorial chain (40, 21 x 6, 40) at scale 2^21 drifts by > 1 per weight within 2 epochs once the
#: step size is folded into the polynomial; 2^26 (balanced, see balance_scale) keeps the weights within
#: ~0.01 of the plaintext twin.
TRAINING_8192 = CKKSParams(8192, (40, 26, 26, 26, 26, 26, 48), 26, "TRAINING_8192", circuit="psspp")


def insecure_test_params(poly_modulus_degree: int = 4096, depth: int = 1, scale_bits: int = 30,
                         edge_bits: int = 39) -> CKKSParams:
    """A small, fast parameter set for unit tests, labelled ``INSECURE (teaching/test only)``.

    It must still fit the HE table, because SEAL refuses larger chains: at N=4096 (109 bits) the
    default is depth 1 at scale 2^30 (errors ~1e-5); depth 2 needs 20-bit primes, whose errors reach
    ~1e-2 (fresh noise is ~1e4 / 2^20).
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise CKKSParameterError(f"depth={depth!r:.40} must be an integer >= 0")
    chain = (edge_bits,) + (scale_bits,) * depth + (edge_bits,)
    return CKKSParams(poly_modulus_degree, chain, scale_bits, f"TEST_{poly_modulus_degree}_d{depth}", insecure=True)


def make_context(params: CKKSParams, galois: bool = True, relin: bool = True,
                 n_threads: int | None = 1) -> ts.Context:
    """The key holder's private context (secret key inside) for ``params``.

    ``n_threads=1``: one core, the unit every cost of the privacy ladder is stated in (None: TenSEAL's
    default, every core).

    Raises:
        InsecureParametersError: the chain exceeds the table (SEAL would refuse it even if ``insecure``).
        CKKSParameterError / ScaleMismatchError: see :func:`validate_params`.
    """
    validate_params(params)
    security_bits(params)
    limit = HE_STANDARD_MAX_LOGQ[params.poly_modulus_degree]
    if params.total_bits > limit:  # insecure-labelled sets get here; SEAL enforces the table itself
        raise InsecureParametersError(f"coeff_mod_bit_sizes totals {params.total_bits} bits > {limit}: SEAL "
                                      f"refuses to build contexts above the 128-bit table, even for tests")
    if n_threads is not None and (not isinstance(n_threads, int) or isinstance(n_threads, bool) or n_threads < 1):
        raise CKKSParameterError(f"n_threads={n_threads!r:.40} must be a positive int or None")
    try:
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, params.poly_modulus_degree,
                         coeff_mod_bit_sizes=[int(b) for b in params.coeff_mod_bit_sizes], n_threads=n_threads)
    except (ValueError, RuntimeError, TypeError) as exc:  # SEAL: e.g. no prime of that size = 1 mod 2N
        raise CKKSParameterError(f"SEAL refuses poly_modulus_degree={params.poly_modulus_degree}, coeff_mod_bit_sizes="
                                 f"{list(params.coeff_mod_bit_sizes)}: {exc}") from None
    ctx.global_scale = 2.0 ** params.global_scale_bits
    if params.circuit:
        balance_scale(ctx, params.circuit)
    if not relin:  # TenSEAL always creates relinearisation keys; reload without them
        ctx = ts.context_from(ctx.serialize(save_secret_key=True, save_relin_keys=False), n_threads=n_threads)
    if galois:
        ctx.generate_galois_keys()
    return ctx


def circuit_weights(circuit: str) -> list[int]:
    """Weight of each rescale in ``circuit`` ("p": times a plaintext, "s": square), in order.

    A relative scale error made at one rescale is doubled by every later square, so rescale ``i``
    weighs ``2 ** (squares after i)``: ``"ppspsp"`` -> ``[4, 4, 2, 2, 1, 1]``.
    """
    if not circuit or set(circuit) - {"p", "s"}:
        raise CKKSParameterError(f"circuit={circuit!r}: expected a string of 'p' (plain multiply) and 's' (square)")
    return [2 ** circuit[i + 1:].count("s") for i in range(len(circuit))]


def balance_scale(ctx: ts.Context, circuit: str) -> float:
    """Set the context's scale so TenSEAL's rescale drift cancels at the end of ``circuit``.

    Why: after each rescale TenSEAL *declares* the scale to be the global scale, although the true
    scale became ``scale**2 / q_i``; SEAL's 26-bit primes (``= 1 mod 2N``) lie up to 1 % below 2^26,
    so a 6-level CNN ends 3-4 % off.  The log-weighted mean of the primes in the order they are
    dropped (last data prime first) makes the errors cancel to ~0.1 % for that circuit.
    Returns the new scale (it travels with the public context).
    """
    weights = circuit_weights(circuit)
    primes = [q.value() for q in ctx.seal_context().data.key_context_data().parms().coeff_modulus()][1:-1]
    if len(weights) > len(primes):
        raise DepthExhaustedError(f"circuit={circuit!r} needs {len(weights)} levels; the chain has {len(primes)}")
    used = np.log(np.array(primes[::-1][:len(weights)], dtype=np.float64))
    ctx.global_scale = float(np.exp(np.dot(weights, used) / sum(weights)))
    return ctx.global_scale


def _require_context(ctx: object, parameter: str = "ctx") -> None:
    if not isinstance(ctx, ts.Context):
        raise CKKSParameterError(f"{parameter} must be a TenSEAL context, got {type(ctx).__name__}")


def _require_vector(vector: object, parameter: str = "vector") -> None:
    if not isinstance(vector, ts.CKKSVector):
        raise CiphertextError(f"{parameter} must be a CKKS vector (vector_from(ctx, bytes)), "
                              f"got {type(vector).__name__}")


def public_context(ctx: ts.Context) -> bytes:
    """Serialized copy of ``ctx`` without the secret key: exactly what the server receives."""
    _require_context(ctx)
    return ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=ctx.has_galois_keys(),
                         save_relin_keys=ctx.has_relin_keys())


def load_context(data: bytes, n_threads: int | None = 1, parameter: str = "context") -> ts.Context:
    """Deserialize a context (the server side of :func:`public_context`); one core unless asked.

    Raises:
        CiphertextError: `data` is not bytes or not a serialized CKKS context (names `parameter`).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CiphertextError(f"{parameter} must be the bytes of public_context(ctx), got {type(data).__name__}")
    try:
        ctx = ts.context_from(bytes(data), n_threads=n_threads)
        scheme = ctx.seal_context().data.key_context_data().parms().scheme()
    except Exception as exc:  # TenSEAL/SEAL/protobuf raise many types on hostile bytes
        raise CiphertextError(f"{parameter} ({len(data)} bytes) is not a serialized TenSEAL context: "
                              f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not str(scheme).upper().endswith("CKKS"):
        raise CiphertextError(f"{parameter} is a TenSEAL context of another scheme, not CKKS")
    return ctx


# --------------------------------------------------------------------------- key identity of ciphertexts
CIPHERTEXT_MAGIC = b"PPDL-CKKS-CT1\n"
_FINGERPRINT_BYTES = 32
_FINGERPRINTS: "weakref.WeakKeyDictionary[ts.Context, str]" = weakref.WeakKeyDictionary()


def context_fingerprint(ctx: ts.Context) -> str:
    """SHA-256 (hex) of the context's serialized public key: the same for the key holder's private
    context and the server's public copy, different for every other key.  Public; safe to print."""
    if not isinstance(ctx, ts.Context):
        raise CKKSParameterError(f"expected a TenSEAL context, got {type(ctx).__name__}")
    try:
        return _FINGERPRINTS[ctx]
    except (KeyError, TypeError):
        pass
    with ckks_errors("context_fingerprint"):
        blob = ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=False,
                             save_relin_keys=False)
    fingerprint = hashlib.sha256(blob).hexdigest()
    with contextlib.suppress(TypeError):
        _FINGERPRINTS[ctx] = fingerprint
    return fingerprint


def seal_ciphertext(data: bytes, fingerprint: str) -> bytes:
    """``magic | sha256(public key) | TenSEAL bytes``: a serialized ciphertext that names its key."""
    try:
        raw = bytes.fromhex(fingerprint) if isinstance(fingerprint, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != _FINGERPRINT_BYTES or not isinstance(data, (bytes, bytearray)):
        raise CiphertextError("seal_ciphertext needs TenSEAL bytes and a 64-hex-digit context_fingerprint")
    return CIPHERTEXT_MAGIC + raw + bytes(data)


def open_ciphertext(blob: bytes, key: "ts.Context | str", parameter: str = "ciphertext") -> bytes:
    """The TenSEAL bytes of a :func:`seal_ciphertext` blob after checking that it was made under
    `key` (a context or a fingerprint).

    Raises:
        CiphertextError: not a sealed CKKS ciphertext (raw TenSEAL bytes, truncated, not bytes).
        WrongKeyError: made under another key (the scores would decrypt to garbage).
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise CiphertextError(f"{parameter} must be bytes, got {type(blob).__name__}")
    blob = bytes(blob)
    head = len(CIPHERTEXT_MAGIC) + _FINGERPRINT_BYTES
    if not blob.startswith(CIPHERTEXT_MAGIC) or len(blob) <= head:
        raise CiphertextError(f"{parameter} ({len(blob)} bytes) is not a CKKS ciphertext of this kit "
                              "(no key fingerprint header; make it with serialize_vector)")
    want = key if isinstance(key, str) else context_fingerprint(key)
    have = blob[len(CIPHERTEXT_MAGIC):head].hex()
    if have != want:
        raise WrongKeyError(f"{parameter} was encrypted under CKKS key {have[:16]}..., not {want[:16]}... "
                            "(another context): it cannot be used with this one")
    return blob[head:]


def serialize_vector(vector: ts.CKKSVector, ctx: "ts.Context | None" = None) -> bytes:
    """A CKKS vector's bytes with its key fingerprint (`ctx`: its context, if at hand: saves a lookup)."""
    return seal_ciphertext(vector.serialize(), context_fingerprint(ctx if ctx is not None else vector.context()))


def vector_from(ctx: ts.Context, blob: bytes, parameter: str = "ciphertext") -> ts.CKKSVector:
    """Deserialize a :func:`serialize_vector` blob linked to `ctx`, checking its key first.

    Raises:
        WrongKeyError / CiphertextError: see :func:`open_ciphertext`; hostile bytes that TenSEAL
        cannot parse are a CiphertextError naming `parameter`.
    """
    data = open_ciphertext(blob, ctx, parameter)
    try:
        vector = ts.ckks_vector_from(ctx, data)
        parts, size = len(vector.ciphertext()), vector.size()
    except Exception as exc:  # protobuf / SEAL errors of many types on hostile bytes
        raise CiphertextError(f"{parameter} is not a well-formed CKKS vector: {type(exc).__name__}: "
                              f"{str(exc)[:200]}") from None
    if parts < 1 or size < 1:  # protobuf parses many short byte strings as an empty message
        raise CiphertextError(f"{parameter} holds no ciphertext ({len(data)} bytes parsed as an empty vector)")
    return vector


# --------------------------------------------------------------------------- what a context is
def context_chain(ctx: ts.Context) -> tuple[int, tuple[int, ...]]:
    """(ring dimension N, bits of each prime of the chain) read from SEAL: what the context really is."""
    _require_context(ctx)
    with ckks_errors("context_chain"):
        parms = ctx.seal_context().data.key_context_data().parms()
        return int(parms.poly_modulus_degree()), tuple(q.bit_count() for q in parms.coeff_modulus())


def security_of_context(ctx: ts.Context) -> int:
    """Classical security (bits) of the context actually used: 128 when its whole modulus fits the
    HE-standard table for its ring (SEAL builds nothing else), 0 otherwise."""
    n, chain = context_chain(ctx)
    limit = HE_STANDARD_MAX_LOGQ.get(n)
    return 128 if limit is not None and sum(chain) <= limit else 0


def check_context(ctx: ts.Context, params: CKKSParams, parameter: str = "ctx") -> None:
    """Refuse a context that is not built from `params` (ring or chain differ): a cost row or a
    security label must describe the context that ran, not the argument."""
    n, chain = context_chain(ctx)
    if n != params.poly_modulus_degree or chain != tuple(int(b) for b in params.coeff_mod_bit_sizes):
        raise CKKSParameterError(f"{parameter} has N={n}, chain={list(chain)}, but params {params.name} says "
                                 f"N={params.poly_modulus_degree}, chain={list(params.coeff_mod_bit_sizes)}: "
                                 "pass the parameters the context was made with")


def describe_context(ctx: ts.Context, params: "CKKSParams | None" = None) -> str:
    """:func:`describe` for the context actually used (checked against `params` when given; the
    label then keeps ``params``' INSECURE mark), else read from the context alone."""
    if params is not None:
        check_context(ctx, params)
        return describe(params)
    n, chain = context_chain(ctx)
    bits = security_of_context(ctx)
    label = f"{bits}-bit classical (HE standard)" if bits else "INSECURE (above the HE-standard table)"
    return f"context: N={n}, chain={list(chain)} ({sum(chain)} bits), scale=2^{np.log2(ctx.global_scale):.2f}, {label}"


def require_public(ctx: ts.Context, parameter: str = "public_ctx") -> None:
    """Server functions call this: refuse a context that could decrypt (or that is no context)."""
    if not isinstance(ctx, ts.Context):
        raise CKKSParameterError(f"{parameter} must be a TenSEAL context (load_context(public_blob)), "
                                 f"got {type(ctx).__name__}")
    if ctx.has_secret_key():
        raise SecretKeyOnServerError(f"{parameter} holds the secret key; the server must only get "
                                     f"public_context(ctx) (public, relinearisation and Galois keys)")


def require_galois(ctx: ts.Context, operation: str) -> None:
    """Raise :class:`MissingGaloisKeysError` unless ``ctx`` can rotate."""
    if not ctx.has_galois_keys():
        raise MissingGaloisKeysError(f"{operation} needs rotations but the context has no Galois keys; "
                                     f"build it with make_context(params, galois=True)")


def context_bytes(ctx: ts.Context, secret_key: bool = False) -> int:
    """Serialized size of the context: public copy (server upload) or private copy (key holder).

    TenSEAL stores a private context without its Galois/relin keys (regenerated from the secret key
    on load), so the private copy is usually much smaller than the public one.
    """
    if secret_key:
        return len(ctx.serialize(save_secret_key=True))
    return len(public_context(ctx))


def ciphertext_bytes(vector: ts.CKKSVector) -> int:
    """Serialized size of one encrypted vector."""
    return len(vector.serialize())


def chain_bits(ctx: ts.Context) -> list[int]:
    """Bit sizes of the whole modulus chain of ``ctx`` (read from SEAL; works on public contexts)."""
    parms = ctx.seal_context().data.key_context_data().parms()
    return [q.bit_count() for q in parms.coeff_modulus()]


def remaining_depth(vector: ts.CKKSVector) -> int:
    """Multiplications still possible on ``vector``: primes left at its level minus one."""
    _require_vector(vector)
    return vector.ciphertext()[0].coeff_modulus_size() - 1


def _allowed(vector: ts.CKKSVector) -> int:
    return max(len(chain_bits(vector.context())) - 2, 0)


def ensure_depth(vector: ts.CKKSVector, needed: int = 1, operation: str = "multiply") -> None:
    """Raise :class:`DepthExhaustedError` unless ``vector`` has ``needed`` levels left."""
    left = remaining_depth(vector)
    if left < needed:
        raise DepthExhaustedError(
            f"{operation} needs {needed} multiplication level(s) but the ciphertext has {left} left; these "
            f"parameters allow {_allowed(vector)} multiplication(s) in total (coeff_mod_bit_sizes="
            f"{chain_bits(vector.context())}); add middle primes or refresh (decrypt + re-encrypt)")


_MESSAGES = (
    ("scale out of bounds", DepthExhaustedError), ("secret_key", MissingSecretKeyError),
    ("Galois keys", MissingGaloisKeysError), ("Relinearization keys", MissingRelinKeysError),
    ("scale mismatch", ScaleMismatchError), ("parms_id", ScaleMismatchError),
)


@contextlib.contextmanager
def ckks_errors(operation: str) -> Iterator[None]:
    """Translate TenSEAL's ``ValueError`` messages into this package's errors, naming ``operation``."""
    try:
        yield
    except PPDLError:
        raise
    except ValueError as exc:
        for needle, error in _MESSAGES:
            if needle.lower() in str(exc).lower():
                hint = " (the modulus chain is used up)" if error is DepthExhaustedError else ""
                raise error(f"{operation} failed: {exc}{hint}") from exc
        raise


def decrypt(vector: ts.CKKSVector) -> np.ndarray:
    """Decrypt with the vector's own context; a public context raises :class:`MissingSecretKeyError`."""
    _require_vector(vector)
    if not vector.context().has_secret_key():
        raise MissingSecretKeyError("decrypt needs the secret key, but this ciphertext is linked to a public "
                                    "context (the server's); only the key holder can decrypt")
    with ckks_errors("decrypt"):
        return np.asarray(vector.decrypt(), dtype=np.float64)


def checked_mul(a: ts.CKKSVector, b: "ts.CKKSVector | float | Sequence[float]", operation: str = "multiply"
                ) -> ts.CKKSVector:
    """``a * b`` after checking that a level is left (and, for two ciphertexts, on both)."""
    ensure_depth(a, 1, operation)
    if isinstance(b, ts.CKKSVector):
        ensure_depth(b, 1, operation)
    with ckks_errors(operation):
        return a * b


def check_same_scale(a: ts.CKKSVector, b: ts.CKKSVector, operation: str = "add") -> None:
    """Raise :class:`ScaleMismatchError` when two ciphertexts carry different scales."""
    sa, sb = a.ciphertext()[0].scale, b.ciphertext()[0].scale
    if not np.isclose(sa, sb, rtol=1e-6):
        raise ScaleMismatchError(f"{operation}: scales 2^{np.log2(sa):.2f} and 2^{np.log2(sb):.2f} differ; "
                                 f"rescale both to the same level first")


def output_bound(params: CKKSParams, levels_left: int = 0) -> float:
    """Largest |value| a ciphertext with ``levels_left`` middle primes left can hold without wrapping.

    With every level used only the first prime remains: ``|x| * 2**scale_bits < q0 / 2``.
    """
    bits = params.coeff_mod_bit_sizes[0] + sum(params.coeff_mod_bit_sizes[1:1 + levels_left])
    return 2.0 ** (bits - params.global_scale_bits - 1)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (covers SEAL's C++ allocations)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
