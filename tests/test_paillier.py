"""Paillier core: key presentation, textbook formulas, homomorphic identities, fast encryption."""
from __future__ import annotations

import math

import gmpy2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from phe import paillier as phe_paillier

from ppdl_utils.crypto import paillier as paillier_module
from ppdl_utils.crypto.fast_encrypt import FastEncryptor, short_exponent_bits
from ppdl_utils.crypto.paillier import (
    L,
    add_ciphertexts,
    add_plaintext,
    decrypt_int,
    encrypt_int,
    generate_keypair,
    keypair_from_primes,
    multiply_plaintext,
    security_bits,
    security_label,
)
from ppdl_utils.errors import CiphertextError, PlaintextRangeError

messages = st.integers(min_value=0, max_value=2**64)


def test_key_matches_the_papers_definitions(key2048):
    k = key2048
    assert k.n == k.p * k.q and k.public.bits == 2048
    assert gmpy2.is_prime(k.p) and gmpy2.is_prime(k.q) and k.p != k.q
    assert math.gcd(k.n, (k.p - 1) * (k.q - 1)) == 1
    assert k.public.g == k.n + 1
    assert k.lam == math.lcm(k.p - 1, k.q - 1)
    assert k.mu == pow(L(pow(k.public.g, k.lam, k.n ** 2), k.n), -1, k.n)
    assert str(k.p) not in repr(k) and str(k.lam) not in repr(k)


def test_security_levels_follow_nist():
    assert [security_bits(b) for b in (64, 1024, 2048, 3072)] == [0, 80, 112, 128]
    assert "toy" in security_label(64) and "deprecated" in security_label(1024)


def test_teaching_key_from_small_primes():
    k = keypair_from_primes(17, 19)
    assert (k.n, k.lam) == (323, 144)
    assert decrypt_int(k, encrypt_int(k.public, 42)) == 42
    with pytest.raises(ValueError, match="not an odd prime"):
        keypair_from_primes(15, 19)
    with pytest.raises(ValueError, match="distinct"):
        keypair_from_primes(19, 19)
    with pytest.raises(ValueError, match="even number of bits"):
        generate_keypair(15)


@given(m1=messages, m2=messages)
def test_homomorphic_identities_of_the_paper(key2048, m1, m2):
    pub = key2048.public
    c1, c2 = encrypt_int(pub, m1), encrypt_int(pub, m2)
    assert decrypt_int(key2048, c1) == m1
    assert decrypt_int(key2048, add_ciphertexts(pub, c1, c2)) == (m1 + m2) % pub.n
    assert decrypt_int(key2048, add_plaintext(pub, c1, m2)) == (m1 + m2) % pub.n


@given(m=messages, k=st.integers(min_value=-(2**32), max_value=2**32))
def test_multiplication_by_a_plaintext(key2048, m, k):
    pub = key2048.public
    assert decrypt_int(key2048, multiply_plaintext(pub, encrypt_int(pub, m), k)) == (k * m) % pub.n


def test_randomized_encryption_hides_equality(key2048):
    pub = key2048.public
    assert encrypt_int(pub, 7) != encrypt_int(pub, 7)
    assert encrypt_int(pub, 7, r=1) == encrypt_int(pub, 7, r=1) == 1 + 7 * pub.n


def test_plaintext_and_ciphertext_range_errors(key2048):
    pub = key2048.public
    with pytest.raises(PlaintextRangeError, match=r"outside \[0, n\)"):
        encrypt_int(pub, pub.n)
    with pytest.raises(PlaintextRangeError, match="outside"):
        encrypt_int(pub, -1)
    for bad in (0, pub.n_square, pub.n * 5):
        with pytest.raises(CiphertextError, match="not a Paillier ciphertext"):
            decrypt_int(key2048, bad)


@pytest.mark.parametrize("exponent_bits", [None, -1])
def test_fast_encryptor_is_decryptable_by_phe(key2048, exponent_bits):
    fast = FastEncryptor(key2048, exponent_bits)
    phe_private = key2048.to_phe()
    messages_ = [0, 1, 255, 2**100, key2048.n - 1]
    ciphertexts = fast.encrypt_many(messages_)
    assert [phe_private.raw_decrypt(int(c)) for c in ciphertexts] == messages_
    assert len({int(c) for c in fast.encrypt_many([5] * 20)}) == 20


def test_short_exponent_is_twice_the_security_level():
    assert short_exponent_bits(2048) == 256 and short_exponent_bits(15360) == 512


def test_phe_interoperability(key2048):
    enc = key2048.public.to_phe().encrypt(12345)
    assert decrypt_int(key2048, enc.ciphertext()) == 12345
    assert isinstance(key2048.to_phe(), phe_paillier.PaillierPrivateKey)


def test_one_security_table_serves_paillier_and_rsa():
    from ppdl_utils.crypto import rsa_textbook, security

    assert paillier_module.security_bits is security.security_bits is rsa_textbook.security_bits
    assert [security.security_bits(b) for b in (1023, 1024, 2048, 3072, 7680, 15360)] == [0, 80, 112, 128, 192, 256]


def test_floats_and_bools_are_refused_not_truncated(key2048):
    pub = key2048.public
    for bad in (2.7, 2.0, True, "2", None):
        with pytest.raises(PlaintextRangeError, match="must be an integer"):
            encrypt_int(pub, bad)
    c = encrypt_int(pub, 5)
    with pytest.raises(PlaintextRangeError, match="scalar must be an integer"):
        multiply_plaintext(pub, c, 2.5)
    with pytest.raises(PlaintextRangeError, match="added plaintext must be an integer"):
        add_plaintext(pub, c, 0.5)
    with pytest.raises(CiphertextError, match="must be an integer"):
        decrypt_int(key2048, float(c % 1000))


def test_the_default_short_exponent_passes_its_own_check(key2048):
    fast = FastEncryptor(key2048)
    assert fast.exponent_bits == short_exponent_bits(2048) >= 2 * key2048.public.security_bits
    assert FastEncryptor(key2048, base=fast.base).base == fast.base  # what worker processes receive
