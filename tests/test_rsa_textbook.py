"""Tests of ppdl_utils.crypto.rsa_textbook: round trips, multiplicative homomorphism, determinism, errors.

One 2048-bit key is generated per module (key generation is the slow part); the only
smaller key is the clearly labelled 1024-bit one in ``test_small_key_warns``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppdl_utils.crypto import rsa_textbook as rsa
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.errors import CiphertextError, PlaintextRangeError

FEW = settings(max_examples=25, deadline=None)
shapes = hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=6)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.keygen(2048)


@pytest.fixture(scope="module")
def pub(key) -> rsa.RSAPublicKey:
    return key.public


# --------------------------------------------------------------------------- keys
def test_key_is_consistent(key, pub):
    assert key.key_size == pub.key_size == 2048 and pub.e == 65537
    assert key.p * key.q == key.n == pub.n
    lam = math.lcm(key.p - 1, key.q - 1)
    assert (key.d * key.e) % lam == 1
    assert key.security_bits == pub.security_bits == 112
    assert "d=" not in repr(key) and "p=" not in repr(key)


@pytest.mark.parametrize("bits, level", [(1024, 80), (2048, 112), (3072, 128), (4096, 128), (7680, 192), (15360, 256)])
def test_security_levels_follow_nist_table(bits, level):
    assert rsa.security_bits(bits) == level


@pytest.mark.parametrize("bad", [512, 1023, 2048.0])
def test_too_small_or_bad_key_size_rejected(bad):
    with pytest.raises(ValueError, match="key_size must be an int >= 1024"):
        rsa.keygen(bad)


def test_small_key_warns():
    """SMALL 1024-bit KEY (80-bit security), used only to check the warning and its sizes."""
    with pytest.warns(UserWarning, match="below 2048 bits.*112-bit"):
        small = rsa.keygen(1024)
    assert small.key_size == 1024 and rsa.ciphertext_nbytes(small.public) == 128
    m = np.array([0, 2, 255], dtype=np.uint8)
    np.testing.assert_array_equal(rsa.decrypt(small, rsa.encrypt(small.public, m)), m)


def test_ciphertext_nbytes(pub):
    assert rsa.ciphertext_nbytes(pub) == 256


# --------------------------------------------------------------------------- round trips
@FEW
@given(m=hnp.arrays(np.uint8, shapes))
def test_round_trip_uint8_table_path(key, pub, m):
    c = rsa.encrypt(pub, m)
    assert c.dtype == object and c.shape == m.shape
    out = rsa.decrypt(key, c)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, m)


@FEW
@given(m=hnp.arrays(np.int64, shapes, elements=st.integers(0, 2**63 - 1)))
def test_round_trip_int64(key, pub, m):
    np.testing.assert_array_equal(rsa.decrypt(key, rsa.encrypt(pub, m)), m)


@FEW
@given(data=st.data())
def test_round_trip_big_python_ints(key, pub, data):
    vals = data.draw(st.lists(st.integers(0, pub.n - 1), min_size=1, max_size=5))
    m = np.array(vals, dtype=object)
    out = rsa.decrypt(key, rsa.encrypt(pub, m), dtype=object)
    assert list(out) == vals


def test_table_path_matches_direct_pow(pub):
    m = np.arange(256, dtype=np.uint8)
    c_table = rsa.encrypt(pub, m)
    c_elem = rsa.encrypt(pub, m.astype(np.int64))
    assert list(c_table) == list(c_elem) == [pow(v, pub.e, pub.n) for v in range(256)]


def test_ciphertext_size_is_that_of_the_modulus(pub):
    c = rsa.encrypt(pub, np.array([2, 200], dtype=np.uint8))
    assert all(0 <= v < pub.n for v in c) and max(v.bit_length() for v in c) > 2000


# --------------------------------------------------------------------------- homomorphism
@FEW
@given(data=st.data())
def test_multiplicative_homomorphism(key, pub, data):
    shape = data.draw(shapes)
    a = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 2**31 - 1)))
    b = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 2**31 - 1)))
    prod = rsa.multiply(pub, rsa.encrypt(pub, a), rsa.encrypt(pub, b))
    assert prod.shape == a.shape
    np.testing.assert_array_equal(rsa.decrypt(key, prod), a * b)


def test_multiplication_is_mod_n(key, pub):
    big = pub.n - 2  # (N-2)^2 = 4 mod N
    c = rsa.encrypt(pub, np.array([big], dtype=object))
    assert list(rsa.decrypt(key, rsa.multiply(pub, c, c), dtype=object)) == [(big * big) % pub.n] == [4]


def test_multiply_broadcasts(key, pub):
    c = rsa.multiply(pub, rsa.encrypt(pub, np.array([[1], [2]])), rsa.encrypt(pub, np.array([3, 5, 7])))
    np.testing.assert_array_equal(rsa.decrypt(key, c), [[3, 5, 7], [6, 10, 14]])


# --------------------------------------------------------------------------- determinism
def test_fixed_points(pub):
    m = np.array([0, 1, pub.n - 1, 2], dtype=object)
    c = rsa.encrypt(pub, m)
    assert list(c[:3]) == [0, 1, pub.n - 1]  # 0^e, 1^e and (-1)^e (e odd) are fixed
    assert c[3] != 2


def test_uint8_fixed_points_leak_in_images(pub):
    img = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    assert rsa.encrypt(pub, img).tolist() == [[0, 1], [1, 0]]


def test_deterministic_equal_messages_equal_ciphertexts(pub):
    m = np.array([7, 7, 9, 7], dtype=np.uint8)
    c1, c2 = rsa.encrypt(pub, m), rsa.encrypt(pub, m, regime="deterministic")
    c3 = rsa.encrypt(pub, m.astype(np.int32), regime=Regime.FIXED_R)
    assert c1.tolist() == c2.tolist() == c3.tolist()
    assert c1[0] == c1[1] == c1[3] != c1[2]


@pytest.mark.parametrize("regime", [Regime.RANDOMIZED, "randomized"])
def test_randomized_regime_impossible(pub, regime):
    with pytest.raises(ValueError, match="no randomness.*OAEP"):
        rsa.encrypt(pub, np.array([1, 2]), regime=regime)


@pytest.mark.parametrize("regime, name", [(Regime.R_ONE, "r_one"), (Regime.TABLE, "table")])
def test_other_regimes_rejected(pub, regime, name):
    with pytest.raises(ValueError, match=f"does not support regime '{name}'"):
        rsa.encrypt(pub, np.array([1]), regime=regime)


# --------------------------------------------------------------------------- error paths
def test_plaintext_at_or_above_modulus(pub):
    with pytest.raises(PlaintextRangeError, match=r"\[0, N\) with N of 2048 bits"):
        rsa.encrypt(pub, np.array([1, pub.n], dtype=object))


def test_negative_plaintext(pub):
    with pytest.raises(PlaintextRangeError, match=r"\[0, N\).*got values in \[-1, 3\]"):
        rsa.encrypt(pub, np.array([3, -1]))


@pytest.mark.parametrize("bad", [np.array([1.0]), np.array([True]), 2.5])
def test_non_integer_plaintext(pub, bad):
    with pytest.raises(PlaintextRangeError, match="must be integers.*got dtype"):
        rsa.encrypt(pub, bad)


def test_non_integer_object_plaintext(pub):
    with pytest.raises(PlaintextRangeError, match="non-integer objects"):
        rsa.encrypt(pub, np.array([1, "2"], dtype=object))


def test_ciphertext_out_of_range(key, pub):
    with pytest.raises(CiphertextError, match=r"out of range \[0, N\)"):
        rsa.decrypt(key, np.array([pub.n], dtype=object))
    with pytest.raises(CiphertextError, match=r"out of range \[0, N\)"):
        rsa.decrypt(key, np.array([-5]))


def test_ciphertext_bad_type(key, pub):
    with pytest.raises(CiphertextError, match="got dtype float64"):
        rsa.decrypt(key, np.array([1.5]))
    with pytest.raises(CiphertextError, match="got str"):
        rsa.decrypt(key, np.array(["x"], dtype=object))


def test_multiply_validates_both_operands(pub):
    good = rsa.encrypt(pub, np.array([2]))
    with pytest.raises(CiphertextError, match="second ciphertext value out of range"):
        rsa.multiply(pub, good, np.array([pub.n + 1], dtype=object))
    with pytest.raises(CiphertextError, match="first ciphertext value out of range"):
        rsa.multiply(pub, np.array([pub.n], dtype=object), good)


def test_decrypt_overflow_names_the_fix(key, pub):
    c = rsa.encrypt(pub, np.array([2**40]))
    prod = rsa.multiply(pub, c, c)  # 2^80 does not fit int64
    with pytest.raises(PlaintextRangeError, match=r"dtype=object"):
        rsa.decrypt(key, prod)
    assert list(rsa.decrypt(key, prod, dtype=object)) == [2**80]


def test_empty_array(key, pub):
    c = rsa.encrypt(pub, np.zeros((0, 4), dtype=np.uint8))
    assert c.shape == (0, 4) and rsa.decrypt(key, c).shape == (0, 4)


def test_fingerprint_and_serialization(key, pub):
    from ppdl_utils.errors import WrongKeyError

    c = rsa.encrypt(pub, np.arange(6, dtype=np.uint8).reshape(2, 3))
    blob = rsa.to_bytes(pub, c)
    back = rsa.from_bytes(blob, pub)
    assert back.shape == (2, 3) and np.array_equal(rsa.decrypt(key, back), np.arange(6).reshape(2, 3))
    assert len(pub.fingerprint) == 16 and str(key.d) not in repr(key)
    with pytest.raises(WrongKeyError, match="not under the given key"):
        rsa.from_bytes(blob, rsa.RSAPublicKey(pub.n, 3))
    with pytest.raises(CiphertextError, match="truncated or padded"):
        rsa.from_bytes(blob[:-1], pub)


def test_bool_and_float_plaintexts_are_refused(pub):
    for bad in ([True, 2], [1.0], [-1, 2**63]):
        with pytest.raises(PlaintextRangeError):
            rsa.encrypt(pub, bad)
