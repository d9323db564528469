"""Batched (column-packed) CKKS for rungs 3 and 4: encrypted scores equal the plaintext twins for every
image of a batch, and batches the protocol cannot take are refused before any encryption."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppdl_utils.crypto.ckks_columns import (
    COLUMNS_CNN_8192,
    COLUMNS_MLP_8192,
    ColumnKeyHolder,
    ColumnParams,
    ColumnServer,
)
from ppdl_utils.crypto.ckks_packed import PackingError, _seal_bytes
from ppdl_utils.errors import NoiseBudgetError, WrongKeyError
from ppdl_utils.learning import encrypted_cnn as ecnn
from ppdl_utils.learning.batched_rungs import batched_scores, conv_as_dense
from ppdl_utils.learning.encrypted_common import FeatureRange, FeatureRangeError, InputShapeError
from ppdl_utils.learning.encrypted_mlp import SquareMLP, plain_mlp_scores, quantize_first_layer

SMALL = ColumnParams(4096, (40, 30, 39), 30, "TEST_COLUMNS_4096")  # one level: fast dense checks


@pytest.fixture(scope="module")
def mlp_parties():
    key_holder = ColumnKeyHolder(COLUMNS_MLP_8192)
    return key_holder, ColumnServer(COLUMNS_MLP_8192, key_holder.public_keys(), key_holder.fingerprint)


@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 300), d=st.integers(1, 12), k=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_dense_layer_equals_float64_for_every_example(n, d, k, seed):
    rng = np.random.default_rng(seed)
    key_holder = ColumnKeyHolder(SMALL)
    server = ColumnServer(SMALL, key_holder.public_keys(), key_holder.fingerprint)
    x, w, b = rng.uniform(-1, 1, (n, d)), rng.normal(0, 1, (d, k)), rng.normal(0, 1, k)
    w[np.abs(w) < 1e-3] = 0.5  # an all-zero column is refused by design
    out = key_holder.decrypt(server.dense(key_holder.encrypt(x), w, b))
    np.testing.assert_allclose(out, x @ w + b, atol=1e-3)
    assert server.operations["scalar_products"] == int((w != 0).sum())


@settings(max_examples=5, deadline=None)
@given(d=st.integers(2, 60), levels=st.integers(1, 6), seed=st.integers(0, 2**31))
def test_shared_weights_give_the_very_same_ciphertext(d, levels, seed):
    """Summing the inputs of equal weight first is exact ring arithmetic: the same bytes, fewer products."""
    rng = np.random.default_rng(seed)
    key_holder = ColumnKeyHolder(SMALL)
    server = ColumnServer(SMALL, key_holder.public_keys(), key_holder.fingerprint)
    x = rng.uniform(0, 1, (17, d))
    w = rng.integers(1, levels + 1, (d, 2)) * rng.choice([-0.125, 0.25], (1, 2))  # few distinct weights
    batch = key_holder.encrypt(x)
    shared = server.dense(batch, w, np.zeros(2), share_weights=True)
    products = server.operations["scalar_products"]
    assert products == sum(len(np.unique(w[:, k])) for k in range(2))
    plain = server.dense(batch, w, np.zeros(2), share_weights=False)
    assert server.operations["scalar_products"] - products == 2 * d
    for a, b in zip(shared.ciphertexts, plain.ciphertexts):
        assert _seal_bytes(a) == _seal_bytes(b)
    np.testing.assert_allclose(key_holder.decrypt(shared), x @ w, atol=1e-3)


@settings(max_examples=20, deadline=None)
@given(bits=st.integers(2, 10), seed=st.integers(0, 2**31))
def test_quantized_first_layer_has_few_levels_and_stays_close(bits, seed):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.3, (40, 3))
    w1[:, 2] = 0.0  # an all-zero hidden unit stays zero
    mlp = SquareMLP(w1, rng.normal(0, 0.1, 3), rng.normal(0, 0.3, (3, 2)), np.zeros(2),
                    FeatureRange(np.zeros(40), np.ones(40)))
    quantized = quantize_first_layer(mlp, bits)
    top = 2 ** (bits - 1) - 1
    for k in range(2):
        step = np.abs(w1[:, k]).max() / top
        np.testing.assert_allclose(quantized.w1[:, k] / step, np.round(quantized.w1[:, k] / step), atol=1e-9)
        assert np.abs(quantized.w1[:, k] - w1[:, k]).max() <= step / 2 + 1e-12
        assert len(np.unique(quantized.w1[:, k])) <= 2 * top + 1
    assert not quantized.w1[:, 2].any()
    np.testing.assert_array_equal(quantized.w2, mlp.w2)
    with pytest.raises(InputShapeError, match="bits"):
        quantize_first_layer(mlp, 1)


def test_mlp_batch_equals_its_twin(mlp_parties):
    key_holder, server = mlp_parties
    rng = np.random.default_rng(1)
    mlp = SquareMLP(rng.normal(0, 0.3, (20, 6)), rng.normal(0, 0.1, 6), rng.normal(0, 0.3, (6, 3)),
                    rng.normal(0, 0.1, 3), FeatureRange(np.zeros(20), np.ones(20)))
    x = rng.uniform(0, 1, (150, 20))
    scores, costs = batched_scores(key_holder, server, mlp, x, 64)
    np.testing.assert_allclose(scores, plain_mlp_scores(mlp, x), atol=1e-3)
    assert [c.batch_size for c in costs] == [64, 64, 22] and all(c.server_s > 0 for c in costs)


def test_cnn_batch_equals_its_twin():
    spec = ecnn.CNNSpec(image_size=28, n_filters=2, hidden=8, n_classes=2)
    rng = np.random.default_rng(2)
    cnn = ecnn.SquareCNN(spec, rng.normal(0, 0.1, (2, 8, 8)), rng.normal(0, 0.1, 2),
                         rng.normal(0, 0.1, (2 * spec.windows, 8)), rng.normal(0, 0.1, 8),
                         rng.normal(0, 0.3, (8, 2)), rng.normal(0, 0.1, 2))
    images = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    weights, bias = conv_as_dense(cnn)
    flat = images.reshape(5, -1) / 255.0
    conv = flat @ weights + bias  # the dense form of the strided convolution, filter-major like the twin
    twin_conv = np.stack([(ecnn._windows(im / 255.0, spec) @ cnn.kernels.reshape(2, -1).T + cnn.conv_bias).T.ravel()
                          for im in images])
    np.testing.assert_allclose(conv, twin_conv, atol=1e-12)
    key_holder = ColumnKeyHolder(COLUMNS_CNN_8192)
    server = ColumnServer(COLUMNS_CNN_8192, key_holder.public_keys(), key_holder.fingerprint)
    scores, _ = batched_scores(key_holder, server, cnn, images, 5)
    np.testing.assert_allclose(scores, ecnn.plain_cnn_scores(cnn, images), atol=2e-3)
    with pytest.raises(InputShapeError):
        batched_scores(key_holder, server, cnn, rng.integers(0, 256, (2, 20, 20)).astype(np.uint8), 2)


def test_bad_batches_are_refused(mlp_parties):
    key_holder, server = mlp_parties
    mlp = SquareMLP(np.ones((4, 2)), np.zeros(2), np.ones((2, 2)), np.zeros(2), FeatureRange(np.zeros(4), np.ones(4)))
    with pytest.raises(PackingError, match="batch_size"):
        batched_scores(key_holder, server, mlp, np.ones((3, 4)), 0)
    with pytest.raises(PackingError, match="batch_size"):
        batched_scores(key_holder, server, mlp, np.ones((3, 4)), 5000)
    with pytest.raises(PackingError, match="empty"):
        batched_scores(key_holder, server, mlp, np.ones((0, 4)), 4)
    with pytest.raises(PackingError, match="features"):
        batched_scores(key_holder, server, mlp, np.ones((3, 5)), 4)
    with pytest.raises(FeatureRangeError, match="outside"):
        batched_scores(key_holder, server, mlp, np.full((3, 4), 1.5), 4)
    with pytest.raises(PackingError, match="at most 4096"):
        key_holder.encrypt(np.ones((4097, 1)))


def test_keys_and_levels_are_enforced(mlp_parties):
    key_holder, server = mlp_parties
    other = ColumnKeyHolder(COLUMNS_MLP_8192)
    foreign = other.encrypt(np.ones((2, 3)))
    with pytest.raises(WrongKeyError):
        server.dense(foreign, np.ones((3, 1)), np.zeros(1))
    result = server.dense(key_holder.encrypt(np.ones((2, 3))), np.ones((3, 1)), np.zeros(1))
    with pytest.raises(WrongKeyError):
        other.decrypt(result)
    for _ in range(2):
        result = server.square(result)
    with pytest.raises(NoiseBudgetError, match="no level left"):
        server.square(result)


def test_scores_beyond_the_last_prime_are_refused_before_encryption():
    from ppdl_utils.learning.encrypted_common import OutputRangeError
    from ppdl_utils.studies.ladder import batched_row

    mlp = SquareMLP(np.ones((4, 2)), np.zeros(2), np.ones((2, 2)), np.zeros(2), FeatureRange(np.zeros(4), np.ones(4)))
    bound = COLUMNS_CNN_8192.output_bound
    assert bound == 2.0 ** (38 - 32 - 1)
    with pytest.raises(OutputRangeError, match="decrypts"):
        batched_row(3, "mlp", COLUMNS_CNN_8192, mlp, np.zeros((2, 4)), np.zeros(2, int),
                    np.array([[0.0, bound], [0.0, 1.0]]))
