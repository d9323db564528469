"""SIMD-packed CKKS for linear algebra on many examples at once: the key holder's and the server's halves.

One CKKS ciphertext holds N/2 real numbers (its *slots*).  Packing one value of many examples into one
ciphertext (CryptoNets) makes every homomorphic operation serve hundreds of examples.  The layout here
is *blocked*: the features of an example are cut into chunks of ``block`` slots (a power of two) and
``slots / block`` examples sit side by side in one ciphertext::

    data ciphertext (group g, chunk c):  slot e*block + t  =  x[g*E + e, c*block + t]     (E = slots / block)
    weight ciphertext (class k, chunk c): slot e*block + t  =  w[k, c*block + t]           (every e alike)
    residual ciphertext (class k, group g): slot e*block + t  =  r[g*E + e, k]              (every t alike)

so that, with ``(.)`` the slot-wise product,

* ``logits``: ``sum_c X[g, c] (.) W[k, c]``, then a sum over the ``block`` slots of each example
  (log2(block) rotations) leaves ``z[g*E + e, k] = x . w_k`` in slot ``e*block``;
* ``gradient``: ``sum_g X[g, c] (.) R[k, g]``, then a sum over the E examples of the ciphertext
  (log2(E) rotations) leaves ``sum_i r[i, k] * x[i, c*block + t]`` in slot ``t``.

Every product is a ciphertext-ciphertext product: the server holds the data, the weights and the
residuals only as ciphertexts.  Products are accumulated before relinearisation (one relinearisation
per output ciphertext, not per product), then rescaled once, so the chain needs a single level:
N = 4096 and the primes (36, 36, 37) = 109 bits, the HomomorphicEncryption.org limit for 128-bit classical
security at N = 4096.  Data and weights are encoded at scale 2^30: after one product and one rescale the
result has scale 2^24 in a 36-bit modulus, so values up to 2^11 in magnitude decrypt correctly and the
absolute error is about 1e-4 (measured by ``tests/test_ckks_packed.py`` against float64).

Identity.  Every packed object carries the fingerprint of the key holder's public key and the layout it
was packed with; the server refuses to combine objects of different keys or layouts before any work.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import tenseal.sealapi as seal

from ppdl_utils.crypto.ckks import HE_STANDARD_MAX_LOGQ, CKKSParameterError, InsecureParametersError
from ppdl_utils.errors import PPDLError, WrongKeyError

__all__ = [
    "PackedParams", "PACKED_4096", "PackedLayout", "PackedMatrix", "PackedWeights", "PackedResiduals",
    "PackedScores", "PackedGradient", "PackingError", "KeyHolder", "PackedServer", "serialized_bytes", "sampled_bytes",
    "check_chain",
    "seal_context",
]


class PackingError(PPDLError, ValueError):
    """A packed batch cannot be built or used as asked; the message names the parameter."""


@dataclass(frozen=True)
class PackedParams:
    """Ring, modulus chain and scales of the packed linear protocol; security from the HE standard."""

    poly_modulus_degree: int = 4096
    coeff_mod_bit_sizes: tuple[int, ...] = (36, 36, 37)
    scale_bits: int = 30
    name: str = "PACKED_4096"

    @property
    def n_slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def total_bits(self) -> int:
        return int(sum(self.coeff_mod_bit_sizes))

    @property
    def result_scale_bits(self) -> int:
        """Scale after one product and the rescale that drops the second prime."""
        return 2 * self.scale_bits - self.coeff_mod_bit_sizes[1]

    @property
    def max_abs_result(self) -> float:
        """Largest |value| a result holds without wrapping around the remaining prime."""
        return 2.0 ** (self.coeff_mod_bit_sizes[0] - self.result_scale_bits - 1)

    def validate(self) -> int:
        """Check the set and return its classical security (128); a CKKSParameterError names what is wrong."""
        chain, scale = list(self.coeff_mod_bit_sizes), self.scale_bits
        check_chain(self.poly_modulus_degree, chain, "the packed protocol needs three primes (two data, one "
                                                     "special)", exact=3)
        if not 20 <= scale <= chain[1] or self.result_scale_bits < 16:
            raise CKKSParameterError(f"scale_bits={scale}: needs 20..{chain[1]} bits and a result scale "
                                     f"(2*scale - {chain[1]}) of at least 16 bits")
        if chain[2] < max(chain[:2]):
            raise CKKSParameterError(f"coeff_mod_bit_sizes={chain}: the special prime must be the largest")
        return 128

    def describe(self) -> str:
        return (f"{self.name}: N={self.poly_modulus_degree} ({self.n_slots} slots), chain="
                f"{list(self.coeff_mod_bit_sizes)} ({self.total_bits} bits), scale=2^{self.scale_bits}, "
                f"{self.validate()}-bit classical (HE standard)")


def check_chain(poly_modulus_degree: int, chain: list[int], what: str, exact: int | None = None) -> None:
    """The ring is in the HE-standard table, the primes have 20..60 bits (``exact`` of them, or at least
    three) and their total fits the 128-bit classical limit for the ring."""
    limit = HE_STANDARD_MAX_LOGQ.get(poly_modulus_degree)
    if limit is None:
        raise CKKSParameterError(f"poly_modulus_degree={poly_modulus_degree} must be one of "
                                 f"{sorted(HE_STANDARD_MAX_LOGQ)}")
    if (len(chain) != exact if exact else len(chain) < 3) or any(not 20 <= b <= 60 for b in chain):
        raise CKKSParameterError(f"coeff_mod_bit_sizes={chain}: {what}, each of 20..60 bits")
    if sum(chain) > limit:
        raise InsecureParametersError(f"coeff_mod_bit_sizes={chain} totals {sum(chain)} bits, above the {limit} "
                                      f"bits the HE standard allows for 128-bit security at N={poly_modulus_degree}")


def seal_context(params) -> "seal.SEALContext":
    """A SEAL context for a validated parameter set (SEAL itself enforces the 128-bit table as well)."""
    params.validate()
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    parms.set_poly_modulus_degree(params.poly_modulus_degree)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(params.poly_modulus_degree, list(params.coeff_mod_bit_sizes)))
    return seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)


#: The default: 128-bit classical security at N = 4096 (109 bits, the table's limit).
PACKED_4096 = PackedParams()


@dataclass(frozen=True)
class PackedLayout:
    """How ``n_rows`` examples of ``n_features`` features are cut into ciphertexts."""

    n_features: int
    block: int
    n_slots: int

    def __post_init__(self) -> None:
        if self.n_features < 1:
            raise PackingError(f"n_features={self.n_features}: need at least one feature")
        if self.block < 1 or self.block & (self.block - 1) or self.block > self.n_slots:
            raise PackingError(f"block={self.block} must be a power of two no larger than the {self.n_slots} slots")

    @property
    def per_ciphertext(self) -> int:
        """Examples side by side in one ciphertext (E)."""
        return self.n_slots // self.block

    @property
    def n_chunks(self) -> int:
        return -(-self.n_features // self.block)

    def n_groups(self, n_rows: int) -> int:
        return -(-n_rows // self.per_ciphertext)

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.n_features, self.block, self.n_slots)


def auto_block(n_features: int, n_slots: int) -> int:
    """Block size: the power of two near sqrt(slots) that wastes the fewest padding slots.

    A larger block costs more rotations per group of examples in ``logits``; a smaller one more in
    ``gradient``; around sqrt(slots) both stay at about log2(slots)/2 per ciphertext.
    """
    candidates = [b for b in (32, 64, 128, 256) if b <= n_slots]
    return min(candidates, key=lambda b: (-(-n_features // b) * b - n_features, abs(b * b - n_slots)))


@dataclass
class _Packed:
    fingerprint: str
    layout: PackedLayout
    n_rows: int
    ciphertexts: list = field(repr=False)
    tag: str = ""  # what the values are (the feature extractor's fingerprint); checked where it matters


@dataclass
class PackedMatrix(_Packed):
    """Encrypted examples x features: ``ciphertexts[g][c]``."""


@dataclass
class PackedWeights(_Packed):
    """Encrypted weights, one row per class: ``ciphertexts[k][c]`` (``n_rows`` = classes)."""


@dataclass
class PackedResiduals(_Packed):
    """Encrypted per-example values, one column per class: ``ciphertexts[k][g]``."""

    @property
    def n_classes(self) -> int:
        return len(self.ciphertexts)


@dataclass
class PackedScores(_Packed):
    """Encrypted logits: ``ciphertexts[k][g]``, example ``g*E + e`` in slot ``e*block``."""

    @property
    def n_classes(self) -> int:
        return len(self.ciphertexts)


@dataclass
class PackedGradient(_Packed):
    """Encrypted ``R^T X``: ``ciphertexts[k][c]``, feature ``c*block + t`` in slot ``t``."""


def _seal_bytes(obj) -> bytes:
    """SEAL's own serialization of a key or ciphertext (compressed), as bytes."""
    fd, path = tempfile.mkstemp(prefix="ppdl-seal-", suffix=".bin")
    os.close(fd)
    try:
        obj.save(path)
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(path)


def _seal_load(cls, context, data: bytes, what: str):
    fd, path = tempfile.mkstemp(prefix="ppdl-seal-", suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        obj = cls()
        try:
            obj.load(context, path)
        except Exception as exc:  # SEAL raises std exceptions of several kinds on malformed bytes
            raise PackingError(f"{what}: not a valid SEAL object for these parameters ({str(exc)[:120]})") from None
        return obj
    finally:
        os.unlink(path)


def serialized_bytes(packed: _Packed) -> int:
    """Bytes of every ciphertext of ``packed`` as SEAL serializes them (what travels)."""
    rows = packed.ciphertexts
    return sum(len(_seal_bytes(ct)) for row in rows for ct in row)


def sampled_bytes(ciphertexts: list) -> int:
    """Bytes of a list (or list of rows) of ciphertexts of one level, from the first one's size: cheap
    for the large uploads, where serializing every ciphertext would cost as much as encrypting them."""
    flat = [ct for row in ciphertexts for ct in (row if isinstance(row, list) else [row])]
    return len(_seal_bytes(flat[0])) * len(flat) if flat else 0


class KeyHolder:
    """The data owner: holds the secret key, encrypts, decrypts.  Never send this object anywhere.

    ``public_keys()`` is what the server receives once: parameters, relinearisation and rotation keys
    (no secret key, no public encryption key: the server never encrypts).
    """

    def __init__(self, params: PackedParams = PACKED_4096):
        self.params = params
        self.context = seal_context(params)
        keygen = seal.KeyGenerator(self.context)
        self._secret = keygen.secret_key()
        public = seal.PublicKey()
        keygen.create_public_key(public)
        self._relin = seal.RelinKeys()
        keygen.create_relin_keys(self._relin)
        self._galois = seal.GaloisKeys()
        keygen.create_galois_keys(self._galois)  # SEAL's default: rotations by every power of two
        self.fingerprint = hashlib.sha256(_seal_bytes(public)).hexdigest()[:16]
        self._encryptor = seal.Encryptor(self.context, public)
        self._encryptor.set_secret_key(self._secret)
        self._decryptor = seal.Decryptor(self.context, self._secret)
        self._encoder = seal.CKKSEncoder(self.context)
        self.scale = 2.0 ** params.scale_bits

    def __repr__(self) -> str:  # never the key material
        return f"KeyHolder({self.params.name}, fingerprint={self.fingerprint})"

    def public_keys(self) -> bytes:
        """Serialized evaluation keys for the server: a length-prefixed (relin, galois) pair."""
        relin, galois = _seal_bytes(self._relin), _seal_bytes(self._galois)
        return len(relin).to_bytes(8, "big") + relin + galois

    def layout(self, n_features: int, block: int | None = None) -> PackedLayout:
        return PackedLayout(n_features, block or auto_block(n_features, self.params.n_slots), self.params.n_slots)

    # ------------------------------------------------------------------ encryption
    def _encrypt(self, values: np.ndarray):
        plain = seal.Plaintext()
        self._encoder.encode(values.tolist(), self.scale, plain)
        cipher = seal.Ciphertext()
        self._encryptor.encrypt_symmetric(plain, cipher)  # fresh randomness from SEAL's PRNG every call
        return cipher

    def _checked(self, values: np.ndarray, parameter: str, ndim: int) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != ndim:
            raise PackingError(f"{parameter} must be {ndim}-D; got shape {values.shape}")
        if values.size == 0:
            raise PackingError(f"{parameter} is empty; nothing to encrypt")
        if not np.isfinite(values).all():
            raise PackingError(f"{parameter} holds NaN or infinite values; CKKS would encrypt garbage")
        return values

    def encrypt_matrix(self, x: np.ndarray, layout: PackedLayout, progress: Callable | None = None
                       ) -> PackedMatrix:
        """Examples x features, blocked (see the module docstring); ``progress`` wraps the group loop."""
        x = self._checked(x, "x", 2)
        if x.shape[1] != layout.n_features:
            raise PackingError(f"x has {x.shape[1]} features; the layout was made for {layout.n_features}")
        per, block = layout.per_ciphertext, layout.block
        padded = np.zeros((layout.n_groups(len(x)) * per, layout.n_chunks * block))
        padded[:len(x), :x.shape[1]] = x
        groups = range(layout.n_groups(len(x)))
        rows = []
        for g in (progress(groups) if progress else groups):
            part = padded[g * per:(g + 1) * per]
            rows.append([self._encrypt(part[:, c * block:(c + 1) * block].ravel()) for c in range(layout.n_chunks)])
        return PackedMatrix(self.fingerprint, layout, len(x), rows)

    def encrypt_weights(self, w: np.ndarray, layout: PackedLayout) -> PackedWeights:
        """Weights (classes x features), each chunk repeated for every example slot of a ciphertext."""
        w = self._checked(np.atleast_2d(w), "w", 2)
        if w.shape[1] != layout.n_features:
            raise PackingError(f"w has {w.shape[1]} features; the layout was made for {layout.n_features}")
        padded = np.zeros((len(w), layout.n_chunks * layout.block))
        padded[:, :w.shape[1]] = w
        rows = [[self._encrypt(np.tile(row[c * layout.block:(c + 1) * layout.block], layout.per_ciphertext))
                 for c in range(layout.n_chunks)] for row in padded]
        return PackedWeights(self.fingerprint, layout, len(w), rows)

    def encrypt_residuals(self, r: np.ndarray, layout: PackedLayout) -> PackedResiduals:
        """Per-example values (examples x classes), each repeated over its example's block."""
        r = self._checked(r.reshape(len(r), -1) if np.ndim(r) else r, "residuals", 2)
        per = layout.per_ciphertext
        padded = np.zeros((layout.n_groups(len(r)) * per, r.shape[1]))
        padded[:len(r)] = r
        rows = [[self._encrypt(np.repeat(padded[g * per:(g + 1) * per, k], layout.block))
                 for g in range(layout.n_groups(len(r)))] for k in range(r.shape[1])]
        return PackedResiduals(self.fingerprint, layout, len(r), rows)

    # ------------------------------------------------------------------ decryption
    def _decrypt(self, cipher) -> np.ndarray:
        plain = seal.Plaintext()
        self._decryptor.decrypt(cipher, plain)
        return np.asarray(self._encoder.decode_double(plain))

    def _own(self, packed: _Packed, parameter: str) -> None:
        if packed.fingerprint != self.fingerprint:
            raise WrongKeyError(f"{parameter} was computed under key {packed.fingerprint}, not this key holder's "
                                f"{self.fingerprint}: it would decrypt to garbage")

    def decrypt_scores(self, scores: PackedScores) -> np.ndarray:
        """Logits (examples x classes) from the server's :class:`PackedScores`."""
        self._own(scores, "scores")
        layout, out = scores.layout, []
        for row in scores.ciphertexts:
            values = [self._decrypt(ct)[::layout.block][:layout.per_ciphertext] for ct in row]
            out.append(np.concatenate(values)[:scores.n_rows])
        return np.stack(out, axis=1)

    def decrypt_gradient(self, gradient: PackedGradient) -> np.ndarray:
        """``R^T X`` (classes x features) from the server's :class:`PackedGradient`."""
        self._own(gradient, "gradient")
        layout = gradient.layout
        rows = [np.concatenate([self._decrypt(ct)[:layout.block] for ct in row])[:layout.n_features]
                for row in gradient.ciphertexts]
        return np.stack(rows)


class PackedServer:
    """The server: evaluation keys only.  It computes on ciphertexts and cannot decrypt any of them."""

    def __init__(self, params: PackedParams, public_keys: bytes, fingerprint: str):
        if not isinstance(public_keys, (bytes, bytearray)) or len(public_keys) < 16:
            raise PackingError("public_keys must be the bytes of KeyHolder.public_keys()")
        self.params, self.fingerprint = params, fingerprint
        self.context = seal_context(params)
        size = int.from_bytes(public_keys[:8], "big")
        if not 0 < size < len(public_keys) - 8:
            raise PackingError("public_keys: malformed length prefix (not from KeyHolder.public_keys())")
        self._relin = _seal_load(seal.RelinKeys, self.context, bytes(public_keys[8:8 + size]), "public_keys (relin)")
        self._galois = _seal_load(seal.GaloisKeys, self.context, bytes(public_keys[8 + size:]),
                                  "public_keys (rotations)")
        self._evaluator = seal.Evaluator(self.context)
        self.operations = {"products": 0, "relinearizations": 0, "rotations": 0}

    def _check(self, parameter: str, packed: _Packed, layout: PackedLayout) -> None:
        if packed.fingerprint != self.fingerprint:
            raise WrongKeyError(f"{parameter} is under key {packed.fingerprint}; this server holds the evaluation "
                                f"keys of {self.fingerprint}")
        if packed.layout.key != layout.key:
            raise PackingError(f"{parameter} was packed with layout {packed.layout.key} (features, block, slots); "
                               f"the data uses {layout.key}")

    def _dot(self, pairs: Sequence[tuple]) -> object:
        """Sum of ciphertext products, relinearised once and rescaled once."""
        ev, acc, tmp = self._evaluator, None, seal.Ciphertext()
        for a, b in pairs:
            if acc is None:
                acc = seal.Ciphertext()
                ev.multiply(a, b, acc)
            else:
                ev.multiply(a, b, tmp)
                ev.add_inplace(acc, tmp)
        self.operations["products"] += len(pairs)
        ev.relinearize_inplace(acc, self._relin)
        self.operations["relinearizations"] += 1
        return acc

    def _rotate_sum(self, cipher, steps: Sequence[int]) -> object:
        ev, tmp = self._evaluator, seal.Ciphertext()
        for step in steps:
            ev.rotate_vector(cipher, step, self._galois, tmp)
            ev.add_inplace(cipher, tmp)
        self.operations["rotations"] += len(steps)
        ev.rescale_to_next_inplace(cipher)  # after the rotations: key switching at two primes adds less noise
        return cipher

    def logits(self, x: PackedMatrix, w: PackedWeights) -> PackedScores:
        """``x . w_k`` for every example and class, as ciphertexts (see the module docstring)."""
        layout = x.layout
        self._check("x", x, layout)
        self._check("w", w, layout)
        if w.tag and x.tag != w.tag:
            raise PackingError(f"x holds features of extractor {x.tag or 'unknown'}; the weights were trained on "
                               f"{w.tag}: the scores would be meaningless")
        steps = [1 << k for k in range(int(np.log2(layout.block)))]
        rows = [[self._rotate_sum(self._dot(list(zip(group, w_row))), steps) for group in x.ciphertexts]
                for w_row in w.ciphertexts]
        return PackedScores(self.fingerprint, layout, x.n_rows, rows)

    def gradient(self, x: PackedMatrix, r: PackedResiduals) -> PackedGradient:
        """``R^T X``: for every class k and feature j, ``sum_i r[i, k] x[i, j]``."""
        layout = x.layout
        self._check("x", x, layout)
        self._check("residuals", r, layout)
        if r.n_rows != x.n_rows:
            raise PackingError(f"residuals has {r.n_rows} rows; x has {x.n_rows} examples")
        steps = [layout.block << k for k in range(int(np.log2(layout.per_ciphertext)))]
        rows = []
        for r_row in r.ciphertexts:
            rows.append([self._rotate_sum(self._dot([(x.ciphertexts[g][c], r_row[g]) for g in range(len(r_row))]),
                                          steps) for c in range(layout.n_chunks)])
        return PackedGradient(self.fingerprint, layout, r.n_classes, rows)

    def column_squares(self, x: PackedMatrix) -> PackedGradient:
        """``sum_i x[i, j]^2`` for every feature j (one row), for the key holder's standardization."""
        layout = x.layout
        self._check("x", x, layout)
        steps = [layout.block << k for k in range(int(np.log2(layout.per_ciphertext)))]
        row = [self._rotate_sum(self._dot([(group[c], group[c]) for group in x.ciphertexts]), steps)
               for c in range(layout.n_chunks)]
        return PackedGradient(self.fingerprint, layout, 1, [row])
