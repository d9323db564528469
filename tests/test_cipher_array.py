"""Vectorized ciphertext arrays, image regimes, rendering and key files."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ppdl_utils.crypto.cipher_array import PaillierArray, decrypt_array
from ppdl_utils.crypto.keyfiles import load_private_key, load_public_key, save_private_key, save_public_key
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.errors import CiphertextError, ImageFormatError, PlaintextRangeError, PPDLError, WrongKeyError
from ppdl_utils.images.encryption import ImageEncryptor, validate_images
from ppdl_utils.images.render import float_overflows, render

images = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6))
REGIMES = list(Regime)


@pytest.fixture(scope="module")
def encryptors(key2048):
    return {regime: ImageEncryptor(key2048, regime) for regime in REGIMES}


@pytest.mark.parametrize("regime", REGIMES)
@given(image=images)
def test_every_regime_round_trips_exactly(key2048, encryptors, regime, image):
    ciphertexts = encryptors[regime].encrypt(image)
    assert ciphertexts.shape == image.shape and ciphertexts.regime == regime.value
    assert np.array_equal(decrypt_array(key2048, ciphertexts, value_range=(0, 255)), image)


@given(a=images, b=st.data())
def test_vectorized_homomorphic_operations(key2048, encryptors, a, b):
    plain_b = b.draw(hnp.arrays(np.int64, a.shape, elements=st.integers(-1000, 1000)))
    scalar = b.draw(st.integers(-50, 50))
    enc = encryptors[Regime.RANDOMIZED]
    b_pixels = (np.abs(plain_b) % 256).astype(np.uint8)
    ca, cb = enc.encrypt(a), enc.encrypt(b_pixels)
    a64 = a.astype(np.int64)
    assert np.array_equal(decrypt_array(key2048, ca + cb), a64 + b_pixels)
    assert np.array_equal(decrypt_array(key2048, ca + plain_b, signed=True), a64 + plain_b)
    assert np.array_equal(decrypt_array(key2048, ca * scalar, signed=True), a64 * scalar)
    assert decrypt_array(key2048, ca.sum()) == a64.sum()
    assert np.array_equal(decrypt_array(key2048, ca.sum(axis=0)), a64.sum(axis=0))


def test_deterministic_regimes_repeat_and_randomized_does_not(encryptors):
    image = np.full((4, 4), 200, dtype=np.uint8)
    for regime, enc in encryptors.items():
        distinct = len({int(c) for c in enc.encrypt(image).values.ravel()})
        assert distinct == (16 if regime is Regime.RANDOMIZED else 1), regime


def test_r_one_is_c_equals_one_plus_nm(key2048, encryptors):
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    values = encryptors[Regime.R_ONE].encrypt(image).values
    assert [int(c) for c in values.ravel()] == [1 + m * key2048.n for m in range(6)]


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 4), dtype=np.float32), "float pixels"),
    (np.full((4, 4), -3, dtype=np.int16), r"0\.\.255"),
    (np.full((4, 4), 300, dtype=np.int16), r"0\.\.255"),
    (np.zeros((4, 4, 3), dtype=np.uint8), "shape"),
    (np.zeros((4, 4), dtype=bool), "integer dtype"),
])
def test_bad_images_are_rejected_with_the_reason(bad, match):
    with pytest.raises(ImageFormatError, match=match):
        validate_images(bad)


def test_wrong_key_and_corruption_are_detected(key2048, other_key, encryptors):
    ciphertexts = encryptors[Regime.RANDOMIZED].encrypt(np.full((2, 2), 9, dtype=np.uint8))
    with pytest.raises(WrongKeyError, match="under key"):
        decrypt_array(other_key, ciphertexts)
    with pytest.raises(WrongKeyError, match="cannot be combined"):
        ciphertexts + ImageEncryptor(other_key).encrypt(np.zeros((2, 2), dtype=np.uint8))
    corrupted = PaillierArray(ciphertexts.values.copy(), ciphertexts.public)
    corrupted.values[1, 1] = corrupted.values[1, 1] * 3 % key2048.public.n_square
    with pytest.raises(CiphertextError, match=r"outside \[0, 255\].*index \(1, 1\).*NOT detected"):
        decrypt_array(key2048, corrupted, value_range=(0, 255))
    corrupted.values[0, 0] = key2048.p  # not invertible mod n^2
    with pytest.raises(CiphertextError, match="not a Paillier ciphertext"):
        decrypt_array(key2048, corrupted)


def test_value_range_is_not_integrity(key2048, encryptors):
    """Paillier is malleable: E(m) * E(37) is a valid E(m + 37) that value_range cannot flag
    while it stays in range.  This documents the limit (see crypto.bundle for integrity)."""
    image = np.full((2, 2), 9, dtype=np.uint8)
    ciphertexts = encryptors[Regime.RANDOMIZED].encrypt(image)
    shifted = ciphertexts + encryptors[Regime.RANDOMIZED].encrypt(np.full((2, 2), 37, dtype=np.uint8))
    assert np.array_equal(decrypt_array(key2048, shifted, value_range=(0, 255)), image + 37)


def test_plaintext_operand_range_is_checked(key2048, encryptors):
    ciphertexts = encryptors[Regime.RANDOMIZED].encrypt(np.zeros((1, 1), dtype=np.uint8))
    with pytest.raises(PlaintextRangeError, match="added plaintext"):
        ciphertexts + np.array([[key2048.n]], dtype=object)
    with pytest.raises(PlaintextRangeError, match="integers"):
        ciphertexts * 0.5


def test_serialization_round_trip_and_truncation(key2048, other_key, encryptors):
    ciphertexts = encryptors[Regime.TABLE].encrypt(np.arange(6, dtype=np.uint8).reshape(2, 3))
    raw = ciphertexts.to_bytes()
    assert isinstance(raw, bytes) and ciphertexts.nbytes == 6 * 512 < len(raw) < 6 * 512 + 400
    back = PaillierArray.from_bytes(raw, key2048.public)
    assert back.regime == "table" and back.shape == (2, 3)
    assert np.array_equal(decrypt_array(key2048, back), np.arange(6).reshape(2, 3))
    with pytest.raises(CiphertextError, match="truncated or padded"):
        PaillierArray.from_bytes(raw[:-1], key2048.public)
    with pytest.raises(CiphertextError, match="truncated or padded"):
        PaillierArray.from_bytes(raw + b"\0", key2048.public)
    with pytest.raises(WrongKeyError, match=f"not under the given key {other_key.public.fingerprint}"):
        PaillierArray.from_bytes(raw, other_key.public)
    with pytest.raises(CiphertextError, match="regime 'table'"):
        PaillierArray.from_bytes(raw, key2048.public, regime="randomized")
    with pytest.raises(CiphertextError, match="no key fingerprint"):
        PaillierArray.from_bytes(np.zeros((2, 3, 512), dtype=np.uint8), key2048.public)


def test_renderers(key2048, encryptors):
    image = np.tile(np.arange(256, dtype=np.uint8), (2, 1))
    r_one = encryptors[Regime.R_ONE].encrypt(image).values
    assert np.array_equal(render(r_one, key2048.public, "minmax"), image)  # the leak, exactly
    assert not render(r_one, key2048.public, "msb").any()  # 1 + nm < 256n: black
    assert len(np.unique(render(r_one, key2048.public, "mod256"))) == 256  # odd n: a bijection
    noise = render(encryptors[Regime.RANDOMIZED].encrypt(image).values, key2048.public, "mod256")
    assert len(np.unique(noise)) > 150
    assert float_overflows(key2048.public)
    with pytest.raises(ValueError, match="unknown renderer"):
        render(r_one, key2048.public, "float")


@pytest.mark.parametrize("renderer", ["mod256", "msb", "minmax"])
@pytest.mark.parametrize("regime", [Regime.FIXED_R, Regime.TABLE, Regime.R_ONE])
def test_table_fast_path_equals_full_rendering(key2048, encryptors, regime, renderer):
    stack = np.random.default_rng(1).integers(0, 256, (3, 5, 5)).astype(np.uint8)
    enc = encryptors[regime]
    fast = enc.encrypt_rendered(stack, renderer, progress=False)
    slow = np.stack([render(enc.encrypt(img).values, key2048.public, renderer) for img in stack])
    assert np.array_equal(fast, slow)


def test_parallel_randomized_rendering(key2048, encryptors):
    stack = np.zeros((4, 6, 6), dtype=np.uint8)
    out = encryptors[Regime.RANDOMIZED].encrypt_rendered(stack, workers=2, progress=False)
    assert out.shape == stack.shape and out.dtype == np.uint8
    assert len(np.unique(out)) > 50  # all-black plain images, noise-like ciphertexts


def test_key_files(tmp_path, key2048):
    public_path = save_public_key(key2048.public, tmp_path / "pub.json")
    private_path = save_private_key(key2048, tmp_path / "keys" / "private.json")
    assert stat.S_IMODE(os.stat(private_path).st_mode) == 0o600
    assert str(key2048.p) not in public_path.read_text()
    assert load_public_key(public_path) == key2048.public
    loaded = load_private_key(private_path)
    assert (loaded.p, loaded.q, loaded.mu) == (key2048.p, key2048.q, key2048.mu)
    with pytest.raises(PPDLError, match="exists"):
        save_private_key(key2048, private_path)
    os.chmod(private_path, 0o644)
    with pytest.raises(PPDLError, match="readable by others"):
        load_private_key(private_path)
    with pytest.raises(PPDLError, match="does not exist"):
        load_public_key(tmp_path / "missing.json")
    with pytest.raises(PPDLError, match="not a private key"):
        os.chmod(public_path, 0o600)
        load_private_key(public_path)
