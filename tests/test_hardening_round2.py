"""Second round of hostile inputs: key sizes, the chunk store's MACs, cluster identity, CKKS parameters
and key fingerprints, notebook parameters, run records.  As in ``test_hardening``: every bad input ends
in a PPDLError subclass naming the culprit, never another exception type and never a wrong result."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppdl_utils import secret_scan
from ppdl_utils.crypto import keyfiles
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.keyfiles import KeyFileError
from ppdl_utils.crypto.paillier import (
    InsecureKeyError,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
    require_key_size,
)
from ppdl_utils.crypto.security import ParameterError
from ppdl_utils.errors import PPDLError
from ppdl_utils.images.encryption import ImageEncryptor


@pytest.fixture(autouse=True)
def no_registry():
    secret_scan.deactivate()
    yield
    secret_scan.deactivate()


# --------------------------------------------------------------------------- minimum key size
@given(bits=st.integers(8, 1023).map(lambda b: 2 * b))
def test_keys_below_2048_bits_are_made_only_in_the_labelled_mode(bits):
    with pytest.raises(InsecureKeyError, match=f"key_bits={bits}.*allow_insecure=True"):
        generate_keypair(bits)


@given(bits=st.integers(-10, 2047) | st.sampled_from([1023, 1025, 2.5e3, "2048", None, True]))
def test_load_or_create_never_saves_a_weak_or_malformed_size(tmp_path_factory, bits):
    folder = tmp_path_factory.mktemp("keys")
    with pytest.raises(KeyFileError, match="key_bits="):
        keyfiles.load_or_create_private_key(folder, bits)
    if isinstance(bits, int) and not isinstance(bits, bool) and bits < 1024:
        with pytest.raises(KeyFileError, match="key_bits="):  # a toy key is never saved, even in quick mode
            keyfiles.load_or_create_private_key(folder, bits, allow_insecure=True)
    assert not list(folder.glob("*.json"))


def test_a_quick_key_lives_only_under_an_insecure_name(tmp_path, other_key):
    key = keyfiles.load_or_create_private_key(tmp_path, 1024, allow_insecure=True)
    assert key.public.insecure_ok
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["paillier_1024.INSECURE.private.json",
                                                               "paillier_1024.INSECURE.public.json"]
    with pytest.raises(KeyFileError, match="allow_insecure=True"):  # a normal load refuses it
        keyfiles.load_private_key(tmp_path / "paillier_1024.INSECURE.private.json")
    with pytest.raises(KeyFileError, match="allow_insecure=True"):
        keyfiles.load_public_key(tmp_path / "paillier_1024.INSECURE.public.json")
    for save in (lambda p: keyfiles.save_private_key(other_key, p),
                 lambda p: keyfiles.save_public_key(other_key.public, p)):
        with pytest.raises(KeyFileError, match="INSECURE"):  # never under the normal name
            save(tmp_path / "paillier_1024.private.json")
    renamed = tmp_path / "paillier_1024.private.json"
    renamed.write_bytes((tmp_path / "paillier_1024.INSECURE.private.json").read_bytes())
    renamed.chmod(0o600)
    with pytest.raises(KeyFileError, match="INSECURE"):
        keyfiles.load_private_key(renamed, allow_insecure=True)


def test_encryptors_refuse_a_small_key_that_is_not_labelled(other_key):
    unlabelled = PaillierPrivateKey(PaillierPublicKey(other_key.n), other_key.p, other_key.q)
    for make in (lambda: ImageEncryptor(unlabelled, "randomized"), lambda: FastEncryptor(unlabelled)):
        with pytest.raises(InsecureKeyError, match="1024-bit key"):
            make()
    ImageEncryptor(other_key, "randomized")  # the labelled quick key works
    with pytest.raises(ParameterError, match="needs the .*private key"):
        ImageEncryptor(other_key.public, "randomized")
    with pytest.raises(ParameterError, match="Paillier key"):
        require_key_size("n", "key")


@given(case=st.sampled_from(["p=q", "swap q", "not int", "tiny"]))
def test_private_keys_from_wrong_primes_are_refused(other_key, key2048, case):
    p, q = {"p=q": (other_key.p, other_key.p), "swap q": (other_key.p, key2048.q),
            "not int": (float(other_key.p), other_key.q), "tiny": (1, other_key.n)}[case]
    with pytest.raises(ParameterError):
        PaillierPrivateKey(other_key.public, p, q)


def test_every_new_error_is_a_ppdl_error():
    assert issubclass(InsecureKeyError, PPDLError) and issubclass(KeyFileError, PPDLError)
