"""Private inference: packing, and encrypted-head predictions equal to the plaintext head's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppdl_utils.crypto import lwe
from ppdl_utils.crypto.security import ParameterError
from ppdl_utils.errors import DataError, NoiseBudgetError, PlaintextRangeError
from ppdl_utils.learning.features import pixel_features
from ppdl_utils.learning.private_inference import (
    LWE_INFERENCE,
    LWEHeadServer,
    PaillierHeadServer,
    fit_quantized_head,
    lwe_head_budgets,
    pack_scores,
    packing_parameters,
    run_lwe,
    run_paillier,
    unpack_scores,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 24))
    labels = np.digitize(features[:, 0] + features[:, 1], [-0.7, 0.7])  # three classes
    return features, labels


@given(scores=st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=6))
def test_pack_unpack_round_trip_with_negative_scores(scores):
    offset, base = 10**6, 1 << (2 * 10**6 + 1).bit_length()
    packed = pack_scores(np.array(scores), offset, base)
    assert np.array_equal(unpack_scores(packed, len(scores), offset, base), scores)


def test_pack_rejects_scores_out_of_range():
    with pytest.raises(ValueError, match="do not fit"):
        pack_scores(np.array([5]), offset=2, base=4)


def test_quantized_head_learns_and_bounds_its_scores(data):
    features, labels = data
    head = fit_quantized_head(features[:400], labels[:400])
    quantized = head.quantize_features(features[400:])
    assert quantized.min() >= 0 and quantized.max() <= head.feature_max == 255
    scores = head.scores(quantized)
    assert np.abs(scores).max() <= head.max_abs_score
    assert (scores.argmax(axis=1) == labels[400:]).mean() > 0.6  # chance is ~1/3


def test_paillier_encrypted_head_equals_plaintext_head(data, key2048):
    features, labels = data
    head = fit_quantized_head(features[:400], labels[:400])
    run = run_paillier(head, key2048, head.quantize_features(features[400:408]))
    assert run.mismatches == 0 and len(run.predictions) == 8
    offset, base = packing_parameters(head)
    assert offset == head.max_abs_score and base > 2 * offset
    assert run.bytes_up == 24 * 512 and run.bytes_down == 512


def test_paillier_server_output_decodes_to_exact_scores(data, key2048):
    features, labels = data
    head = fit_quantized_head(features[:400], labels[:400])
    x = head.quantize_features(features[400:401])[0]
    server = PaillierHeadServer(head, key2048.public)
    from ppdl_utils.crypto.cipher_array import PaillierArray
    from ppdl_utils.crypto.fast_encrypt import FastEncryptor
    values = np.array([int(c) for c in FastEncryptor(key2048).encrypt_many(x)], dtype=object)
    packed = server.evaluate(PaillierArray(values, key2048.public))
    assert np.array_equal(server.decode(key2048, packed), head.scores(x[None])[0])


def test_lwe_encrypted_head_equals_plaintext_head(data):
    features, labels = data
    budgets = lwe_head_budgets()
    head = fit_quantized_head(features[:400], labels[:400], feature_bits=5, **budgets)
    assert np.abs(head.weights).sum(axis=1).max() <= budgets["l1_budget"]
    assert head.max_abs_score <= budgets["score_limit"]
    run = run_lwe(head, lwe.keygen(LWE_INFERENCE), head.quantize_features(features[400:]))
    assert run.mismatches == 0
    assert (run.predictions == labels[400:]).mean() > 0.5


def test_lwe_refuses_heads_beyond_its_budgets(data):
    features, labels = data
    head = fit_quantized_head(features[:400], labels[:400], feature_bits=8)  # scores too large for t
    with pytest.raises(ValueError, match="plaintext modulus"):
        LWEHeadServer(head)
    small = fit_quantized_head(features[:400], labels[:400], feature_bits=2)
    small.weights = small.weights * 0 + 400  # row L1 far above the noise budget
    small.bias[:] = 0
    key = lwe.keygen(LWE_INFERENCE)
    ct = lwe.encrypt(key, np.zeros(24, dtype=np.int64))
    with pytest.raises(NoiseBudgetError, match="dot_plain"):
        lwe.dot_plain(ct, small.weights)


def test_pixel_features_are_block_means():
    images = np.zeros((2, 32, 32), dtype=np.uint8)
    images[1, :2, :2] = 255
    features = pixel_features(images, grid=16)
    assert features.shape == (2, 256) and features[0].max() == 0 and features[1, 0] == 1.0


def test_out_of_range_features_are_refused_on_the_client_side(data, key2048):
    """Out-of-range quantized features used to wrap inside the encrypted scores and flip predictions."""
    features, labels = data
    head = fit_quantized_head(features[:400], labels[:400])
    x = head.quantize_features(features[400:403])
    x[1, 5] = head.feature_max + 40
    for run in (lambda q: run_paillier(head, key2048, q), lambda q: run_lwe(head, lwe.keygen(LWE_INFERENCE), q)):
        with pytest.raises(PlaintextRangeError,
                           match=r"feature 5 of image 1 is 295, outside the quantization range \[0, 255\]"):
            run(x)
    with pytest.raises(PlaintextRangeError, match="must be integers"):
        run_paillier(head, key2048, x.astype(float))
    with pytest.raises(PlaintextRangeError, match="feature 2 of image 0 .*outside the training range"):
        shifted = features[400:401].copy()
        shifted[0, 2] = features[:400, 2].max() + 1
        head.quantize_features(shifted, clip=False)


@given(column=st.integers(0, 23), value=st.floats(-5, 5))
def test_constant_training_features_are_named(data, column, value):
    features, labels = data
    bad = features[:100].copy()
    bad[:, column] = value
    with pytest.raises(DataError, match=f"training feature {column} is constant"):
        fit_quantized_head(bad, labels[:100])


def test_degenerate_training_data_is_refused(data):
    features, labels = data
    nan = features[:50].copy()
    nan[7, 3] = np.nan
    for bad_features, bad_labels, match in ((nan, labels[:50], "feature 3 of row 7"),
                                            (features[:50], np.zeros(50, int), "single class"),
                                            (features[:50], labels[:40], "labels must have shape"),
                                            (features[:50, 0], labels[:50], "matrix")):
        with pytest.raises(DataError, match=match):
            fit_quantized_head(bad_features, bad_labels)
    with pytest.raises(ParameterError, match="feature_bits"):
        fit_quantized_head(features[:50], labels[:50], feature_bits=0)
