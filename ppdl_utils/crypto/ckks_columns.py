"""Column-packed CKKS (CryptoNets layout) for networks whose weights the server holds in the clear.

Slot ``i`` of every ciphertext belongs to example ``i`` and ciphertext ``j`` holds input value ``j`` (a
pixel or a feature) of up to N/2 examples.  A dense layer is then a sum of ciphertext x scalar products,
a square activation one ciphertext x ciphertext product, and no rotation is ever needed: the cost of one
layer is the same for one example and for N/2 of them, which is what makes the batch cheap per image.
Where many inputs of an output share a weight (a quantized layer), the server adds those inputs first
and multiplies once per distinct weight: an addition costs several times less than a product.

Scales.  A weight is encoded at the scale of the prime the following rescale divides by, so a dense
layer leaves the ciphertext's scale exactly as it was; a square sets it to ``scale^2 / q``, which SEAL
tracks exactly and the decoder uses.  Biases are encoded at the ciphertext's own scale and level.

Identity.  A :class:`ColumnBatch` carries the key holder's public-key fingerprint; the server refuses a
batch of another key, and the key holder refuses to decrypt one.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import tenseal.sealapi as seal

from ppdl_utils.crypto.ckks import CKKSParameterError
from ppdl_utils.crypto.ckks_packed import (
    PackingError,
    _seal_bytes,
    _seal_load,
    check_chain,
    sampled_bytes,
    seal_context,
)
from ppdl_utils.errors import NoiseBudgetError, WrongKeyError

__all__ = ["ColumnParams", "COLUMNS_MLP_8192", "COLUMNS_CNN_8192", "ColumnBatch", "ColumnKeyHolder",
           "ColumnServer"]


@dataclass(frozen=True)
class ColumnParams:
    """Ring, chain and scale; ``levels`` = middle primes = multiplications (dense or square) allowed."""

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int
    name: str

    slots_hold = "examples per ciphertext"  # what a slot holds, for describe() (one value per example)

    @property
    def n_slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def levels(self) -> int:
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def total_bits(self) -> int:
        return int(sum(self.coeff_mod_bit_sizes))

    @property
    def output_bound(self) -> float:
        """Largest |value| a ciphertext with every level used still decrypts (first prime / 2 / scale)."""
        return 2.0 ** (self.coeff_mod_bit_sizes[0] - self.scale_bits - 1)

    def validate(self) -> int:
        chain = list(self.coeff_mod_bit_sizes)
        check_chain(self.poly_modulus_degree, chain, "at least three primes")
        if not 20 <= self.scale_bits < chain[0]:
            raise CKKSParameterError(f"scale_bits={self.scale_bits} must be 20 or more and below the first prime")
        return 128

    def describe(self) -> str:
        return (f"{self.name}: N={self.poly_modulus_degree} ({self.n_slots} {self.slots_hold}), chain="
                f"{list(self.coeff_mod_bit_sizes)} ({self.total_bits} bits, {self.levels} levels), "
                f"scale=2^{self.scale_bits}, {self.validate()}-bit classical (HE standard)")


#: Dense -> square -> dense (rung 3): 3 levels, 190 of the 218 bits at N = 8192.
COLUMNS_MLP_8192 = ColumnParams(8192, (50, 30, 30, 30, 50), 30, "COLUMNS_MLP_8192")
#: Conv -> square -> dense -> square -> dense (rung 4): 5 levels, 218 bits (the table's limit at N = 8192).
#: Every relinearisation comes before its rescale, so its noise is divided by a whole 32-bit prime and
#: the special prime can be small: the bits go to the scale (|score| < 2^(38-32-1) = 32).
COLUMNS_CNN_8192 = ColumnParams(8192, (38, 32, 32, 32, 32, 32, 20), 32, "COLUMNS_CNN_8192")


@dataclass
class ColumnBatch:
    """Encrypted values of up to N/2 examples: ``ciphertexts[j]`` holds value j of every example."""

    fingerprint: str
    n_rows: int
    ciphertexts: list = field(repr=False)
    tag: str = ""

    @property
    def width(self) -> int:
        return len(self.ciphertexts)

    def nbytes(self) -> int:
        """Serialized bytes (one ciphertext measured; all of a batch share level and size)."""
        return sampled_bytes(self.ciphertexts)


class ColumnKeyHolder:
    """The client: secret key, encryption of a batch, decryption of the scores."""

    def __init__(self, params: ColumnParams):
        self.params = params
        self.context = seal_context(params)
        keygen = seal.KeyGenerator(self.context)
        secret = keygen.secret_key()
        public = seal.PublicKey()
        keygen.create_public_key(public)
        self._relin = seal.RelinKeys()
        keygen.create_relin_keys(self._relin)
        self.fingerprint = hashlib.sha256(_seal_bytes(public)).hexdigest()[:16]
        self._encryptor = seal.Encryptor(self.context, public)
        self._encryptor.set_secret_key(secret)
        self._decryptor = seal.Decryptor(self.context, secret)
        self._encoder = seal.CKKSEncoder(self.context)

    def __repr__(self) -> str:
        return f"ColumnKeyHolder({self.params.name}, fingerprint={self.fingerprint})"

    def public_keys(self) -> bytes:
        """What the server needs: relinearisation keys (no rotations in this layout)."""
        return _seal_bytes(self._relin)

    def encrypt(self, x: np.ndarray, tag: str = "") -> ColumnBatch:
        """Encrypt ``x`` (examples x values): one ciphertext per column, example i in slot i."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.size == 0:
            raise PackingError(f"batch must be a non-empty 2-D array (examples x values); got shape {x.shape}")
        if len(x) > self.params.n_slots:
            raise PackingError(f"batch of {len(x)} examples: one ciphertext holds at most {self.params.n_slots} "
                               f"(N/2); split it into batches")
        if not np.isfinite(x).all():
            raise PackingError("batch holds NaN or infinite values")
        scale = 2.0 ** self.params.scale_bits
        out = []
        for column in x.T:
            plain = seal.Plaintext()
            self._encoder.encode(column.tolist(), scale, plain)
            cipher = seal.Ciphertext()
            self._encryptor.encrypt_symmetric(plain, cipher)
            out.append(cipher)
        return ColumnBatch(self.fingerprint, len(x), out, tag)

    def decrypt(self, batch: ColumnBatch) -> np.ndarray:
        """(examples x outputs) from the server's result."""
        if batch.fingerprint != self.fingerprint:
            raise WrongKeyError(f"batch under key {batch.fingerprint}; this key holder is {self.fingerprint}")
        columns = []
        for cipher in batch.ciphertexts:
            plain = seal.Plaintext()
            self._decryptor.decrypt(cipher, plain)
            columns.append(np.asarray(self._encoder.decode_double(plain))[:batch.n_rows])
        return np.stack(columns, axis=1)


class ColumnServer:
    """The server: relinearisation keys and plaintext weights; counts its operations."""

    def __init__(self, params: ColumnParams, public_keys: bytes, fingerprint: str):
        self.params, self.fingerprint = params, fingerprint
        self.context = seal_context(params)
        if not isinstance(public_keys, (bytes, bytearray)) or not public_keys:
            raise PackingError("public_keys must be the bytes of ColumnKeyHolder.public_keys()")
        self._relin = _seal_load(seal.RelinKeys, self.context, bytes(public_keys), "public_keys")
        self._evaluator = seal.Evaluator(self.context)
        self._encoder = seal.CKKSEncoder(self.context)
        self.operations = {"scalar_products": 0, "additions": 0, "squares": 0}

    def _own(self, batch: ColumnBatch) -> None:
        if batch.fingerprint != self.fingerprint:
            raise WrongKeyError(f"batch under key {batch.fingerprint}; this server holds {self.fingerprint}'s keys")

    def _level_prime(self, cipher) -> float:
        data = self.context.get_context_data(cipher.parms_id())
        if data.chain_index() == 0:
            raise NoiseBudgetError(f"no level left: {self.params.name} allows {self.params.levels} multiplications")
        return float(data.parms().coeff_modulus()[-1].value())

    def dense(self, batch: ColumnBatch, weights: np.ndarray, bias: np.ndarray,
              share_weights: bool | None = None) -> ColumnBatch:
        """``out[:, k] = sum_j batch[:, j] * weights[j, k] + bias[k]`` on ciphertexts (one level).

        ``share_weights``: sum the inputs that share a weight before multiplying (one product per distinct
        weight, see :meth:`_shared_weight_sum`); None does so where it at least halves the products."""
        self._own(batch)
        weights, bias = np.asarray(weights, np.float64), np.asarray(bias, np.float64)
        if weights.shape[0] != batch.width or bias.shape != (weights.shape[1],):
            raise PackingError(f"weights {weights.shape} / bias {bias.shape} do not fit a batch of width "
                               f"{batch.width}")
        ev, first = self._evaluator, batch.ciphertexts[0]
        parms_id, prime = first.parms_id(), self._level_prime(first)
        encoded: dict[float, object] = {}  # a convolution reuses its few weights across windows

        def plain_of(value: float):
            if value not in encoded:
                plain = seal.Plaintext()
                self._encoder.encode(float(value), parms_id, prime, plain)
                encoded[value] = plain
            return encoded[value]

        out = []
        for k in range(weights.shape[1]):
            terms = np.nonzero(weights[:, k])[0]
            if len(terms) == 0:
                raise PackingError(f"output {k} has only zero weights; drop it from the layer")
            values, groups = np.unique(weights[terms, k], return_inverse=True)
            if share_weights or (share_weights is None and 2 * len(values) <= len(terms)):
                acc = self._shared_weight_sum(batch, terms, values, groups, plain_of)
            else:
                acc = self._weighted_sum(batch, terms, weights[terms, k], plain_of)
            ev.rescale_to_next_inplace(acc)
            acc.scale = first.scale  # exact: the weight's scale was the prime just divided by
            bias_plain = seal.Plaintext()
            self._encoder.encode(float(bias[k]), acc.parms_id(), acc.scale, bias_plain)
            ev.add_plain_inplace(acc, bias_plain)
            out.append(acc)
        return ColumnBatch(batch.fingerprint, batch.n_rows, out, batch.tag)

    def _weighted_sum(self, batch: ColumnBatch, terms: np.ndarray, weights: np.ndarray, plain_of):
        """``sum_j w_j ct_j``: one product and one addition per input."""
        ev, acc, tmp = self._evaluator, None, seal.Ciphertext()
        for j, value in zip(terms, weights):
            target = seal.Ciphertext() if acc is None else tmp
            ev.multiply_plain(batch.ciphertexts[j], plain_of(value), target)
            if acc is None:
                acc = target
            else:
                ev.add_inplace(acc, tmp)
        self.operations["scalar_products"] += len(terms)
        self.operations["additions"] += len(terms) - 1
        return acc

    def _shared_weight_sum(self, batch: ColumnBatch, terms: np.ndarray, values: np.ndarray, groups: np.ndarray,
                           plain_of):
        """``sum_v v * (sum of the inputs whose weight is v)``: when many inputs share a weight (a quantized
        layer), an addition per input and a product per distinct weight.  The ring arithmetic is exact, so
        the result is the very ciphertext :meth:`_weighted_sum` gives, at a fraction of the products."""
        ev, acc, tmp = self._evaluator, None, seal.Ciphertext()
        for index, value in enumerate(values):
            members = [batch.ciphertexts[j] for j in terms[groups == index]]
            target = seal.Ciphertext() if acc is None else tmp
            if len(members) == 1:
                ev.multiply_plain(members[0], plain_of(value), target)
            else:
                ev.add_many(members, target)
                ev.multiply_plain_inplace(target, plain_of(value))
            if acc is None:
                acc = target
            else:
                ev.add_inplace(acc, tmp)
            self.operations["additions"] += len(members) - 1 + (index > 0)
        self.operations["scalar_products"] += len(values)
        return acc

    def square(self, batch: ColumnBatch) -> ColumnBatch:
        """Slot-wise square of every ciphertext (one level)."""
        self._own(batch)
        ev, out = self._evaluator, []
        self._level_prime(batch.ciphertexts[0])
        for cipher in batch.ciphertexts:
            result = seal.Ciphertext()
            ev.square(cipher, result)
            ev.relinearize_inplace(result, self._relin)
            ev.rescale_to_next_inplace(result)
            out.append(result)
        self.operations["squares"] += batch.width
        return ColumnBatch(batch.fingerprint, batch.n_rows, out, batch.tag)
