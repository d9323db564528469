"""Tests of ppdl_utils.crypto.lwe: round trips, homomorphisms, regimes, noise budget, error paths."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppdl_utils.crypto import lwe
from ppdl_utils.crypto.lwe import DEFAULT, TEACHING, LWEParams
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.errors import CiphertextError, NoiseBudgetError, PlaintextRangeError, WrongKeyError

T = TEACHING.t
B = TEACHING.error_bound
DELTA = TEACHING.delta
KMAX = TEACHING.max_fresh_multiplier
REGIMES = [Regime.RANDOMIZED, Regime.FIXED_R]
FEW = settings(max_examples=30, deadline=None)

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=5)
messages = hnp.arrays(np.int64, shapes, elements=st.integers(0, T - 1))


def same_shape_pair(dtype=np.int64, lo=0, hi=T - 1):
    elems = st.integers(lo, hi)
    return shapes.flatmap(
        lambda s: st.tuples(hnp.arrays(dtype, s, elements=elems), hnp.arrays(dtype, s, elements=elems))
    )


def centred(k: int) -> int:
    r = k % T
    return r - T if r >= T // 2 else r


@pytest.fixture(scope="module")
def key() -> lwe.LWESecretKey:
    return lwe.keygen(TEACHING)


@pytest.fixture(scope="module")
def other_key() -> lwe.LWESecretKey:
    return lwe.keygen(TEACHING)


@pytest.fixture(scope="module")
def default_key() -> lwe.LWESecretKey:
    return lwe.keygen(DEFAULT)


# --------------------------------------------------------------------------- parameter sets
def test_default_params_match_he_standard_row():
    assert (DEFAULT.n, DEFAULT.q, DEFAULT.t) == (1024, 2**26, 2**12)
    assert math.log2(DEFAULT.q) <= 27  # HE standard v1.1, n=1024, 128-bit classical
    assert DEFAULT.security_bits == 128
    assert "HomomorphicEncryption.org" in DEFAULT.note and "27" in DEFAULT.note
    assert DEFAULT.t >= 256 and DEFAULT.q % DEFAULT.t == 0 and DEFAULT.q <= 2**31
    assert DEFAULT.error_bound == 19 and DEFAULT.max_fresh_multiplier == 431


def test_teaching_params_marked_insecure():
    assert TEACHING.security_bits == 0
    assert "INSECURE" in TEACHING.name and "INSECURE" in TEACHING.note
    assert TEACHING.n < 64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(q=2**32), r"\[2, 2\^31\]"),
        (dict(q=1000, t=256), "multiple of t"),
        (dict(sigma=3000.0), "Delta/2"),
        (dict(sigma=0.0), "sigma must be positive"),
        (dict(n=0), "positive int"),
    ],
)
def test_invalid_params_rejected(kwargs, match):
    base = dict(n=16, q=2**20, t=256, sigma=3.2, name="x", security_bits=0, note="")
    with pytest.raises(ValueError, match=match):
        LWEParams(**{**base, **kwargs})


# --------------------------------------------------------------------------- samplers
def test_samplers_have_the_stated_support_and_width():
    u = lwe._uniform_mod(1000, 20000)  # non power of two: rejection sampling
    assert u.min() >= 0 and u.max() < 1000 and u.max() > 990
    s = lwe._ternary(9000)
    assert set(np.unique(s)) == {-1, 0, 1} and np.bincount(s + 1).min() > 2700
    e = lwe._rounded_gaussian(DEFAULT.sigma, DEFAULT.error_bound, 20000)
    assert np.abs(e).max() <= DEFAULT.error_bound
    assert abs(e.std() - DEFAULT.sigma) < 0.15


# --------------------------------------------------------------------------- round trips
@FEW
@given(m=messages, regime=st.sampled_from(REGIMES))
def test_round_trip_teaching(key, m, regime):
    ct = lwe.encrypt(key, m, regime)
    assert ct.shape == m.shape and ct.a.shape == m.shape + (TEACHING.n,)
    assert ct.noise_bound == B and ct.regime is regime
    out = lwe.decrypt(key, ct)
    assert out.dtype == np.int64 and out.shape == m.shape
    np.testing.assert_array_equal(out, m)
    assert np.abs(lwe.measure_noise(key, ct)).max() <= ct.noise_bound


@pytest.mark.parametrize("regime", REGIMES + ["randomized", "fixed_r"])
def test_round_trip_default_image(default_key, regime):
    img = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    img[0, :3] = [0, 255, 128]
    ct = lwe.encrypt(default_key, img, regime)
    np.testing.assert_array_equal(lwe.decrypt(default_key, ct), img)


def test_round_trip_default_extremes(default_key):
    m = np.array([0, 1, DEFAULT.t - 2, DEFAULT.t - 1])
    np.testing.assert_array_equal(lwe.decrypt(default_key, lwe.encrypt(default_key, m)), m)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.uint64, np.int32])
def test_integer_dtypes_accepted(key, dtype):
    m = np.array([[0, 7], [200, 255]], dtype=dtype)
    np.testing.assert_array_equal(lwe.decrypt(key, lwe.encrypt(key, m)), m.astype(np.int64))


def test_python_scalar_and_list(key):
    assert int(lwe.decrypt(key, lwe.encrypt(key, 42))) == 42
    np.testing.assert_array_equal(lwe.decrypt(key, lwe.encrypt(key, [3, 4, 5])), [3, 4, 5])


def test_empty_array(key):
    ct = lwe.encrypt(key, np.zeros((0, 3), dtype=np.int64))
    assert lwe.decrypt(key, ct).shape == (0, 3) and lwe.serialized_nbytes(ct) == 0


# --------------------------------------------------------------------------- regimes
def test_fixed_r_is_deterministic(key):
    m = np.array([5, 5, 9, 5])
    c1, c2 = lwe.encrypt(key, m, Regime.FIXED_R), lwe.encrypt(key, m, Regime.FIXED_R)
    np.testing.assert_array_equal(c1.b, c2.b)
    np.testing.assert_array_equal(c1.a, c2.a)
    assert c1.b[0] == c1.b[1] == c1.b[3] and c1.b[0] != c1.b[2]
    # the leak: b differences are Delta times plaintext differences
    assert (int(c1.b[2]) - int(c1.b[0])) % TEACHING.q == DELTA * 4


def test_randomized_gives_fresh_ciphertexts(key):
    m = np.full(50, 7)
    c1, c2 = lwe.encrypt(key, m), lwe.encrypt(key, m)
    rows = np.concatenate([c1.a, c1.b[:, None], c2.a, c2.b[:, None]], axis=1).reshape(100, -1)
    assert len(np.unique(rows, axis=0)) == 100  # every (a, b) differs, equal messages notwithstanding
    np.testing.assert_array_equal(lwe.decrypt(key, c1), m)


@pytest.mark.parametrize("regime, match", [(Regime.R_ONE, "r_one"), (Regime.TABLE, "table"), ("table", "table")])
def test_unsupported_regime_named(key, regime, match):
    with pytest.raises(ValueError, match=f"does not support regime '{match}'"):
        lwe.encrypt(key, [1], regime)


def test_unknown_regime_string(key):
    with pytest.raises(ValueError, match="unknown encryption regime 'bogus'"):
        lwe.encrypt(key, [1], "bogus")


# --------------------------------------------------------------------------- homomorphisms
@FEW
@given(pair=same_shape_pair(), r1=st.sampled_from(REGIMES), r2=st.sampled_from(REGIMES))
def test_add_homomorphic(key, pair, r1, r2):
    m1, m2 = pair
    c = lwe.add(lwe.encrypt(key, m1, r1), lwe.encrypt(key, m2, r2))
    np.testing.assert_array_equal(lwe.decrypt(key, c), (m1 + m2) % T)
    assert c.noise_bound == 2 * B
    assert c.regime is (Regime.FIXED_R if r1 is r2 is Regime.FIXED_R else Regime.RANDOMIZED)
    assert np.abs(lwe.measure_noise(key, c)).max() <= c.noise_bound


@FEW
@given(m=messages, k=st.integers(-(10**6), 10**6))
def test_add_plain_scalar(key, m, k):
    ct = lwe.encrypt(key, m)
    for c in (lwe.add_plain(ct, k), ct + k, k + ct):
        np.testing.assert_array_equal(lwe.decrypt(key, c), (m + k) % T)
        assert c.noise_bound == ct.noise_bound


@FEW
@given(pair=same_shape_pair(lo=-(2**40), hi=2**40))
def test_add_plain_array_and_sub(key, pair):
    m, k = pair[0] % T, pair[1]
    ct = lwe.encrypt(key, m)
    np.testing.assert_array_equal(lwe.decrypt(key, lwe.add_plain(ct, k)), (m + k) % T)
    np.testing.assert_array_equal(lwe.decrypt(key, k + ct), (m + k) % T)  # ndarray on the left
    np.testing.assert_array_equal(lwe.decrypt(key, ct - k), (m - k) % T)


def test_add_plain_broadcasts_a_scalar_ciphertext(key):
    ct = lwe.encrypt(key, 10)
    c = lwe.add_plain(ct, np.array([[1, 2, 3]]))
    assert c.shape == (1, 3) and c.a.shape == (1, 3, TEACHING.n)
    np.testing.assert_array_equal(lwe.decrypt(key, c), [[11, 12, 13]])


@FEW
@given(m=messages, k=st.integers(-KMAX, KMAX), regime=st.sampled_from(REGIMES))
def test_mul_plain_scalar_incl_negative(key, m, k, regime):
    ct = lwe.encrypt(key, m, regime)
    for c in (lwe.mul_plain(ct, k), ct * k, k * ct):
        np.testing.assert_array_equal(lwe.decrypt(key, c), (k * m) % T)
        assert c.noise_bound == B * abs(k)
        assert np.abs(lwe.measure_noise(key, c)).max() <= c.noise_bound


@FEW
@given(pair=same_shape_pair(lo=-KMAX, hi=KMAX))
def test_mul_plain_array(key, pair):
    m, k = pair[0] % T, pair[1]
    c = lwe.mul_plain(lwe.encrypt(key, m), k)
    np.testing.assert_array_equal(lwe.decrypt(key, c), (k * m) % T)
    assert c.noise_bound == B * int(np.abs(k).max())


def test_mul_plain_reduces_huge_scalar_mod_t(key):
    m = np.arange(0, 256)
    k = 10**30 * T + 5  # a Python int far beyond int64; equals 5 mod t
    c = lwe.mul_plain(lwe.encrypt(key, m), k)
    np.testing.assert_array_equal(lwe.decrypt(key, c), (5 * m) % T)
    assert c.noise_bound == 5 * B


def test_neg_and_sub_ciphertexts(key):
    m1, m2 = np.array([1, 100, 4000]), np.array([2, 50, 4095])
    c1, c2 = lwe.encrypt(key, m1), lwe.encrypt(key, m2)
    np.testing.assert_array_equal(lwe.decrypt(key, -c1), (-m1) % T)
    np.testing.assert_array_equal(lwe.decrypt(key, c1 - c2), (m1 - m2) % T)


def test_ciphertext_times_ciphertext_unsupported(key):
    c = lwe.encrypt(key, [1])
    with pytest.raises(TypeError):
        c * c  # noqa: B018


def test_default_set_homomorphic_linear_combination(default_key):
    img = np.random.default_rng(2).integers(0, 256, (8, 8), dtype=np.uint8)
    ct = lwe.encrypt(default_key, img)
    combo = 3 * ct + (-2) * ct + 7
    np.testing.assert_array_equal(lwe.decrypt(default_key, combo), (img.astype(np.int64) + 7) % DEFAULT.t)
    assert combo.noise_bound == 5 * DEFAULT.error_bound


def test_ciphertext_arrays_are_read_only(key):
    ct = lwe.encrypt(key, [1, 2])
    with pytest.raises(ValueError):
        ct.b[0] = 0


# --------------------------------------------------------------------------- noise budget
def test_mul_threshold_is_exact(key):
    ct = lwe.encrypt(key, np.arange(0, 64))
    ok = lwe.mul_plain(ct, KMAX)  # 2 * B * KMAX < Delta: allowed and correct
    assert 2 * ok.noise_bound < DELTA
    np.testing.assert_array_equal(lwe.decrypt(key, ok), (KMAX * np.arange(64)) % T)
    assert 2 * B * (KMAX + 1) >= DELTA
    for k in (KMAX + 1, -(KMAX + 1), T // 2):
        with pytest.raises(NoiseBudgetError, match=rf"would become {B * abs(centred(k))}, reaching Delta/2"):
            lwe.mul_plain(ct, k)
    with pytest.raises(NoiseBudgetError, match="Delta/2"):
        lwe.mul_plain(ct, np.array([1, 2, KMAX + 1])[:, None] * np.ones(64, dtype=np.int64))


def test_bound_equal_to_half_delta_raises():
    """With B = 16 and Delta = 4096 a bound can hit Delta/2 = 2048 exactly: that must already raise."""
    p = LWEParams(n=16, q=2**20, t=2**8, sigma=2.7, name="TEST-INSECURE", security_bits=0, note="INSECURE")
    k = lwe.keygen(p)
    assert (p.error_bound, p.delta, p.max_fresh_multiplier) == (16, 4096, 127)
    ct = lwe.encrypt(k, np.arange(256))
    np.testing.assert_array_equal(lwe.decrypt(k, 127 * ct), (127 * np.arange(256)) % 256)
    with pytest.raises(NoiseBudgetError, match="would become 2048, reaching Delta/2 = 2048"):
        lwe.mul_plain(ct, 128)
    half = lwe.mul_plain(ct, 64)  # bound 1024
    with pytest.raises(NoiseBudgetError, match="add: the noise bound would become 2048"):
        lwe.add(half, half)
    assert lwe.add(half, lwe.mul_plain(ct, 63)).noise_bound == 2032


@FEW
@given(k1=st.integers(-KMAX, KMAX), k2=st.integers(-KMAX, KMAX))
def test_add_raises_exactly_when_bound_reaches_half_delta(key, k1, k2):
    m = np.array([0, 1, 17, 4095])
    c1, c2 = lwe.mul_plain(lwe.encrypt(key, m), k1), lwe.mul_plain(lwe.encrypt(key, m), k2)
    total = B * (abs(k1) + abs(k2))
    if 2 * total >= DELTA:
        with pytest.raises(NoiseBudgetError, match=f"add: the noise bound would become {total}"):
            lwe.add(c1, c2)
    else:
        c = lwe.add(c1, c2)
        assert c.noise_bound == total
        np.testing.assert_array_equal(lwe.decrypt(key, c), ((k1 + k2) * m) % T)


def test_many_small_additions_do_not_raise(key):
    m = np.arange(0, 32)
    acc = lwe.encrypt(key, m)
    for _ in range(100):
        acc = acc + lwe.encrypt(key, m)
    assert acc.noise_bound == 101 * B and acc.noise_headroom == (DELTA - 1) // 2 - 101 * B
    np.testing.assert_array_equal(lwe.decrypt(key, acc), (101 * m) % T)


def test_add_plain_never_spends_noise(key):
    ct = lwe.mul_plain(lwe.encrypt(key, [3]), KMAX)
    assert lwe.add_plain(ct, 10**9).noise_bound == ct.noise_bound


# --------------------------------------------------------------------------- error paths
@pytest.mark.parametrize("bad", [[T], [-1], [0, 5, T + 100]])
def test_message_out_of_range(key, bad):
    with pytest.raises(PlaintextRangeError, match=rf"\[0, {T}\)"):
        lwe.encrypt(key, np.array(bad))


@pytest.mark.parametrize("bad", [np.array([1.0, 2.0]), np.array([True, False]), np.array(["a"])])
def test_message_non_integer_dtype(key, bad):
    with pytest.raises(PlaintextRangeError, match=rf"integer dtype .*\[0, {T}\).*got dtype"):
        lwe.encrypt(key, bad)


def test_message_object_non_integer(key):
    with pytest.raises(PlaintextRangeError, match="must be integers"):
        lwe.encrypt(key, np.array([1, 2.5], dtype=object))


def test_plain_operands_must_be_integers(key):
    ct = lwe.encrypt(key, [1, 2])
    with pytest.raises(PlaintextRangeError, match="plaintext addend must have an integer dtype"):
        lwe.add_plain(ct, 0.5)
    with pytest.raises(PlaintextRangeError, match="plaintext multiplier must have an integer dtype"):
        lwe.mul_plain(ct, np.array([1.5, 2.0]))


def test_decrypt_with_other_key(key, other_key):
    ct = lwe.encrypt(key, [1, 2, 3])
    with pytest.raises(WrongKeyError, match=f"encrypted under key {key.fingerprint}.*{other_key.fingerprint}"):
        lwe.decrypt(other_key, ct)


def test_decrypt_with_other_params(key, default_key):
    ct = lwe.encrypt(key, [1])
    with pytest.raises(WrongKeyError, match="parameter set 'TEACHING-INSECURE-n16'.*'LWE-1024-q26'"):
        lwe.decrypt(default_key, ct)


def test_combining_different_keys_or_params(key, other_key, default_key):
    c1, c2 = lwe.encrypt(key, [1]), lwe.encrypt(other_key, [1])
    with pytest.raises(WrongKeyError, match="different keys"):
        lwe.add(c1, c2)
    with pytest.raises(WrongKeyError, match="different keys"):
        c1 - c2  # noqa: B018
    with pytest.raises(WrongKeyError, match="different parameter sets"):
        lwe.add(c1, lwe.encrypt(default_key, [1]))


# --------------------------------------------------------------------------- sizes
def test_serialized_nbytes():
    assert DEFAULT.modulus_nbytes == 4 and DEFAULT.ciphertext_nbytes_per_element == 1025 * 4
    assert TEACHING.ciphertext_nbytes_per_element == 17 * 4


def test_serialized_nbytes_of_ciphertext(key, default_key):
    img = np.zeros((28, 28), dtype=np.uint8)
    assert lwe.serialized_nbytes(lwe.encrypt(default_key, img)) / img.nbytes == 4100
    assert lwe.serialized_nbytes(lwe.encrypt(key, np.zeros((2, 3), dtype=np.int64))) == 6 * 17 * 4


def test_key_repr_hides_secret(key):
    assert "fingerprint" in repr(key) and "array" not in repr(key)
    assert len(key.fingerprint) == 16


def test_serialization_round_trip_and_wrong_key(key, other_key):
    ct = lwe.encrypt(key, np.arange(12).reshape(3, 4)) * 3
    blob = lwe.to_bytes(ct)
    back = lwe.from_bytes(blob, key)
    assert back.shape == (3, 4) and back.noise_bound == ct.noise_bound and back.regime is ct.regime
    assert np.array_equal(lwe.decrypt(key, back), (np.arange(12) * 3).reshape(3, 4))
    with pytest.raises(WrongKeyError, match="not under the given key"):
        lwe.from_bytes(blob, other_key)
    with pytest.raises(CiphertextError, match="truncated or padded"):
        lwe.from_bytes(blob[:-4], key)


def test_bool_lists_are_refused_not_read_as_ints(key):
    with pytest.raises(PlaintextRangeError):
        lwe.encrypt(key, [True, 2])
