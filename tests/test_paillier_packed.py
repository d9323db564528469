"""Paillier with images packed in plaintext slots (rung 2 of the ladder): the decrypted scores equal the
integer twin exactly; overflow, oversized batches and foreign keys are refused before any encryption."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppdl_utils.crypto import lwe
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.paillier import generate_keypair
from ppdl_utils.crypto.paillier_packed import (
    BatchTooLargeError,
    PackedLinear,
    SlotLayout,
    SlotOverflowError,
    decrypt_scores,
    encrypt_columns,
    pack_slots,
    unpack_slots,
)
from ppdl_utils.errors import PPDLError, WrongKeyError
from ppdl_utils.learning import linear_rung
from ppdl_utils.learning.private_head import predictions_from_scores
from ppdl_utils.learning.private_inference import LWE_INFERENCE


@pytest.fixture(scope="module")
def key():
    return generate_keypair(512, allow_insecure=True)  # a labelled test key: 7 slots of 64 bits


@pytest.fixture(scope="module")
def encryptor(key):
    return FastEncryptor(key)


class CountingEncryptor:
    """Stands in for FastEncryptor and counts encryptions: a refusal must come before the first."""

    def __init__(self, inner: FastEncryptor) -> None:
        self.inner, self.private, self.calls = inner, inner.private, 0

    def encrypt(self, m: int):
        self.calls += 1
        return self.inner.encrypt(m)


@given(data=st.data(), slot_bits=st.integers(2, 80), count=st.integers(1, 12))
def test_pack_unpack_round_trip(data, slot_bits, count):
    layout = SlotLayout(slot_bits, 12)
    values = data.draw(st.lists(st.integers(0, layout.slot_max), min_size=count, max_size=count))
    assert unpack_slots(pack_slots(values, layout), count, layout) == values


def test_pack_refuses_values_outside_a_slot():
    layout = SlotLayout(8, 4)
    with pytest.raises(SlotOverflowError, match="256"):
        pack_slots([1, 256], layout)
    with pytest.raises(SlotOverflowError):
        pack_slots([-1], layout)
    with pytest.raises(BatchTooLargeError):
        pack_slots([0] * 5, layout)


def test_a_layout_fits_below_the_modulus(key):
    layout = SlotLayout.for_key(key.public)
    assert (layout.slot_bits, layout.slots) == (64, 7)
    assert (1 << (layout.slots * layout.slot_bits)) < key.public.n
    assert SlotLayout.for_key(generate_keypair(2048).public).slots == 31


@st.composite
def heads(draw):
    """Integer weights of both signs (extremes included), a bias, and a batch of features in [0, F]."""
    d = draw(st.integers(1, 5))
    rows = draw(st.integers(1, 3))
    feature_max = draw(st.sampled_from([1, 255, 65535]))
    weight = st.integers(-(2**15), 2**15)
    weights = np.array(draw(st.lists(st.lists(weight, min_size=d, max_size=d), min_size=rows, max_size=rows)))
    bias = np.array(draw(st.lists(st.integers(-(2**30), 2**30), min_size=rows, max_size=rows)))
    count = draw(st.integers(1, 7))
    feature = st.one_of(st.sampled_from([0, feature_max]), st.integers(0, feature_max))  # slot boundaries
    x = np.array(draw(st.lists(st.lists(feature, min_size=d, max_size=d), min_size=count, max_size=count)))
    return weights, bias, feature_max, x


@given(head=heads(), narrow=st.booleans())
def test_homomorphic_weighted_sum_equals_the_integer_twin(key, encryptor, head, narrow):
    weights, bias, feature_max, x = head
    server = PackedLinear(weights, bias, feature_max, key.public)
    if narrow:  # the narrowest slot that holds the head: its worst-case scores touch the slot's edges
        server = PackedLinear(weights, bias, feature_max, key.public, max(2, (2 * server.offset).bit_length()))
    columns = encrypt_columns(encryptor, x, server.layout, feature_max)
    scores = decrypt_scores(key, server.evaluate(columns), server, len(x))
    assert np.array_equal(scores, x @ weights.T + bias)


def test_worst_case_scores_decode_at_both_slot_edges(key, encryptor):
    """Scores at +offset and -offset fill a slot to 2 offset = 2^16 - 2 and to 0, next to each other:
    no borrow or carry crosses into the neighbouring slot."""
    weights, bias = np.array([[32766], [-32766]]), np.array([1, -1])
    server = PackedLinear(weights, bias, 1, key.public, slot_bits=16)
    assert server.offset == 32767 and server.layout.slots == 31
    x = np.array([[1], [0]] * 15 + [[1]])
    scores = decrypt_scores(key, server.evaluate(encrypt_columns(encryptor, x, server.layout, 1)), server, 31)
    assert np.array_equal(scores, x @ weights.T + bias)
    assert scores[0].tolist() == [32767, -32767]


@given(weight=st.integers(1, 2**20), d=st.integers(1, 50), slot_bits=st.integers(8, 40))
def test_a_head_that_could_overflow_its_slot_is_refused_when_built(key, weight, d, slot_bits):
    weights, bias = np.full((2, d), weight) * np.array([[1], [-1]]), np.array([3, -3])
    worst = 255 * weight * d + 3
    if 2 * worst > (1 << slot_bits) - 1:
        with pytest.raises(SlotOverflowError, match="bits") as refused:
            PackedLinear(weights, bias, 255, key.public, slot_bits)
        assert isinstance(refused.value, PPDLError)
    else:
        assert PackedLinear(weights, bias, 255, key.public, slot_bits).offset == worst


def test_features_outside_the_range_are_refused_before_any_encryption(key, encryptor):
    spy = CountingEncryptor(encryptor)
    layout = SlotLayout.for_key(key.public)
    for bad in (np.array([[0, 256]]), np.array([[-1, 3]])):
        with pytest.raises(SlotOverflowError, match="feature 1 of image 0|feature 0 of image 0"):
            encrypt_columns(spy, bad, layout, 255)
    with pytest.raises(PPDLError, match="integers"):
        encrypt_columns(spy, np.array([[0.5, 1.0]]), layout, 255)
    assert spy.calls == 0


def test_a_batch_larger_than_the_slot_count_is_refused_before_any_encryption(key, encryptor):
    spy = CountingEncryptor(encryptor)
    layout = SlotLayout.for_key(key.public)
    with pytest.raises(BatchTooLargeError, match="8 images"):
        encrypt_columns(spy, np.zeros((layout.slots + 1, 3), dtype=np.int64), layout, 255)
    assert spy.calls == 0


def test_a_foreign_key_is_refused(key, encryptor):
    other = generate_keypair(512, allow_insecure=True)
    weights, bias = np.array([[1, -2]]), np.array([0])
    columns = encrypt_columns(encryptor, np.array([[1, 2]]), SlotLayout.for_key(key.public), 255)
    with pytest.raises(WrongKeyError):
        PackedLinear(weights, bias, 255, other.public).evaluate(columns)
    server = PackedLinear(weights, bias, 255, key.public)
    replies = server.evaluate(columns)
    with pytest.raises(WrongKeyError):
        decrypt_scores(other, replies, server, 1)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 60)
    features = rng.normal(size=(180, 10)) + 1.5 * np.eye(3, 10)[labels]
    return features, labels


@pytest.mark.parametrize("classes", [2, 3])
def test_paillier_rung_equals_its_integer_twin_and_the_float_head_off_near_ties(key, blobs, classes):
    features, labels = blobs
    keep = labels < classes
    features, labels = features[keep], labels[keep]
    head = linear_rung.fit_integer_head(features[::2], labels[::2], feature_bits=8, weight_bits=8)
    run = linear_rung.run_paillier_packed(head, key, features[1::2])
    assert run.max_score_error == 0 and run.mismatches_vs_twin == 0
    assert run.scores.shape == (len(features[1::2]), 1 if classes == 2 else 3)
    float_scores = head.float_scores(features[1::2])
    bound = head.error_bound(features[1::2])
    scale = head.weight_scale * head.feature_max
    assert np.all(np.abs(run.twin_scores / scale - float_scores) <= bound + 1e-9)
    differ = run.predictions != predictions_from_scores(float_scores)
    if classes == 2:
        assert np.all(np.abs(float_scores[differ, 0]) <= bound[differ, 0])
    assert run.per_image()["bytes_up"] == pytest.approx(
        10 * key.public.ciphertext_nbytes * np.ceil(run.n / 7) / run.n)


def test_lwe_rung_equals_its_integer_twin(blobs):
    features, labels = blobs
    head = linear_rung.fit_lwe_head(features[::2], labels[::2], features[1::2], labels[1::2], dim=6)
    run = linear_rung.run_lwe_batched(head, lwe.keygen(LWE_INFERENCE), features[1::2], batch=16)
    assert run.max_score_error == 0 and run.mismatches_vs_twin == 0 and run.n == 90
    assert (run.predictions == labels[1::2]).mean() > 0.6
