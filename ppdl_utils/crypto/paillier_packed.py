"""Paillier with images packed in plaintext slots: the additive analogue of CKKS's SIMD batching.

A 2048-bit plaintext is cut into ``slots`` slots of ``slot_bits`` bits each (64 by default, so 31 slots
below n).  For a batch of images, column j (feature j of every image) is one plaintext

    P_j = sum_i x_ij * 2^(slot_bits * i)          (x_ij >= 0, one image per slot)

and one ciphertext Enc(P_j).  A linear layer with integer weights w_cj and bias b_c is then

    prod_j Enc(P_j)^(w_cj) * g^(sum_i (b_c + offset) 2^(slot_bits i))  =  Enc(sum_i (s_ic + offset) 2^(slot_bits i))

one ciphertext per class c holding the score s_ic of every image i.  Negative weights raise to the
inverse (Enc(P)^(-|w|) = Enc(-|w| P mod n)): intermediate values are signed modulo n, and the
``offset`` (the largest |score| any input in range can reach) makes every final slot non-negative,
so the sum is an ordinary integer below 2^(slots * slot_bits) < n and decrypts exactly.

:class:`PackedLinear` checks that bound for *every* input in [0, feature_max] when it is built, so
an overflowing head is refused (:class:`SlotOverflowError`) before any value is encrypted; the
client's :func:`encrypt_columns` refuses values outside [0, feature_max] and batches larger than
the slot count.  What the server learns: the batch's width (features) and its count of images
through the slot use, never a value (DCR).

Paillier is malleable: nothing here gives integrity (see ``crypto.bundle``).
"""
from __future__ import annotations

from dataclasses import dataclass

import gmpy2
import numpy as np

from ppdl_utils.crypto.cipher_array import CRTDecryptor
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, check_ciphertext, is_integer
from ppdl_utils.crypto.security import ParameterError
from ppdl_utils.errors import PlaintextRangeError, WrongKeyError

__all__ = ["DEFAULT_SLOT_BITS", "SlotOverflowError", "BatchTooLargeError", "SlotLayout", "PackedColumns",
           "pack_slots", "unpack_slots", "encrypt_columns", "PackedLinear", "decrypt_scores"]

#: Slot width: a machine word, far above the ~43 bits a 2,368-feature head with 16-bit features
#: and 16-bit weights needs, so a wider head still fits.
DEFAULT_SLOT_BITS = 64


class SlotOverflowError(PlaintextRangeError):
    """A slot value (a feature, or a score a head can reach) does not fit the slot width."""


class BatchTooLargeError(PlaintextRangeError):
    """More images than one plaintext has slots."""


@dataclass(frozen=True)
class SlotLayout:
    """``slots`` slots of ``slot_bits`` bits; slots * slot_bits < log2(n), so a full plaintext is < n."""

    slot_bits: int
    slots: int

    @classmethod
    def for_key(cls, public: PaillierPublicKey, slot_bits: int = DEFAULT_SLOT_BITS) -> "SlotLayout":
        if not is_integer(slot_bits) or not 2 <= int(slot_bits) <= public.bits - 1:
            raise ParameterError(f"slot_bits must be an integer in [2, {public.bits - 1}] for a {public.bits}-bit "
                                 f"key, got {slot_bits!r}")
        return cls(int(slot_bits), (public.bits - 1) // int(slot_bits))

    @property
    def slot_max(self) -> int:
        return (1 << self.slot_bits) - 1

    def check_count(self, count: int) -> int:
        if not 1 <= count <= self.slots:
            raise BatchTooLargeError(f"a batch of {count} images does not fit one ciphertext: {self.slots} slots of "
                                     f"{self.slot_bits} bits (split the batch)")
        return count


def pack_slots(values: "np.ndarray | list[int]", layout: SlotLayout) -> int:
    """sum_i v_i 2^(slot_bits i) for integers 0 <= v_i < 2^slot_bits (SlotOverflowError otherwise)."""
    values = [int(v) for v in np.ravel(np.asarray(values, dtype=object))]
    layout.check_count(len(values))
    bad = [v for v in values if not 0 <= v <= layout.slot_max]
    if bad:
        raise SlotOverflowError(f"slot value {bad[0]} outside [0, 2^{layout.slot_bits})")
    packed = 0
    for v in reversed(values):
        packed = (packed << layout.slot_bits) | v
    return packed


def unpack_slots(packed: int, count: int, layout: SlotLayout) -> list[int]:
    """The first `count` slots of a packed integer, in order."""
    layout.check_count(count)
    return [(int(packed) >> (layout.slot_bits * i)) & layout.slot_max for i in range(count)]


@dataclass
class PackedColumns:
    """Enc(P_j) for every feature j of a batch of ``count`` images; sent by the client to the server."""

    ciphertexts: list  # d gmpy2 / int ciphertexts in Z*_(n^2)
    public: PaillierPublicKey
    count: int
    layout: SlotLayout

    @property
    def nbytes(self) -> int:
        return len(self.ciphertexts) * self.public.ciphertext_nbytes


def _integer_matrix(values: object, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind not in "iu" and not (array.dtype == object and all(is_integer(v) for v in array.flat)):
        raise PlaintextRangeError(f"{name} must be integers, got dtype {array.dtype} (floats are refused, "
                                  "not truncated)")
    if array.ndim != 2 or not array.size:
        raise PlaintextRangeError(f"{name} must be a non-empty matrix, got shape {array.shape}")
    return array


def encrypt_columns(encryptor: FastEncryptor, features: np.ndarray, layout: SlotLayout,
                    feature_max: int) -> PackedColumns:
    """Client side: a batch (images, d) of integers in [0, feature_max] -> d ciphertexts, image i in slot i.

    Every check (batch size, range, the slot width) runs before the first encryption."""
    x = _integer_matrix(features, "features")
    layout.check_count(x.shape[0])
    if not is_integer(feature_max) or not 0 < int(feature_max) <= layout.slot_max:
        raise SlotOverflowError(f"feature_max {feature_max!r} does not fit a {layout.slot_bits}-bit slot")
    bad = np.argwhere((x < 0) | (x > feature_max))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        raise SlotOverflowError(f"feature {column} of image {row} is {x[row, column]}, outside [0, {feature_max}]")
    public = encryptor.private.public
    if public.bits - 1 < layout.slots * layout.slot_bits:
        raise WrongKeyError(f"the layout ({layout.slots} x {layout.slot_bits} bits) was made for a larger key "
                            f"than {public.fingerprint} ({public.bits} bits)")
    columns = [pack_slots(x[:, j], layout) for j in range(x.shape[1])]
    return PackedColumns([encryptor.encrypt(m) for m in columns], public, x.shape[0], layout)


class PackedLinear:
    """Server side: scores s = W x + b of a batch of packed images, one ciphertext per class.

    ``weights`` (K, d) and ``bias`` (K,) are integers of any sign; inputs are integers in
    [0, feature_max].  The construction refuses (:class:`SlotOverflowError`) a head whose scores could
    leave the slot, for any input in range; no secret is held."""

    def __init__(self, weights: np.ndarray, bias: np.ndarray, feature_max: int, public: PaillierPublicKey,
                 slot_bits: int = DEFAULT_SLOT_BITS) -> None:
        w = _integer_matrix(weights, "weights")
        b = np.asarray(bias)
        if b.shape != (w.shape[0],) or (b.dtype.kind not in "iu" and not all(is_integer(v) for v in b.flat)):
            raise PlaintextRangeError(f"bias must be {w.shape[0]} integers (one per weight row), got "
                                      f"{b.dtype} {b.shape}")
        if not is_integer(feature_max) or int(feature_max) < 1:
            raise PlaintextRangeError(f"feature_max must be a positive integer, got {feature_max!r}")
        self.public, self.layout = public, SlotLayout.for_key(public, slot_bits)
        self.weights = [[int(v) for v in row] for row in w]
        self.bias = [int(v) for v in b]
        self.feature_max = int(feature_max)
        # |s_c| <= F * |w_c|_1 + |b_c| for every input in [0, F]^d: the offset that makes each slot >= 0
        self.offset = max(self.feature_max * sum(abs(v) for v in row) + abs(bias_c)
                          for row, bias_c in zip(self.weights, self.bias))
        if 2 * self.offset > self.layout.slot_max:
            raise SlotOverflowError(
                f"scores of this head reach |s| = {self.offset} for inputs in [0, {self.feature_max}]: with the "
                f"offset they need {(2 * self.offset).bit_length()} bits, the slots hold {self.layout.slot_bits}; "
                "use fewer weight or feature bits, or wider slots")
        self.n2 = gmpy2.mpz(public.n_square)

    @property
    def n_outputs(self) -> int:
        return len(self.weights)

    def _constant(self, bias: int, count: int) -> gmpy2.mpz:
        """g^(sum_i (b + offset) 2^(slot_bits i)) = 1 + m n mod n^2 (g = n + 1)."""
        m = pack_slots([bias + self.offset] * count, self.layout)
        return (1 + gmpy2.mpz(m) * self.public.n) % self.n2

    def evaluate(self, columns: PackedColumns) -> list[int]:
        """One ciphertext per output row holding that row's score of every image of the batch."""
        if not isinstance(columns, PackedColumns) or columns.public.n != self.public.n:
            raise WrongKeyError(f"the columns are not under key {self.public.fingerprint}")
        if columns.layout != self.layout:
            raise ParameterError(f"the columns use {columns.layout}, this head {self.layout}")
        if len(columns.ciphertexts) != len(self.weights[0]):
            raise PlaintextRangeError(f"{len(columns.ciphertexts)} feature columns, the head takes "
                                      f"{len(self.weights[0])}")
        cts = [gmpy2.mpz(check_ciphertext(self.public, c)) for c in columns.ciphertexts]
        return [int(self._weighted_product(cts, row) * self._constant(b, columns.count) % self.n2)
                for row, b in zip(self.weights, self.bias)]

    def _weighted_product(self, cts: list, row: list[int]) -> gmpy2.mpz:
        """prod_j c_j^(w_j) mod n^2 by one shared square-and-multiply over the bits of all |w_j|
        (Straus): |w|_max bits squarings instead of one exponentiation per feature; the negative
        weights gather in a second product inverted once."""
        n2 = self.n2
        result = gmpy2.mpz(1)
        for sign in (1, -1):
            picked = [(c, sign * w) for c, w in zip(cts, row) if sign * w > 0]
            if not picked:
                continue
            acc = gmpy2.mpz(1)
            for bit in range(max(w for _, w in picked).bit_length() - 1, -1, -1):
                acc = acc * acc % n2
                for c, w in picked:
                    if (w >> bit) & 1:
                        acc = acc * c % n2
            result = result * (acc if sign > 0 else gmpy2.invert(acc, n2)) % n2
        return result


def decrypt_scores(private: PaillierPrivateKey, ciphertexts: list[int], head: PackedLinear, count: int) -> np.ndarray:
    """Client side: (count, K) integer scores from the head's K ciphertexts (offset removed)."""
    if private.public.n != head.public.n:
        raise WrongKeyError(f"the scores are under key {head.public.fingerprint}, the private key is for "
                            f"{private.public.fingerprint}")
    head.layout.check_count(count)
    decrypt = CRTDecryptor(private)
    columns = [unpack_slots(decrypt(check_ciphertext(private.public, c)), count, head.layout) for c in ciphertexts]
    scores = np.array(columns, dtype=object).T - head.offset
    # |score| <= offset < 2^(slot_bits - 1): int64 holds it for slots up to 64 bits
    return scores.astype(np.int64) if head.layout.slot_bits <= 64 else scores
