"""CKKS wrapper: the security table, homomorphic identities, key separation and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import tenseal as ts
from hypothesis import given, settings
from hypothesis import strategies as st

from ppdl_utils.crypto import ckks
from ppdl_utils.errors import NoiseBudgetError, PPDLError

TEST_PARAMS = ckks.insecure_test_params()  # N=4096, chain (39, 30, 39): depth 1
vectors = st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def ctx() -> ts.Context:
    return ckks.make_context(TEST_PARAMS)


@pytest.fixture(scope="module")
def server_ctx(ctx) -> ts.Context:
    return ckks.load_context(ckks.public_context(ctx))


def test_security_table_edges():
    assert ckks.security_bits(ckks.CKKSParams(8192, (60, 49, 49, 60), 49)) == 128  # exactly 218 bits
    with pytest.raises(ckks.InsecureParametersError, match=r"coeff_mod_bit_sizes.*219 bits.*218"):
        ckks.security_bits(ckks.CKKSParams(8192, (60, 50, 49, 60), 49))
    with pytest.raises(ckks.CKKSParameterError, match="poly_modulus_degree=1000"):
        ckks.security_bits(ckks.CKKSParams(1000, (30, 30), 20))
    assert issubclass(ckks.InsecureParametersError, PPDLError) and issubclass(ckks.InsecureParametersError, ValueError)
    for ring, limit in ckks.HE_STANDARD_MAX_LOGQ.items():
        assert ckks.security_bits(ckks.CKKSParams(ring, (limit,), 20)) == 128


def test_insecure_flag_labels_everything():
    over = ckks.CKKSParams(8192, (60, 40, 40, 40, 60), 40, "too big", insecure=True)
    assert ckks.security_bits(over) == 0
    assert ckks.INSECURE_LABEL in ckks.describe(over)
    assert ckks.INSECURE_LABEL in ckks.describe(TEST_PARAMS)
    with pytest.raises(ckks.InsecureParametersError, match="SEAL refuses"):
        ckks.make_context(over)  # SEAL enforces the table even for a test-only label


@pytest.mark.parametrize("params", [ckks.CNN_8192, ckks.MLP_8192, ckks.TRAINING_8192])
def test_presets_are_128_bit_and_well_formed(params):
    ckks.validate_params(params)
    assert ckks.security_bits(params) == 128
    assert "128-bit" in ckks.describe(params)


def test_scale_and_chain_mismatches_are_named():
    with pytest.raises(ckks.ScaleMismatchError, match="global_scale_bits=30"):
        ckks.validate_params(ckks.CKKSParams(8192, (60, 40, 40, 60), 30))
    with pytest.raises(ckks.ScaleMismatchError, match="first prime"):
        ckks.validate_params(ckks.CKKSParams(8192, (40, 40, 60), 40))
    with pytest.raises(ckks.CKKSParameterError, match="special"):
        ckks.validate_params(ckks.CKKSParams(8192, (60, 40, 40), 40))


@settings(max_examples=10, deadline=None)
@given(a=vectors, b=vectors)
def test_add_and_mul_identities(ctx, a, b):
    n = min(len(a), len(b))
    x, y = np.array(a[:n]), np.array(b[:n])
    ex, ey = ts.ckks_vector(ctx, x.tolist()), ts.ckks_vector(ctx, y.tolist())
    assert np.allclose(ckks.decrypt(ex + ey), x + y, atol=1e-3)
    assert np.allclose(ckks.decrypt(ex - ey), x - y, atol=1e-3)
    assert np.allclose(ckks.decrypt(ckks.checked_mul(ex, ey)), x * y, atol=1e-3)
    assert np.allclose(ckks.decrypt(ckks.checked_mul(ex, y.tolist())), x * y, atol=1e-3)
    assert np.allclose(ckks.decrypt(ckks.checked_mul(ex + ey, ex)), (x + y) * x, atol=1e-3)


def test_server_context_cannot_decrypt(ctx, server_ctx):
    assert not server_ctx.has_secret_key() and server_ctx.has_galois_keys()
    on_server = ts.ckks_vector_from(server_ctx, ts.ckks_vector(ctx, [0.5, 0.25]).serialize())
    result = ckks.checked_mul(on_server, 2.0)
    with pytest.raises(ckks.MissingSecretKeyError, match="secret key"):
        ckks.decrypt(result)
    assert np.allclose(ckks.decrypt(ts.ckks_vector_from(ctx, result.serialize())), [1.0, 0.5], atol=1e-3)
    ckks.require_public(server_ctx)
    with pytest.raises(ckks.SecretKeyOnServerError, match="public_ctx"):
        ckks.require_public(ctx)
    assert ckks.chain_bits(server_ctx) == list(TEST_PARAMS.coeff_mod_bit_sizes)
    assert ckks.context_bytes(ctx) == len(ckks.public_context(ctx)) > ckks.context_bytes(ctx, secret_key=True)


def test_depth_exhaustion_is_named(ctx):
    v = ts.ckks_vector(ctx, [0.5])
    assert ckks.remaining_depth(v) == TEST_PARAMS.max_multiplications == 1
    v = ckks.checked_mul(v, v)
    assert ckks.remaining_depth(v) == 0
    assert np.allclose(ckks.decrypt(v), [0.25], atol=1e-4)
    with pytest.raises(ckks.DepthExhaustedError, match=r"allow 1 multiplication\(s\)"):
        ckks.checked_mul(v, v)
    with pytest.raises(ckks.DepthExhaustedError, match="scale out of bounds"):
        with ckks.ckks_errors("raw TenSEAL multiply"):
            v * v  # noqa: B018  (TenSEAL's own ValueError, translated)
    assert issubclass(ckks.DepthExhaustedError, NoiseBudgetError)


def test_missing_galois_and_relin_keys():
    bare = ckks.make_context(TEST_PARAMS, galois=False, relin=False)
    v = ts.ckks_vector(bare, [0.1, 0.2, 0.3])
    with pytest.raises(ckks.MissingGaloisKeysError, match="mm"):
        ckks.require_galois(bare, "mm")
    with pytest.raises(ckks.MissingGaloisKeysError):
        with ckks.ckks_errors("sum"):
            v.sum()
    with pytest.raises(ckks.MissingRelinKeysError):
        with ckks.ckks_errors("square"):
            v * v  # noqa: B018


def test_scale_mismatch_between_ciphertexts(ctx):
    a = ts.ckks_vector(ctx, [0.1])
    b = ts.ckks_vector(ctx, [0.1], scale=2.0 ** 25)
    ckks.check_same_scale(a, ts.ckks_vector(ctx, [0.2]))
    with pytest.raises(ckks.ScaleMismatchError, match="2\\^30.00 and 2\\^25.00"):
        ckks.check_same_scale(a, b)


def test_balanced_scale_cancels_rescale_drift():
    assert ckks.circuit_weights("ppspsp") == [4, 4, 2, 2, 1, 1]
    with pytest.raises(ckks.CKKSParameterError, match="circuit='px'"):
        ckks.circuit_weights("px")
    ctx = ckks.make_context(ckks.MLP_8192, galois=False)
    assert ckks.MLP_8192.circuit and abs(np.log2(ctx.global_scale) - 30) < 0.01  # near, not exactly, 2^30
    assert ckks.load_context(ckks.public_context(ctx)).global_scale == ctx.global_scale  # the server gets it
    with pytest.raises(ckks.DepthExhaustedError, match="needs 4 levels"):
        ckks.balance_scale(ctx, "pppp")
    assert ckks.output_bound(ckks.CNN_8192) == 16.0
