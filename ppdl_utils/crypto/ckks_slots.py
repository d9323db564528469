"""Slot-packed CKKS for one input at a time: the key holder's and the server's halves.

Where :mod:`ckks_columns` puts one example per slot (cheap per example, but a batch costs the same for
one example as for N/2), this module serves a single input whose values the caller lays out across the
N/2 slots of a few ciphertexts.  The server combines them with plaintext x ciphertext products,
ciphertext squares and rotations (:meth:`SlotServer.rotate_sum`), so its cost depends on the network,
not on a batch size.

Keys.  The key holder creates rotation keys only for the steps the caller names (each step is a
key-switching key of several MB at N = 8192); the server refuses, before any work, a rotation by a step
it holds no key for.  Ciphertexts are encrypted with the secret key (``encrypt_symmetric``) and
serialized *seeded*: the random half of each ciphertext travels as a seed, which halves the upload.
Relinearisation and rotation keys are serialized seeded as well.

Noise.  Key switching (relinearisation, rotation) adds noise of about ``q_i / P`` times a small
constant, ``P`` the special prime.  The server therefore key-switches while the ciphertext is still at
the product's scale (before the rescale), where that noise is divided by a whole prime afterwards;
the special prime can then be smaller than the middle primes, which leaves more of the HE-standard
budget (218 bits at N = 8192) to the scale.

Scales.  A weight is encoded at the scale of the prime the following rescale divides by, so a product
and its rescale leave the ciphertext's scale unchanged; :meth:`SlotServer.scales` gives the scale at
every depth of a program made of such products and squares, so biases can be encoded once per model.

Identity.  A :class:`SlotMessage` carries the key holder's public-key fingerprint; the server refuses a
message under another key before loading it, and the key holder refuses to decrypt one.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import tenseal.sealapi as seal

from ppdl_utils.crypto.ckks import CKKSParameterError, MissingGaloisKeysError
from ppdl_utils.crypto.ckks_columns import ColumnParams
from ppdl_utils.crypto.ckks_packed import PackingError, _seal_bytes, _seal_load, seal_context
from ppdl_utils.errors import NoiseBudgetError, WrongKeyError

__all__ = ["SlotParams", "SLOTS_CNN_8192", "SlotMessage", "SlotKeyHolder", "SlotServer", "power_of_two_steps"]


@dataclass(frozen=True)
class SlotParams(ColumnParams):
    """Ring, chain and scale as :class:`ColumnParams`, with middle primes of the scale's size: a program
    here rescales after rotations and products alike, and the scale must not drift."""

    slots_hold = "slots"  # one image spread over all of them

    def validate(self) -> int:
        """Check the set and return its classical security (128); a CKKSParameterError names what is wrong."""
        security = super().validate()
        chain = list(self.coeff_mod_bit_sizes)
        if any(abs(bits - self.scale_bits) > 1 for bits in chain[1:-1]):
            raise CKKSParameterError(f"coeff_mod_bit_sizes={chain}: the middle primes must have the scale's "
                                     f"{self.scale_bits} bits (the scale would drift at every rescale)")
        return security


#: Five levels (conv, square, dense, square, dense) at N = 8192: 218 bits, the table's limit.  The first
#: prime keeps 6 bits above the scale (|score| < 32); the special prime is small because every key
#: switch happens before a rescale (see the module docstring).
SLOTS_CNN_8192 = SlotParams(8192, (38, 32, 32, 32, 32, 32, 20), 32, "SLOTS_CNN_8192")


def power_of_two_steps(n_slots: int) -> list[int]:
    """Every rotation a power-of-two rotate-and-sum can use: 1, 2, 4, ..., n_slots / 2."""
    return [1 << k for k in range(max(0, int(n_slots).bit_length() - 1))]


@dataclass
class SlotMessage:
    """Serialized ciphertexts (SEAL's format) under the key ``fingerprint``: what travels."""

    fingerprint: str
    blobs: list = field(repr=False)
    tag: str = ""

    @property
    def nbytes(self) -> int:
        return int(sum(len(b) for b in self.blobs))

    def __len__(self) -> int:
        return len(self.blobs)


def _checked_steps(steps: Iterable[int], n_slots: int) -> list[int]:
    out = sorted({int(s) for s in steps})
    bad = [s for s in out if not 0 < s < n_slots]
    if bad:
        raise PackingError(f"rotation steps {bad}: each must be in 1..{n_slots - 1}")
    return out


class SlotKeyHolder:
    """The client: secret key, encryption of laid-out vectors, decryption of results.  Never send it."""

    def __init__(self, params: SlotParams, rotation_steps: Sequence[int]):
        self.params = params
        self.context = seal_context(params)
        self.rotation_steps = _checked_steps(rotation_steps, params.n_slots)
        keygen = seal.KeyGenerator(self.context)
        secret = keygen.secret_key()
        public = seal.PublicKey()
        keygen.create_public_key(public)  # only for the fingerprint: this key holder encrypts symmetrically
        self.fingerprint = hashlib.sha256(_seal_bytes(public)).hexdigest()[:16]
        galois_tool = self.context.key_context_data().galois_tool()
        # seeded serializations: half the bytes of the expanded keys
        self._relin_bytes = _seal_bytes(keygen.create_relin_keys())
        self._galois_bytes = (_seal_bytes(keygen.create_galois_keys(galois_tool.get_elts_from_steps(
            self.rotation_steps))) if self.rotation_steps else b"")
        self._encryptor = seal.Encryptor(self.context, secret)
        self._decryptor = seal.Decryptor(self.context, secret)
        self._encoder = seal.CKKSEncoder(self.context)
        self._scale = 2.0 ** params.scale_bits

    def __repr__(self) -> str:  # never the key material
        return f"SlotKeyHolder({self.params.name}, fingerprint={self.fingerprint})"

    def evaluation_keys(self) -> bytes:
        """What the server receives once: a length-prefixed (relinearisation, rotation) pair."""
        return len(self._relin_bytes).to_bytes(8, "big") + self._relin_bytes + self._galois_bytes

    def key_bytes(self) -> dict[str, int]:
        """Serialized bytes of each evaluation key."""
        return {"relin": len(self._relin_bytes), "galois": len(self._galois_bytes),
                "rotation_steps": len(self.rotation_steps)}

    def encrypt(self, vectors: np.ndarray, tag: str = "") -> SlotMessage:
        """One ciphertext per row of ``vectors`` (at most N/2 values each, zero-padded), serialized seeded."""
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or x.size == 0:
            raise PackingError(f"vectors must be a non-empty 2-D array (ciphertexts x slots); got shape {x.shape}")
        if x.shape[1] > self.params.n_slots:
            raise PackingError(f"{x.shape[1]} values per ciphertext; {self.params.name} holds {self.params.n_slots}")
        if not np.isfinite(x).all():
            raise PackingError("vectors hold NaN or infinite values")
        blobs = []
        for row in x:
            plain = seal.Plaintext()
            self._encoder.encode(row.tolist(), self._scale, plain)
            blobs.append(_seal_bytes(self._encryptor.encrypt_symmetric(plain)))  # seeded: half the bytes
        return SlotMessage(self.fingerprint, blobs, tag)

    def decrypt(self, message: SlotMessage, n_values: int) -> np.ndarray:
        """(ciphertexts x ``n_values``): the first ``n_values`` slots of every ciphertext of ``message``."""
        if message.fingerprint != self.fingerprint:
            raise WrongKeyError(f"message under key {message.fingerprint}; this key holder is {self.fingerprint}")
        rows = []
        for blob in message.blobs:
            cipher = _seal_load(seal.Ciphertext, self.context, blob, "result")
            plain = seal.Plaintext()
            self._decryptor.decrypt(cipher, plain)
            rows.append(np.asarray(self._encoder.decode_double(plain))[:n_values])
        return np.stack(rows)


class SlotServer:
    """The server: relinearisation and rotation keys, no secret key; counts its operations.

    Depth ``d`` is the ciphertext level after ``d`` rescales (0: as encrypted).  Plaintexts for a
    product at depth ``d`` are encoded by :meth:`weights` at the scale of :meth:`prime` ``(d)``.
    """

    def __init__(self, params: SlotParams, evaluation_keys: bytes, fingerprint: str):
        if not isinstance(evaluation_keys, (bytes, bytearray)) or len(evaluation_keys) < 16:
            raise PackingError("evaluation_keys must be the bytes of SlotKeyHolder.evaluation_keys()")
        self.params, self.fingerprint = params, fingerprint
        self.context = seal_context(params)
        size = int.from_bytes(evaluation_keys[:8], "big")
        if not 0 < size <= len(evaluation_keys) - 8:
            raise PackingError("evaluation_keys: malformed length prefix (not from SlotKeyHolder.evaluation_keys())")
        self._relin = _seal_load(seal.RelinKeys, self.context, bytes(evaluation_keys[8:8 + size]),
                                 "evaluation_keys (relinearisation)")
        rest = bytes(evaluation_keys[8 + size:])
        self._galois = _seal_load(seal.GaloisKeys, self.context, rest, "evaluation_keys (rotations)") if rest else None
        self._galois_tool = self.context.key_context_data().galois_tool()
        self._evaluator = seal.Evaluator(self.context)
        self._encoder = seal.CKKSEncoder(self.context)
        self._levels = [self.context.first_context_data()]
        while self._levels[-1].next_context_data() is not None:
            self._levels.append(self._levels[-1].next_context_data())
        self.operations = {"plain_products": 0, "squares": 0, "rotations": 0, "rescales": 0}

    def __repr__(self) -> str:
        return f"SlotServer({self.params.name}, keys of {self.fingerprint})"

    # ------------------------------------------------------------------ keys and levels
    def has_rotation(self, step: int) -> bool:
        step = int(step) % self.params.n_slots
        return step == 0 or (self._galois is not None
                             and self._galois.has_key(self._galois_tool.get_elt_from_step(step)))

    def require_rotations(self, steps: Iterable[int]) -> None:
        """Raise MissingGaloisKeysError naming every step of ``steps`` without a rotation key."""
        missing = sorted({int(s) for s in steps if not self.has_rotation(s)})
        if missing:
            raise MissingGaloisKeysError(f"no rotation key for steps {missing}: the key holder must create "
                                         f"SlotKeyHolder(..., rotation_steps=...) with them")

    def _level(self, depth: int):
        if not 0 <= depth < len(self._levels):
            raise NoiseBudgetError(f"depth {depth}: {self.params.name} has depths 0..{len(self._levels) - 1} "
                                   f"({self.params.levels} rescales)")
        return self._levels[depth]

    def prime(self, depth: int) -> float:
        """The prime the rescale from ``depth`` to ``depth + 1`` divides by."""
        if depth >= self.params.levels:
            raise NoiseBudgetError(f"no rescale left at depth {depth}: {self.params.name} allows "
                                   f"{self.params.levels}")
        return float(self._level(depth).parms().coeff_modulus()[-1].value())

    def scales(self, program: str) -> list[float]:
        """Scale at each depth of ``program`` ('p': plaintext product by :meth:`weights`, 's': square),
        computed with SEAL's own floating-point steps (a product multiplies scales, a rescale divides)."""
        scale, out = 2.0 ** self.params.scale_bits, []
        out.append(scale)
        for depth, op in enumerate(program):
            prime = self.prime(depth)
            scale = (scale * prime if op == "p" else scale * scale) / prime
            out.append(scale)
        return out

    # ------------------------------------------------------------------ messages
    def receive(self, message: SlotMessage, count: int | None = None) -> list:
        """Ciphertexts of ``message``, after checking its key (and its length, if ``count``)."""
        if not isinstance(message, SlotMessage):
            raise PackingError(f"expected a SlotMessage, got {type(message).__name__}")
        if message.fingerprint != self.fingerprint:
            raise WrongKeyError(f"message under key {message.fingerprint}; this server holds {self.fingerprint}'s "
                                "keys")
        if count is not None and len(message.blobs) != count:
            raise PackingError(f"message holds {len(message.blobs)} ciphertexts; expected {count}")
        return [_seal_load(seal.Ciphertext, self.context, blob, "ciphertext") for blob in message.blobs]

    def send(self, ciphertexts: list, tag: str = "") -> SlotMessage:
        return SlotMessage(self.fingerprint, [_seal_bytes(c) for c in ciphertexts], tag)

    # ------------------------------------------------------------------ plaintexts
    def encode(self, values, depth: int, scale: float):
        """A plaintext of ``values`` (zero-padded to N/2 slots) at ``depth`` and ``scale``."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if len(values) > self.params.n_slots:
            raise PackingError(f"{len(values)} values; a plaintext holds {self.params.n_slots}")
        plain = seal.Plaintext()
        self._encoder.encode(values.tolist(), self._level(depth).parms_id(), float(scale), plain)
        return plain

    def weights(self, values, depth: int):
        """Plaintext for a product at ``depth`` (scale = the next rescale's prime); None when all zero
        (SEAL refuses a product with a zero plaintext, and it would add nothing)."""
        values = np.asarray(values, dtype=np.float64)
        return None if not values.any() else self.encode(values, depth, self.prime(depth))

    # ------------------------------------------------------------------ arithmetic
    def dot(self, pairs: Sequence[tuple]) -> object:
        """``sum cipher (.) plain`` over the pairs whose plaintext is not None; not rescaled."""
        ev, acc, tmp = self._evaluator, None, seal.Ciphertext()
        used = [(c, p) for c, p in pairs if p is not None]
        if not used:
            raise PackingError("every plaintext of the product is zero: the result would carry no data")
        for cipher, plain in used:
            if acc is None:
                acc = seal.Ciphertext()
                ev.multiply_plain(cipher, plain, acc)
            else:
                ev.multiply_plain(cipher, plain, tmp)
                ev.add_inplace(acc, tmp)
        self.operations["plain_products"] += len(used)
        return acc

    def add(self, a, b):
        self._evaluator.add_inplace(a, b)
        return a

    def add_plain(self, cipher, plain):
        self._evaluator.add_plain_inplace(cipher, plain)
        return cipher

    def rotate(self, cipher, step: int):
        """A new ciphertext whose slot i holds slot i + step of ``cipher`` (cyclically)."""
        out = seal.Ciphertext()
        self._evaluator.rotate_vector(cipher, int(step), self._galois, out)
        self.operations["rotations"] += 1
        return out

    def rotate_sum(self, cipher, steps: Sequence[int]):
        """In place: ``cipher += rotate(cipher, s)`` for each step; with steps b, 2b, ..., n/2 every slot
        i then holds the sum of slots i, i + b, i + 2b, ... (cyclically)."""
        ev, tmp = self._evaluator, seal.Ciphertext()
        for step in steps:
            ev.rotate_vector(cipher, int(step), self._galois, tmp)
            ev.add_inplace(cipher, tmp)
        self.operations["rotations"] += len(steps)
        return cipher

    def rescale(self, cipher):
        if self.context.get_context_data(cipher.parms_id()).chain_index() == 0:
            raise NoiseBudgetError(f"no level left: {self.params.name} allows {self.params.levels} rescales")
        self._evaluator.rescale_to_next_inplace(cipher)
        self.operations["rescales"] += 1
        return cipher

    def square(self, cipher):
        """Slot-wise square, relinearised (before the rescale: less key-switching noise) and rescaled."""
        if self.context.get_context_data(cipher.parms_id()).chain_index() == 0:
            raise NoiseBudgetError(f"no level left: {self.params.name} allows {self.params.levels} rescales")
        out = seal.Ciphertext()
        self._evaluator.square(cipher, out)
        self._evaluator.relinearize_inplace(out, self._relin)
        self.operations["squares"] += 1
        return self.rescale(out)
