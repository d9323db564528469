"""SIMD-packed CKKS (crypto/ckks_packed) and the private head trained on it (learning/private_head):
encrypted products equal float64 within the CKKS error, training on ciphertexts equals its clear twin,
and every input the protocol cannot take is refused by name before any encrypted work."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppdl_utils.crypto.ckks import CKKSParameterError, InsecureParametersError
from ppdl_utils.crypto.ckks_packed import PACKED_4096, KeyHolder, PackedParams, PackedServer, PackingError
from ppdl_utils.errors import PlaintextRangeError, WrongKeyError
from ppdl_utils.learning import private_head as ph
from ppdl_utils.studies.private_pipeline import mcnemar_exact

TOLERANCE = 2e-3  # measured errors are about 2e-4 on sums of thousands of products


@pytest.fixture(scope="module")
def parties():
    key_holder = KeyHolder()
    return key_holder, PackedServer(PACKED_4096, key_holder.public_keys(), key_holder.fingerprint)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 150), d=st.integers(1, 300), k=st.integers(1, 3), block=st.sampled_from([None, 32, 256]),
       seed=st.integers(0, 2**31))
def test_packed_products_equal_float64(parties, n, d, k, block, seed):
    key_holder, server = parties
    rng = np.random.default_rng(seed)
    x, w, r = rng.uniform(-2, 3, (n, d)), rng.normal(0, 0.3, (k, d)), rng.uniform(-1, 1, (n, k))
    layout = key_holder.layout(d, block)
    packed_x = key_holder.encrypt_matrix(x, layout)
    z = key_holder.decrypt_scores(server.logits(packed_x, key_holder.encrypt_weights(w, layout)))
    g = key_holder.decrypt_gradient(server.gradient(packed_x, key_holder.encrypt_residuals(r, layout)))
    squares = key_holder.decrypt_gradient(server.column_squares(packed_x))[0]
    assert z.shape == (n, k) and g.shape == (k, d)
    np.testing.assert_allclose(z, x @ w.T, atol=TOLERANCE)
    np.testing.assert_allclose(g, r.T @ x, atol=TOLERANCE * max(1, n / 50))
    np.testing.assert_allclose(squares, (x ** 2).sum(axis=0), atol=TOLERANCE * max(1, n / 50))


def test_ciphertexts_are_fresh_and_the_server_holds_no_secret(parties):
    key_holder, server = parties
    layout = key_holder.layout(4)
    one = np.ones((1, 4))
    a, b = key_holder.encrypt_matrix(one, layout), key_holder.encrypt_matrix(one, layout)
    from ppdl_utils.crypto.ckks_packed import _seal_bytes

    assert _seal_bytes(a.ciphertexts[0][0]) != _seal_bytes(b.ciphertexts[0][0])  # randomized encryption
    assert not hasattr(server, "_secret") and not hasattr(server, "_decryptor")
    assert "secret" not in repr(key_holder).lower()


def test_other_key_other_layout_and_other_extractor_are_refused(parties):
    key_holder, server = parties
    other = KeyHolder()
    layout = key_holder.layout(10)
    x_other = other.encrypt_matrix(np.ones((3, 10)), other.layout(10))
    w = key_holder.encrypt_weights(np.ones((1, 10)), layout)
    with pytest.raises(WrongKeyError, match="key"):
        server.logits(x_other, w)
    x = key_holder.encrypt_matrix(np.ones((3, 10)), layout)
    with pytest.raises(PackingError, match="layout"):
        server.logits(x, key_holder.encrypt_weights(np.ones((1, 10)), key_holder.layout(10, 64)))
    x.tag, w.tag = "backbone-a", "backbone-b"
    with pytest.raises(PackingError, match="extractor"):
        server.logits(x, w)
    with pytest.raises(WrongKeyError):
        other.decrypt_scores(server.logits(x, key_holder.encrypt_weights(np.ones((1, 10)), layout)))


@pytest.mark.parametrize("values, match", [
    (np.zeros((0, 10)), "empty"), (np.full((2, 10), np.nan), "NaN"), (np.ones(10), "2-D"), (np.ones((2, 11)), "11"),
])
def test_bad_batches_are_refused_before_encryption(parties, values, match):
    key_holder, _ = parties
    with pytest.raises(PackingError, match=match):
        key_holder.encrypt_matrix(values, key_holder.layout(10))


@pytest.mark.parametrize("params, error", [
    (PackedParams(4096, (40, 40, 40)), InsecureParametersError),
    (PackedParams(3000, (36, 36, 37)), CKKSParameterError),
    (PackedParams(4096, (36, 36, 37), 3), CKKSParameterError),
    (PackedParams(4096, (36, 36, 20)), CKKSParameterError),
])
def test_parameter_sets_are_validated(params, error):
    with pytest.raises(error):
        params.validate()


def test_default_parameters_are_128_bit_and_state_it():
    assert PACKED_4096.validate() == 128 and "128-bit classical" in PACKED_4096.describe()


def test_malformed_server_keys_are_a_named_error():
    with pytest.raises(PackingError, match="public_keys"):
        PackedServer(PACKED_4096, b"garbage" * 4, "f")
    with pytest.raises(PackingError, match="public_keys"):
        PackedServer(PACKED_4096, (100).to_bytes(8, "big") + b"x" * 200, "f")


def blobs(n: int, d: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centers = rng.normal(0, 1.5, (n_classes, d))
    return np.abs(centers[y] + rng.normal(0, 1.0, (n, d))), y


@pytest.mark.parametrize("n_classes", [2, 3])
def test_training_on_ciphertexts_equals_its_clear_twin(parties, n_classes):
    key_holder, server = parties
    x, y = blobs(120, 20, n_classes, seed=n_classes)
    packed = key_holder.encrypt_matrix(ph.augment(x), key_holder.layout(21))
    packed.tag = "test-extractor"
    oracle = ph.EncryptedOracle(key_holder, server, packed, "test-extractor", np.abs(ph.augment(x)).sum(0).max())
    head, log = ph.fit_logistic_head(oracle, y, n_classes, l2=1e-2, max_steps=25, extractor="test-extractor",
                                     feature_low=x.min(0), feature_high=x.max(0), progress=False)
    twin, _ = ph.fit_logistic_head(ph.ClearOracle(x), y, n_classes, l2=1e-2, max_steps=25, progress=False)
    assert log.steps >= 5 and oracle.log.server_cpu_s > 0 and oracle.log.bytes_up > 0
    np.testing.assert_allclose(head.weights, twin.weights, atol=0.05 * np.abs(twin.weights).max())
    assert (head.predict(x) == twin.predict(x)).mean() >= 0.97
    assert (twin.predict(x) == y).mean() > 0.8  # the task is learnable, so the comparison means something
    scores, costs = ph.encrypted_predict(key_holder, server, head, x[:40], "test-extractor")
    np.testing.assert_allclose(scores, head.scores(x[:40]), atol=TOLERANCE)
    assert costs["bytes_up"] > 0 and costs["server_s"] > 0


def test_private_head_refuses_what_it_cannot_take(parties):
    key_holder, server = parties
    x, y = blobs(30, 5, 2, seed=0)
    with pytest.raises(ph.PrivateHeadError, match="one class"):
        ph.fit_logistic_head(ph.ClearOracle(x), np.zeros(30, int), 2, progress=False)
    with pytest.raises(ph.PrivateHeadError, match="0..1"):
        ph.fit_logistic_head(ph.ClearOracle(x), np.full(30, -1), 2, progress=False)
    with pytest.raises(ph.PrivateHeadError, match="max_steps"):
        ph.fit_logistic_head(ph.ClearOracle(x), y, 2, max_steps=0, progress=False)
    head, _ = ph.fit_logistic_head(ph.ClearOracle(x), y, 2, max_steps=5, extractor="A", feature_low=x.min(0),
                                   feature_high=x.max(0), progress=False)
    with pytest.raises(ph.FeatureMismatchError, match="extractor B"):
        ph.encrypted_predict(key_holder, server, head, x, "B")
    with pytest.raises(ph.FeatureMismatchError, match="shape"):
        ph.encrypted_predict(key_holder, server, head, x[:, :4], "A")
    with pytest.raises(PlaintextRangeError, match="outside"):
        ph.encrypted_predict(key_holder, server, head, x + 1e3, "A")
    packed = key_holder.encrypt_matrix(ph.augment(x), key_holder.layout(6))
    packed.tag = "A"
    with pytest.raises(ph.FeatureMismatchError, match="extractor"):
        ph.EncryptedOracle(key_holder, server, packed, "B", 1.0)


def test_mcnemar_exact_counts_discordant_pairs():
    a = np.array([1, 1, 1, 0, 0, 1], bool)
    b = np.array([1, 0, 0, 0, 1, 1], bool)
    p, a_only, b_only = mcnemar_exact(a, b)
    assert (a_only, b_only) == (2, 1) and p == pytest.approx(1.0)
    assert mcnemar_exact(a, a) == (1.0, 0, 0)
    p_strong, *_ = mcnemar_exact(np.ones(40, bool), np.r_[np.zeros(20, bool), np.ones(20, bool)])
    assert p_strong < 1e-5
