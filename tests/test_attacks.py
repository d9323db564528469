"""Tests of ppdl_utils.attacks.algebraic: each attack recovers its target regime exactly and fails on randomized input.

Ciphertexts are built directly with gmpy2 from a small but real Paillier key
(phe, 512-bit n: fast, tests only) and checked against the private key.
"""
from __future__ import annotations

import random

import gmpy2
import numpy as np
import pytest
from phe import paillier

from ppdl_utils.attacks.algebraic import (
    AttackResult,
    attack_fixed_r,
    attack_lwe_fixed,
    attack_r_one,
    attack_rsa_dictionary,
)
from ppdl_utils.attacks.substitution import (
    apply_table,
    attack_substitution_ciphertext_only,
    attack_table_known_pair,
    chest_xray_reference_histogram,
)
from ppdl_utils.errors import CiphertextError, ImageFormatError
from ppdl_utils.images.metrics import psnr, ssim

# ----------------------------------------------------------------------------- fixtures / builders


def smooth_image(size: int = 24, center=(12, 9), radius: int = 5, disk_value: int = 230, border: bool = True):
    """Gradient + bright disk, black 1-pixel border (a 'known' pixel value 0 at (0, 0))."""
    i, j = np.indices((size, size))
    img = 20 + 3 * i + 2 * j
    img[(i - center[0]) ** 2 + (j - center[1]) ** 2 <= radius**2] = disk_value
    if border:
        img[0, :] = img[-1, :] = img[:, 0] = img[:, -1] = 0
    assert img.max() <= 255
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def key():
    pub, priv = paillier.generate_paillier_keypair(n_length=512)
    return pub, priv


@pytest.fixture(scope="module")
def rng():
    return random.Random(2024)


def _unit(n, rng):
    while True:
        r = rng.randrange(2, n)
        if gmpy2.gcd(r, n) == 1:
            return gmpy2.mpz(r)


def enc_r_one(img, n):
    return np.array([[1 + n * int(m) for m in row] for row in img], dtype=object)


def enc_fixed_r(img, n, rng):
    n2 = gmpy2.mpz(n) ** 2
    big_r = gmpy2.powmod(_unit(n, rng), n, n2)
    return np.array([[(1 + n * int(m)) * big_r % n2 for m in row] for row in img], dtype=object)


def enc_randomized(img, n, rng):
    n2 = gmpy2.mpz(n) ** 2
    return np.array(
        [[(1 + n * int(m)) * gmpy2.powmod(_unit(n, rng), n, n2) % n2 for m in row] for row in img], dtype=object
    )


def enc_table(img, table):
    return np.array([[table[int(m)] for m in row] for row in img], dtype=object)


def render(cipher) -> np.ndarray:
    """The 8-bit rendering a CNN sees: c mod 256."""
    return np.array([[int(c) % 256 for c in row] for row in cipher], dtype=np.uint8)


def decrypt(priv, cipher):
    return np.array([[priv.raw_decrypt(int(c)) for c in row] for row in cipher])


@pytest.fixture(scope="module")
def img():
    return smooth_image()


@pytest.fixture(scope="module")
def secret_table(key, rng):
    pub, _ = key
    n = pub.n
    n2 = gmpy2.mpz(n) ** 2
    return [(1 + n * v) * gmpy2.powmod(_unit(n, rng), n, n2) % n2 for v in range(256)]


def test_builders_produce_real_paillier_ciphertexts(key, rng, img, secret_table):
    pub, priv = key
    small = img[:6, :6]
    for c in (
        enc_r_one(small, pub.n),
        enc_fixed_r(small, pub.n, rng),
        enc_randomized(small, pub.n, rng),
        enc_table(small, secret_table),
    ):
        assert np.array_equal(decrypt(priv, c), small)


# ----------------------------------------------------------------------------- r_one


def test_r_one_recovers_exactly(key, img):
    n = key[0].n
    res = attack_r_one(enc_r_one(img, n), n)
    assert isinstance(res, AttackResult)
    assert res.success and res.coverage == 1.0 and res.image.dtype == np.uint8
    assert np.array_equal(res.image, img)


def test_r_one_rejects_randomized_and_fixed_r(key, rng, img):
    n = key[0].n
    with pytest.raises(ValueError, match="not Paillier r_one"):
        attack_r_one(enc_randomized(img[:8, :8], n, rng), n)
    with pytest.raises(ValueError, match="not Paillier r_one"):
        attack_r_one(enc_fixed_r(img[:8, :8], n, rng), n)


def test_r_one_rejects_out_of_range_and_bad_input(key):
    n = key[0].n
    with pytest.raises(ValueError, match="outside 0..255"):
        attack_r_one(np.array([[1 + n * 256]], dtype=object), n)
    with pytest.raises(CiphertextError, match="integers"):
        attack_r_one(np.array([[1.5]], dtype=object), n)
    with pytest.raises(CiphertextError, match="dtype"):
        attack_r_one(np.array([[1.0]]), n)


# ----------------------------------------------------------------------------- fixed_r


def test_fixed_r_recovers_exactly_from_one_known_pixel(key, rng, img):
    n = key[0].n
    cipher = enc_fixed_r(img, n, rng)
    res = attack_fixed_r(cipher, n, known_index=(0, 0), known_value=0)  # black border pixel
    assert res.success and res.coverage == 1.0
    assert np.array_equal(res.image, img)
    # any known pixel works, flat index too (a disk pixel, value 230)
    flat = 12 * img.shape[1] + 9
    assert img.flat[flat] == 230
    res2 = attack_fixed_r(cipher, n, known_index=flat, known_value=230)
    assert res2.success and np.array_equal(res2.image, img)


def test_fixed_r_attack_also_breaks_r_one(key, img):
    n = key[0].n  # r = 1 is the special case R = 1
    res = attack_fixed_r(enc_r_one(img, n), n, (0, 0), 0)
    assert res.success and np.array_equal(res.image, img)


def test_fixed_r_wrong_known_value_is_detected_or_shifted(key, rng, img):
    n = key[0].n
    res = attack_fixed_r(enc_fixed_r(img, n, rng), n, (0, 0), 100)
    # 100 + (m - 0) > 255 for the disk: inconsistent pixels are reported
    assert not res.success and 0 < res.coverage < 1


def test_fixed_r_fails_on_randomized(key, rng, img):
    n = key[0].n
    res = attack_fixed_r(enc_randomized(img, n, rng), n, (0, 0), 0)
    assert not res.success
    assert res.coverage <= 2 / img.size  # only the reference pixel itself is "consistent"
    assert "not fixed_r" in res.notes
    assert psnr(img, res.image) < 15


def test_fixed_r_rejects_values_above_n_squared_and_bad_index(key, img):
    n = key[0].n
    with pytest.raises(CiphertextError, match="n\\^2"):
        attack_fixed_r(np.array([[n * n + 5, 1]], dtype=object), n, 0, 0)
    with pytest.raises(IndexError):
        attack_fixed_r(enc_r_one(img, n), n, (99, 0), 0)
    with pytest.raises(ValueError, match="0..255"):
        attack_fixed_r(enc_r_one(img, n), n, (0, 0), 256)


# ----------------------------------------------------------------------------- table, known pair


@pytest.fixture(scope="module")
def second_img():
    # different geometry, built only from gray levels present in the first image
    other = smooth_image(center=(6, 16), radius=4).T.copy()
    return other


def test_table_known_pair_decrypts_second_image(img, second_img, secret_table):
    assert set(np.unique(second_img)) <= set(np.unique(img))
    mapping = attack_table_known_pair(enc_table(img, secret_table), img)
    assert len(mapping) == len(np.unique(img))
    res = apply_table(enc_table(second_img, secret_table), mapping)
    assert res.success and res.coverage == 1.0
    assert np.array_equal(res.image, second_img)


def test_table_partial_coverage_is_reported(img, secret_table):
    new = img.copy()
    new[5:8, 5:8] = 1  # value 1 never appears in the known image
    assert 1 not in set(np.unique(img))
    mapping = attack_table_known_pair(enc_table(img, secret_table), img)
    res = apply_table(enc_table(new, secret_table), mapping, fill=7)
    assert not res.success
    assert res.coverage == pytest.approx(1 - 9 / new.size)
    assert np.all(res.image[5:8, 5:8] == 7)
    mask = np.ones_like(new, bool)
    mask[5:8, 5:8] = False
    assert np.array_equal(res.image[mask], new[mask])
    assert apply_table(enc_table(new, secret_table), mapping, min_coverage=0.9).success


def test_table_known_pair_fails_on_randomized(key, rng, img, second_img):
    n = key[0].n
    mapping = attack_table_known_pair(enc_randomized(img, n, rng), img)
    res = apply_table(enc_randomized(second_img, n, rng), mapping)
    assert not res.success and res.coverage == 0.0
    assert np.all(res.image == 0)


def test_table_known_pair_on_rendered_images(key, img, second_img):
    # r_one rendered: c mod 256 = 1 + (n mod 256) m mod 256, a bijection since n is odd
    n = key[0].n
    mapping = attack_table_known_pair(render(enc_r_one(img, n)), img, on_conflict="raise")
    res = apply_table(render(enc_r_one(second_img, n)), mapping)
    assert res.success and np.array_equal(res.image, second_img)


def test_table_known_pair_conflicts():
    cipher = np.array([[3, 3, 3], [4, 4, 4]], dtype=np.uint8)
    plain = np.array([[10, 10, 11], [20, 20, 20]], dtype=np.uint8)
    assert attack_table_known_pair(cipher, plain) == {3: 10, 4: 20}  # majority vote
    with pytest.raises(ValueError, match="several plaintexts"):
        attack_table_known_pair(cipher, plain, on_conflict="raise")
    with pytest.raises(ImageFormatError, match="differ in shape"):
        attack_table_known_pair(cipher, plain[:, :2])


# ----------------------------------------------------------------------------- ciphertext-only substitution


def _random_permutation_ssim(img, seeds=range(20)):
    vals = []
    for s in seeds:
        perm = np.random.default_rng(s).permutation(256).astype(np.uint8)
        vals.append(ssim(img, perm[img]))
    return np.array(vals)


@pytest.fixture(scope="module")
def big_img():
    return smooth_image(size=32, center=(16, 12), radius=7, border=False)


@pytest.fixture(scope="module")
def reference_hist():
    # public plaintext of the same family: different disk position / size
    ref_img = smooth_image(size=32, center=(10, 20), radius=6, border=False)
    return np.bincount(ref_img.ravel(), minlength=256)


def test_ciphertext_only_beats_random_substitution(big_img, reference_hist, secret_table):
    res = attack_substitution_ciphertext_only(enc_table(big_img, secret_table), reference_hist, truth=big_img)
    assert res.success and res.image.shape == big_img.shape
    baseline = _random_permutation_ssim(big_img)
    assert res.metrics["ssim"] == pytest.approx(ssim(big_img, res.image))
    assert res.metrics["ssim"] > baseline.max() + 0.2
    assert res.metrics["ssim"] > 0.3
    perm = np.random.default_rng(0).permutation(256).astype(np.uint8)
    assert res.metrics["psnr"] > psnr(big_img, perm[big_img]) + 3
    # orientation fixed by the histogram: recovered levels increase with the gradient
    grad = res.image[:, -4]  # column right of the disk
    assert np.corrcoef(grad.astype(float), np.arange(32))[0, 1] > 0.9
    # the flat disk borders many levels; it is peeled and placed by frequency: it comes out bright
    assert res.metrics["peeled_symbols"] >= 1 and res.image[16, 12] > 200
    assert res.alternative is not None and res.alternative.shape == big_img.shape
    assert res.metrics["ssim_alternative"] < res.metrics["ssim"]


def chest_phantom(size: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Blurred, noisy chest-like phantom: background, body, two lungs, spine."""
    from skimage.filters import gaussian

    i, j = np.indices((size, size)) / size
    img = np.full((size, size), 15.0)
    body = ((i - 0.55) / 0.5) ** 2 + ((j - 0.5) / 0.42) ** 2 < 1
    img[body] = 170
    for cx in (0.32 + shift, 0.68 - shift):
        img[((i - 0.5) / 0.3) ** 2 + ((j - cx) / 0.13) ** 2 < 1] = 70
    img[(abs(j - 0.5) < 0.04) & body] = 215
    img = gaussian(img, 2, preserve_range=True) + np.random.default_rng(seed).normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_ciphertext_only_on_noisy_chest_phantom(secret_table):
    img = chest_phantom(64, seed=0)
    ref = np.bincount(chest_phantom(64, seed=1, shift=0.03).ravel(), minlength=256)
    res = attack_substitution_ciphertext_only(enc_table(img, secret_table), ref, truth=img)
    assert res.success
    assert res.metrics["ssim"] > _random_permutation_ssim(img, range(5)).max() + 0.3
    assert res.metrics["ssim"] > 0.8 and res.metrics["psnr"] > 25


def test_ciphertext_only_on_rendered_r_one_and_stack(key, big_img, reference_hist):
    n = key[0].n
    rendered = render(enc_r_one(big_img, n))
    res = attack_substitution_ciphertext_only(rendered, reference_hist, truth=big_img)
    assert res.success and res.metrics["ssim"] > _random_permutation_ssim(big_img).max() + 0.2
    stack = [rendered, render(enc_r_one(big_img.T.copy(), n))]
    res2 = attack_substitution_ciphertext_only(stack, reference_hist, truth=np.stack([big_img, big_img.T]))
    assert res2.image.shape == (2, 32, 32) and res2.success
    assert res2.metrics["ssim"] > 0.3


def test_ciphertext_only_default_reference_runs(big_img, secret_table):
    h = chest_xray_reference_histogram()
    assert h.shape == (256,) and h.sum() == pytest.approx(1.0) and (h > 0).all()
    res = attack_substitution_ciphertext_only(enc_table(big_img, secret_table))
    assert res.success and res.image.dtype == np.uint8 and res.table is not None


def test_ciphertext_only_fails_on_randomized(key, rng, big_img):
    n = key[0].n
    cipher = enc_randomized(big_img, n, rng)
    res = attack_substitution_ciphertext_only(cipher)
    assert not res.success and res.coverage == 0.0 and "> 256" in res.notes
    # rendered randomized: <= 256 symbols but neighbours are not more equal than chance
    res2 = attack_substitution_ciphertext_only(render(cipher), truth=big_img)
    assert not res2.success
    assert res2.metrics["ssim"] < 0.2


def test_ciphertext_only_validates_reference():
    with pytest.raises(ValueError, match="256 non-negative"):
        attack_substitution_ciphertext_only(np.zeros((8, 8), np.uint8), reference_histogram=np.ones(10))
    with pytest.raises(ImageFormatError, match="2-D image or a stack"):
        attack_substitution_ciphertext_only(np.zeros(8, np.uint8))


# ----------------------------------------------------------------------------- textbook RSA


@pytest.fixture(scope="module")
def rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    priv = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return priv


def test_rsa_dictionary_recovers_textbook_rsa(rsa_key, img):
    pub = rsa_key.public_key().public_numbers()
    cipher = np.array([[int(gmpy2.powmod(int(m), pub.e, pub.n)) for m in row] for row in img], dtype=object)
    # sanity: the private key decrypts it
    d = rsa_key.private_numbers().d
    assert int(gmpy2.powmod(cipher[3, 4], d, pub.n)) == img[3, 4]
    res = attack_rsa_dictionary(cipher, pub.e, pub.n)
    assert res.success and res.coverage == 1.0 and np.array_equal(res.image, img)


def test_rsa_dictionary_fails_on_oaep(rsa_key, img):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    pubkey = rsa_key.public_key()
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    small = img[:10, :10]
    cipher = np.array(
        [[int.from_bytes(pubkey.encrypt(bytes([int(m)]), oaep), "big") for m in row] for row in small], dtype=object
    )
    res = attack_rsa_dictionary(cipher, pubkey.public_numbers().e, pubkey.public_numbers().n)
    assert not res.success and res.coverage == 0.0


# ----------------------------------------------------------------------------- LWE with reused randomness


def lwe_encrypt(img, q, t, dim, seed, reuse_a: bool, reuse_e: bool):
    gen = np.random.default_rng(seed)
    s = [int(x) for x in gen.integers(0, q, dim)]
    delta = q // t
    a_fixed = [int(x) for x in gen.integers(0, q, dim)]
    e_fixed = int(gen.integers(-3, 4))
    b = []
    for m in img.ravel().tolist():
        a = a_fixed if reuse_a else [int(x) for x in gen.integers(0, q, dim)]
        e = e_fixed if reuse_e else int(gen.integers(-3, 4))
        b.append((sum(ai * si for ai, si in zip(a, s)) + e + delta * m) % q)
    b_arr = np.array(b, dtype=object).reshape(img.shape)
    # sanity: decrypt with the secret
    a0 = a_fixed if reuse_a else None
    if a0 is not None:
        inner = sum(ai * si for ai, si in zip(a0, s))
        d0 = (int(b_arr.flat[0]) - inner) % q
        assert ((d0 + delta // 2) // delta) % t == img.flat[0]
    return b_arr


@pytest.mark.parametrize("q", [2**20, 1_000_003])  # t | q, and a prime q with q mod t != 0
def test_lwe_fixed_recovers_exactly(img, q):
    b = lwe_encrypt(img, q, 256, dim=16, seed=1, reuse_a=True, reuse_e=True)
    res = attack_lwe_fixed(b, q, 256, known_index=(0, 0), known_value=0)
    assert res.success and res.coverage == 1.0 and np.array_equal(res.image, img)
    res2 = attack_lwe_fixed(b, q, 256, known_index=(12, 9), known_value=230)
    assert res2.success and np.array_equal(res2.image, img)


def test_lwe_reused_a_with_fresh_small_noise_needs_tolerance(img):
    q = 2**20
    b = lwe_encrypt(img, q, 256, dim=16, seed=2, reuse_a=True, reuse_e=False)
    strict = attack_lwe_fixed(b, q, 256, (0, 0), 0)
    assert not strict.success  # noise differences are not exactly multiples of Delta
    loose = attack_lwe_fixed(b, q, 256, (0, 0), 0, noise_tolerance=6)  # |e_i - e_ref| <= 6
    assert loose.success and np.array_equal(loose.image, img)


def test_lwe_fixed_fails_on_fresh_randomness(img):
    q = 2**20
    b = lwe_encrypt(img, q, 256, dim=16, seed=3, reuse_a=False, reuse_e=False)
    res = attack_lwe_fixed(b, q, 256, (0, 0), 0)
    assert not res.success and res.coverage <= 2 / img.size
    assert psnr(img, res.image) < 15


def test_lwe_fixed_validates():
    with pytest.raises(ValueError, match="exceeds"):
        attack_lwe_fixed(np.array([[1, 2]]), 100, 256, 0, 0)
    with pytest.raises(ValueError, match="0..255"):
        attack_lwe_fixed(np.array([[1, 2]]), 2**20, 256, 0, 300)
