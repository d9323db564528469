"""Malformed inputs at every public entry point of the crypto layer: key files, serialized
ciphertexts, authenticated bundles and encryptors.  Each must end in a PPDLError subclass whose
message names the culprit (file, field or parameter), never another exception type and never a
silently wrong result."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gmpy2
import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from ppdl_utils import secret_scan
from ppdl_utils.crypto import bundle, keyfiles, lwe, rsa_textbook, serialization
from ppdl_utils.crypto.bundle import IntegrityError, MacKey
from ppdl_utils.crypto.cipher_array import PaillierArray, decrypt_array
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.keyfiles import KeyFileError
from ppdl_utils.crypto.paillier import decrypt_int, encrypt_int
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.crypto.security import ParameterError, min_short_exponent_bits
from ppdl_utils.errors import CiphertextError, PlaintextRangeError, WrongKeyError

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=8)
anything = st.one_of(st.integers(-2**80, 2**80), st.floats(allow_nan=True), st.booleans(), st.none(),
                     st.text(max_size=4), st.lists(st.integers(-3, 3), max_size=2), st.binary(max_size=3))


@pytest.fixture(autouse=True)
def no_registry():
    secret_scan.deactivate()  # keep the process-global registry out of these tests
    yield
    secret_scan.deactivate()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hardening")


@pytest.fixture(scope="module")
def key_files(folder, other_key):
    private = keyfiles.save_private_key(other_key, folder / "good.INSECURE.private.json")
    public = keyfiles.save_public_key(other_key.public, folder / "good.INSECURE.public.json")
    secret_scan.deactivate()
    return json.loads(private.read_text()), json.loads(public.read_text())


def _write(folder: Path, content: "bytes | str | object", name: str = "probe.INSECURE.json") -> Path:
    path = folder / name
    data = content if isinstance(content, bytes) else (content if isinstance(content, str) else json.dumps(content))
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, 0o600)
    return path


def _load_both(path: Path):
    for loader in (keyfiles.load_private_key, keyfiles.load_public_key):
        with pytest.raises(KeyFileError) as error:
            loader(path, allow_insecure=True)
        assert str(path) in str(error.value)


# --------------------------------------------------------------------------- key files
@given(body=json_values)
def test_arbitrary_json_is_a_key_file_error_naming_the_file(folder, body):
    _load_both(_write(folder, body))


@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_are_a_key_file_error(folder, data):
    _load_both(_write(folder, data))


@given(cut=st.integers(0, 4000))
def test_a_key_file_cut_short_is_a_key_file_error(folder, key_files, cut):
    text = json.dumps(key_files[0], indent=1)
    assume(cut < len(text))
    with pytest.raises(KeyFileError, match="probe.INSECURE.json"):
        keyfiles.load_private_key(allow_insecure=True, path=_write(folder, text[:cut]))


@given(field=st.sampled_from(["n", "p", "q", "lambda", "mu", "fingerprint"]), value=json_values)
@example(field="p", value=3)  # a prime that is not the key's: p*q != n
def test_a_wrong_field_is_named(folder, key_files, other_key, field, value):
    body = {**key_files[0], field: value}
    assume(value != key_files[0][field])
    with pytest.raises(KeyFileError, match=f"probe.INSECURE.json.*'{field}'|probe.INSECURE.json.*p\\*q != n"):
        keyfiles.load_private_key(allow_insecure=True, path=_write(folder, body))


@pytest.mark.parametrize("field", ["n", "p", "q"])
def test_a_missing_field_is_named(folder, key_files, field):
    body = {k: v for k, v in key_files[0].items() if k != field}
    with pytest.raises(KeyFileError, match=f"probe.INSECURE.json has no field '{field}'"):
        keyfiles.load_private_key(allow_insecure=True, path=_write(folder, body))


def test_the_issue_examples(folder, key_files, other_key):
    cases = {"a JSON list": [1, 2], "no field 'p'": {k: v for k, v in key_files[0].items() if k != "p"},
             "'p' must be a decimal": {**key_files[0], "p": "abc"},
             "'p' is not an odd prime": {**key_files[0], "p": "1", "q": key_files[0]["n"]}}
    for message, body in cases.items():
        with pytest.raises(KeyFileError, match=message):
            keyfiles.load_private_key(allow_insecure=True, path=_write(folder, body))
    valid = keyfiles.load_private_key(allow_insecure=True, path=_write(folder, key_files[0]))
    assert valid.p == other_key.p  # the valid one loads


@pytest.mark.parametrize("n, reason", [(15, "bits"), (-7, "positive"), (2**1023, "even"), ("prime", "is prime"),
                                       ("square", "perfect power"), ("3p", "prime factor below"),
                                       ("huge", "digits, more than any key")])
def test_public_moduli_that_are_not_rsa_moduli_are_refused(folder, other_key, n, reason):
    n = {"prime": int(gmpy2.next_prime(2**1100)), "square": other_key.p ** 2, "huge": 2**20000 + 1,
         "3p": 3 * other_key.p * other_key.q}.get(n, n) if isinstance(n, str) else n
    body = {"format": keyfiles.FORMAT, "kind": "public", "n": gmpy2.mpz(n).digits(10) if n > 0 else n}
    with pytest.raises(KeyFileError, match=f"probe.INSECURE.json: field 'n' .*{reason}"):
        keyfiles.load_public_key(allow_insecure=True, path=_write(folder, body))


def test_directories_and_symlinks_are_refused(tmp_path, other_key):
    real = keyfiles.save_private_key(other_key, tmp_path / "real.INSECURE.private.json")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "link.json").symlink_to(real)
    for path, message in ((tmp_path / "dir.json", "is a directory"), (tmp_path / "link.json", "symbolic link")):
        with pytest.raises(KeyFileError, match=message):
            keyfiles.load_private_key(path, allow_insecure=True)
        with pytest.raises(KeyFileError, match=message):
            keyfiles.save_private_key(other_key, path, overwrite=True)
    assert keyfiles.load_private_key(real, allow_insecure=True).q == other_key.q


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("crash_in", ["fsync", "replace"])
def test_a_crash_while_overwriting_keeps_the_old_key(tmp_path, monkeypatch, other_key, key2048, crash_in):
    path = keyfiles.save_private_key(other_key, tmp_path / "k.INSECURE.private.json")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("simulated power cut")

    monkeypatch.setattr(os, crash_in, crash)
    with pytest.raises(OSError, match="power cut"):
        keyfiles.save_private_key(key2048, path, overwrite=True)
    monkeypatch.undo()
    assert path.read_bytes() == before and keyfiles.load_private_key(path, allow_insecure=True).p == other_key.p
    assert not list(tmp_path.glob(".*.tmp"))  # the writer removed its own temp file


def test_temp_files_of_killed_writers_are_removed_and_never_loaded(tmp_path, other_key):
    keys = tmp_path / "keys"
    keys.mkdir()
    name = "paillier_1024.INSECURE.private.json"
    orphan = keys / f".{name}.{_dead_pid()}.abc123.tmp"
    orphan.write_text('{"format": "ppdl-paillier-v1", "kind": "priv')  # what a kill -9 leaves
    live = keys / f".{name}.{os.getpid()}.def456.tmp"  # a writer that is still running
    live.write_text("")
    key = keyfiles.load_or_create_private_key(keys, 1024, allow_insecure=True)
    assert not orphan.exists() and live.exists()
    assert keyfiles.load_or_create_private_key(keys, 1024, allow_insecure=True).p == key.p
    with pytest.raises(KeyFileError, match="1024 bits, below 2048"):
        (keys / "paillier_2048.private.json").write_bytes((keys / name).read_bytes())
        os.chmod(keys / "paillier_2048.private.json", 0o600)
        keyfiles.load_or_create_private_key(keys, 2048)


def test_no_overwrite_is_atomic(tmp_path, other_key, key2048):
    path = keyfiles.save_private_key(other_key, tmp_path / "k.INSECURE.private.json")
    with pytest.raises(KeyFileError, match="exists"):
        keyfiles.save_private_key(key2048, path)
    assert keyfiles.load_private_key(path, allow_insecure=True).p == other_key.p


# --------------------------------------------------------------------------- serialized ciphertexts
@pytest.fixture(scope="module")
def lwe_key():
    return lwe.keygen(lwe.TEACHING)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa_textbook.keygen(2048)


@pytest.fixture(scope="module")
def blobs(other_key, lwe_key, rsa_key):
    paillier = PaillierArray(np.array([encrypt_int(other_key.public, m) for m in (3, 1, 4)], dtype=object),
                             other_key.public)
    return {"paillier": paillier.to_bytes(), "lwe": lwe.to_bytes(lwe.encrypt(lwe_key, np.array([3, 1, 4]))),
            "rsa": rsa_textbook.to_bytes(rsa_key.public, rsa_textbook.encrypt(rsa_key.public, np.array([3, 1, 4])))}


def _loader(scheme, other_key, lwe_key, rsa_key):
    return {"paillier": lambda b: PaillierArray.from_bytes(b, other_key.public),
            "lwe": lambda b: lwe.from_bytes(b, lwe_key),
            "rsa": lambda b: rsa_textbook.from_bytes(b, rsa_key.public)}[scheme]


@pytest.mark.parametrize("scheme", ["paillier", "lwe", "rsa"])
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes_are_ciphertext_errors(other_key, lwe_key, rsa_key, scheme, data):
    with pytest.raises(CiphertextError, match="serialized"):
        _loader(scheme, other_key, lwe_key, rsa_key)(data)


def _decrypter(scheme, other_key, lwe_key, rsa_key):
    return {"paillier": lambda c: decrypt_array(other_key, c).ravel().tolist(),
            "lwe": lambda c: lwe.decrypt(lwe_key, c).ravel().tolist(),
            "rsa": lambda c: rsa_textbook.decrypt(rsa_key, c).ravel().tolist()}[scheme]


@pytest.mark.parametrize("scheme", ["paillier", "lwe", "rsa"])
@given(field=st.sampled_from(["format", "key_sha256", "key_fingerprint", "regime", "shape", "width", "params",
                              "noise_bound"]), value=json_values)
def test_a_changed_header_is_refused_or_harmless(other_key, lwe_key, rsa_key, blobs, scheme, field, value):
    """The frame is not authenticated (that is the bundle's job), so an edited header may load, but
    only with the same plaintexts (a reshaped or relabelled array): never wrong values."""
    magic = {"paillier": b"PPDL-PAILLIER-ARRAY\n", "lwe": lwe.CT_MAGIC, "rsa": rsa_textbook.CT_MAGIC}[scheme]
    header, body = serialization.unpack(blobs[scheme], magic, "x")
    assume(field in header and header[field] != value)
    blob = serialization.pack(magic, {**header, field: value}, body)
    try:
        loaded = _loader(scheme, other_key, lwe_key, rsa_key)(blob)
    except (CiphertextError, WrongKeyError) as error:
        assert any(word in str(error) for word in (f"'{field}'", "key", "regime", "format", "parameter set", "bytes"))
        return
    assert _decrypter(scheme, other_key, lwe_key, rsa_key)(loaded) == [3, 1, 4]


def test_serialized_ciphertexts_under_another_key_are_wrong_key_errors(blobs, key2048, rsa_key):
    with pytest.raises(WrongKeyError, match=key2048.public.fingerprint):
        PaillierArray.from_bytes(blobs["paillier"], key2048.public)
    with pytest.raises(WrongKeyError, match="under key"):
        lwe.from_bytes(blobs["lwe"], lwe.keygen(lwe.TEACHING))
    other_rsa = rsa_textbook.RSAPublicKey(rsa_key.n + 2, rsa_key.e)  # any other modulus
    with pytest.raises(WrongKeyError, match=other_rsa.fingerprint):
        rsa_textbook.from_bytes(blobs["rsa"], other_rsa)


# --------------------------------------------------------------------------- authenticated bundles
@pytest.fixture(scope="module")
def sealed(other_key, lwe_key, rsa_key):
    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    paillier = PaillierArray(np.array([encrypt_int(other_key.public, int(m)) for m in image.ravel()],
                                      dtype=object).reshape(2, 3), other_key.public)
    macs = {"paillier": MacKey.derive(other_key), "lwe": MacKey.derive(lwe_key), "rsa": MacKey.derive(rsa_key)}
    return {"paillier": (bundle.seal(paillier, macs["paillier"], context="images"), other_key),
            "lwe": (bundle.seal(lwe.encrypt(lwe_key, image), macs["lwe"], context="images"), lwe_key),
            "rsa": (bundle.seal(rsa_textbook.encrypt(rsa_key.public, image), macs["rsa"], public=rsa_key.public,
                                context="images"), rsa_key)}, macs


@pytest.mark.parametrize("scheme", ["paillier", "lwe", "rsa"])
@given(position=st.integers(0, 10**6), mask=st.integers(1, 255))
def test_any_flipped_byte_fails_the_bundle(sealed, scheme, position, mask):
    (blob, key), macs = sealed[0][scheme], sealed[1]
    changed = bytearray(blob)
    changed[position % len(blob)] ^= mask
    with pytest.raises((IntegrityError, WrongKeyError)):
        bundle.open_bundle(bytes(changed), macs[scheme], key, context="images")


@pytest.mark.parametrize("scheme", ["paillier", "lwe", "rsa"])
@given(cut=st.integers(0, 10**6), extra=st.binary(max_size=8))
def test_truncated_or_extended_bundles_fail(sealed, scheme, cut, extra):
    (blob, key), macs = sealed[0][scheme], sealed[1]
    for changed in (blob[:cut % len(blob)], blob + extra if extra else blob[:-1]):
        with pytest.raises((IntegrityError, WrongKeyError)):
            bundle.open_bundle(changed, macs[scheme], key, context="images")


def test_bundle_round_trip_and_named_failures(sealed, other_key, key2048, lwe_key):
    (blob, key), macs = sealed[0]["paillier"], sealed[1]
    assert np.array_equal(decrypt_array(other_key, bundle.open_bundle(blob, macs["paillier"], key, "images")),
                          np.arange(6).reshape(2, 3))
    with pytest.raises(WrongKeyError, match=key2048.public.fingerprint):
        bundle.open_bundle(blob, macs["paillier"], key2048, "images")
    with pytest.raises(WrongKeyError, match="lwe key"):
        bundle.open_bundle(blob, macs["paillier"], lwe_key, "images")
    with pytest.raises(IntegrityError, match="failed authentication"):
        bundle.open_bundle(blob, MacKey.generate(), key, "images")
    with pytest.raises(IntegrityError, match="context 'images'"):
        bundle.open_bundle(blob, macs["paillier"], key, "features")
    with pytest.raises(CiphertextError, match="must be bytes"):
        bundle.open_bundle("text", macs["paillier"], key)
    assert "hidden" in repr(macs["paillier"]) and MacKey.derive(other_key, "cache") is not None
    assert MacKey.derive(other_key).secret != MacKey.derive(other_key, "cache").secret


def test_a_malleated_ciphertext_passes_value_range_but_not_the_bundle(sealed, other_key):
    """The issue's example: multiplying by E(37) gives a valid ciphertext; only the HMAC sees it."""
    (blob, key), macs = sealed[0]["paillier"], sealed[1]
    array = bundle.open_bundle(blob, macs["paillier"], key, "images")
    shifted = PaillierArray(array.values * encrypt_int(other_key.public, 37) % other_key.public.n_square,
                            other_key.public)
    assert decrypt_array(other_key, shifted, value_range=(0, 255)).tolist()[0] == [37, 38, 39]  # undetected
    frame_end = len(blob) - bundle.TAG_BYTES
    header, _ = serialization.unpack(blob[:frame_end], bundle.BUNDLE_MAGIC, "b")
    forged = serialization.pack(bundle.BUNDLE_MAGIC, header, shifted.to_bytes()) + blob[frame_end:]
    with pytest.raises(IntegrityError):
        bundle.open_bundle(forged, macs["paillier"], key, "images")


def test_bundle_files(tmp_path, sealed, other_key):
    macs = sealed[1]
    array = bundle.open_bundle(sealed[0]["paillier"][0], macs["paillier"], other_key, "images")
    path = bundle.save_bundle(tmp_path / "c.bundle", array, macs["paillier"])
    assert bundle.load_bundle(path, macs["paillier"], other_key).shape == (2, 3)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(IntegrityError, match="c.bundle"):
        bundle.load_bundle(path, macs["paillier"], other_key)


# --------------------------------------------------------------------------- encryptors
@given(bits=st.one_of(st.integers(-300, 1100), st.floats(), st.booleans(), st.text(max_size=3)))
def test_exponent_bits_are_checked_where_given(other_key, bits):
    minimum = min_short_exponent_bits(1024)
    valid = (isinstance(bits, int) and not isinstance(bits, bool)
             and (bits == -1 or (minimum <= bits <= 1024 and bits % 8 == 0)))
    if not valid:
        with pytest.raises(ParameterError, match="exponent_bits"):
            FastEncryptor(other_key, exponent_bits=bits)
        return
    fast = FastEncryptor(other_key, exponent_bits=bits)
    assert decrypt_int(other_key, int(fast.encrypt(42))) == 42


@pytest.mark.parametrize("bits", [0, 8, 152])
def test_short_exponents_of_the_issue_are_refused(other_key, key2048, bits):
    for key in (other_key, key2048):
        floor = min_short_exponent_bits(key.public.bits)
        with pytest.raises(ParameterError, match=f"exponent_bits = {bits} is below {floor}"):
            FastEncryptor(key, exponent_bits=bits)
    assert min_short_exponent_bits(2048) == 224 and min_short_exponent_bits(512) == 160


@given(base=st.one_of(st.integers(-2**70, 2**70), st.integers(2**1000, 2**2048), st.floats(), st.text(max_size=3)))
def test_a_base_that_is_not_an_nth_residue_is_refused(other_key, base):
    with pytest.raises(ParameterError, match="base"):
        FastEncryptor(other_key, base=base)


def test_valid_and_degenerate_bases(other_key):
    n, n2 = other_key.n, other_key.public.n_square
    good = int(gmpy2.powmod(123456789, n, n2))
    fast = FastEncryptor(other_key, base=good)
    assert decrypt_int(other_key, int(fast.encrypt(7))) == 7
    for bad in (2, 1, n2 - 1, good * n % n2):  # garbage, trivial, order 2, not invertible
        with pytest.raises(ParameterError, match="base"):
            FastEncryptor(other_key, base=bad)
    with pytest.raises(ParameterError, match="base is only used with short exponents"):
        FastEncryptor(other_key, exponent_bits=None, base=good)


@pytest.fixture(scope="module")
def fast(other_key):
    return FastEncryptor(other_key)


@given(value=st.one_of(anything, st.integers(0, 2**1100)))
def test_scalar_plaintexts_encrypt_exactly_or_are_refused(other_key, fast, value):
    valid = isinstance(value, int) and not isinstance(value, bool) and 0 <= value < other_key.n
    for encrypt in (fast.encrypt, lambda m: encrypt_int(other_key.public, m)):
        if valid:
            assert decrypt_int(other_key, int(encrypt(value))) == value
        else:
            with pytest.raises(PlaintextRangeError, match="plaintext"):
                encrypt(value)


@given(values=st.lists(st.one_of(st.integers(-5, 2**64), st.floats(-3, 3), st.booleans()), max_size=5))
def test_plaintext_lists_encrypt_exactly_or_are_refused(other_key, fast, values):
    valid = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)
    if valid:
        assert [decrypt_int(other_key, int(c)) for c in fast.encrypt_many(values)] == values
    else:
        with pytest.raises(PlaintextRangeError, match="plaintext"):
            fast.encrypt_many(values)


def test_the_issue_plaintexts(other_key, fast):
    for call in (lambda: fast.encrypt(-1), lambda: fast.encrypt_many([other_key.n + 5]),
                 lambda: fast.encrypt_many([2.9]), lambda: encrypt_int(other_key.public, 2.7),
                 lambda: fast.encrypt_many(np.array([1.0, 2.0]))):
        with pytest.raises(PlaintextRangeError):
            call()
    with pytest.raises(ParameterError, match="r must be an integer in Z\\*_n"):
        encrypt_int(other_key.public, 5, r=other_key.n)


@given(values=st.lists(st.one_of(st.integers(-2, 2**13), st.floats(0, 5), st.booleans()), min_size=1, max_size=4))
def test_lwe_and_rsa_plaintexts_encrypt_exactly_or_are_refused(lwe_key, rsa_key, values):
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    for encrypt, decrypt, upper in ((lambda m: lwe.encrypt(lwe_key, m), lambda c: lwe.decrypt(lwe_key, c),
                                     lwe_key.params.t),
                                    (lambda m: rsa_textbook.encrypt(rsa_key.public, m),
                                     lambda c: rsa_textbook.decrypt(rsa_key, c), rsa_key.n)):
        if ints and all(0 <= v < upper for v in values):
            assert decrypt(encrypt(values)).tolist() == values
        else:
            with pytest.raises(PlaintextRangeError):
                encrypt(values)


@given(name=st.text(max_size=10))
def test_unknown_regimes_are_parameter_errors(name):
    assume(name not in {r.value for r in Regime})
    with pytest.raises(ParameterError, match="unknown encryption regime"):
        Regime.parse(name)


def test_decryption_of_foreign_types_is_a_ciphertext_error(other_key, lwe_key):
    for call in (lambda: decrypt_int(other_key, 2.5), lambda: decrypt_array(other_key, [1, 2]),
                 lambda: lwe.decrypt(lwe_key, np.zeros(3))):
        with pytest.raises(CiphertextError):
            call()


def _key_in_child(keys_dir: str, start, out) -> None:
    """A separate process asking for the project key, as a notebook of `make -j2 all` does."""
    start.wait()
    try:
        key = keyfiles.load_or_create_private_key(keys_dir, 1024, allow_insecure=True)
        out.put(("ok", key.p, key.q))
    except Exception as exc:  # reported to the parent, which fails the test with it
        out.put(("error", repr(exc), None))


def test_concurrent_processes_end_with_one_identical_key(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # real processes, as separate notebook kernels are
    start, out = context.Event(), context.Queue()
    keys = tmp_path / "keys"  # does not exist yet: the first process creates it
    workers = [context.Process(target=_key_in_child, args=(str(keys), start, out)) for _ in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    answers = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [a[0] for a in answers] == ["ok"] * 4, answers
    assert len({(p, q) for _, p, q in answers}) == 1
    on_disk = keyfiles.load_private_key(keys / "paillier_1024.INSECURE.private.json", allow_insecure=True)
    assert (on_disk.p, on_disk.q) == answers[0][1:]
    assert keyfiles.load_public_key(keys / "paillier_1024.INSECURE.public.json", allow_insecure=True).n == on_disk.n
    assert not list(keys.glob(".*.tmp"))
