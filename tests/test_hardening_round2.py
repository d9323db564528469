"""Second round of hostile inputs: key sizes, the chunk store's MACs, cluster identity, CKKS parameters
and key fingerprints, notebook parameters, run records.  As in ``test_hardening``: every bad input ends
in a PPDLError subclass naming the culprit, never another exception type and never a wrong result."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
import tenseal as ts
from hypothesis import given
from hypothesis import strategies as st

from ppdl_utils import notebook_params as npm
from ppdl_utils import records, secret_scan
from ppdl_utils.crypto import ckks, keyfiles
from ppdl_utils.crypto.bundle import IntegrityError
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
from ppdl_utils.errors import CiphertextError, DataError, PPDLError, WrongKeyError
from ppdl_utils.images.encryption import ImageEncryptor
from ppdl_utils.learning import encrypted_cnn as ecnn
from ppdl_utils.learning import encrypted_mlp as emlp
from ppdl_utils.learning import encrypted_training as etrain
from ppdl_utils.learning.encrypted_common import InputShapeError
from ppdl_utils.learning.hyperparameters import TrainingParameterError
from ppdl_utils.scale import store
from ppdl_utils.scale.cluster import SchedulerParameterError, check_scheduler, dask_client, same_address
from ppdl_utils.scale.store import Manifest


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


# --------------------------------------------------------------------------- chunk store: MACs
def _store(folder, key, n=5, ciphertexts=False):
    images = np.random.default_rng(0).integers(0, 256, (n, 4, 4), dtype=np.uint8)
    wanted = Manifest(store.key_fingerprint(key.public), key.public.bits, "randomized", "mod256", images.shape, 2,
                      store.images_digest(images), ciphertexts)
    chunks = store.ChunkStore.open(folder, wanted, key)
    for index in range(chunks.manifest.n_chunks):
        lo, hi = chunks.manifest.bounds(index)
        chunks.write(index, images[lo:hi], b"\x01\x02" if ciphertexts else None)
    return chunks, wanted, images


@given(data=st.data())
def test_a_flipped_byte_in_any_chunk_file_is_refused_on_read_and_redone_on_resume(tmp_path_factory, other_key, data):
    folder = tmp_path_factory.mktemp("chunks")
    chunks, wanted, images = _store(folder, other_key, ciphertexts=True)
    assert np.array_equal(store.open_existing(folder, other_key).read_images(), images)
    files = sorted(p for p in folder.iterdir() if p.name.startswith("chunk_"))
    target = data.draw(st.sampled_from(files))
    raw = bytearray(target.read_bytes())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= data.draw(st.integers(1, 255))
    target.write_bytes(bytes(raw))
    index = int(target.name[6:12])
    reopened = store.ChunkStore.open(folder, wanted, other_key)
    assert reopened.missing() == [index]  # resume redoes it
    with pytest.raises(IntegrityError, match=f"chunk_{index:06d}"):
        reopened.read_images()


def test_a_chunk_moved_to_another_index_or_folder_is_refused(tmp_path, other_key):
    _store(tmp_path / "a", other_key)
    _store(tmp_path / "b", other_key)
    for name in ("chunk_000000.npy", "chunk_000000.mac"):  # same key, same images, another folder (salt)
        (tmp_path / "b" / name).write_bytes((tmp_path / "a" / name).read_bytes())
    with pytest.raises(IntegrityError, match="chunk_000000"):
        store.open_existing(tmp_path / "b", other_key).read_images()


@pytest.mark.parametrize("edit", ["fingerprint", "shape", "chunk_size", "mac", "salt"])
def test_an_edited_manifest_is_an_integrity_error(tmp_path, other_key, key2048, edit):
    chunks, wanted, _ = _store(tmp_path, other_key)
    body = json.loads((tmp_path / store.MANIFEST).read_text())
    body.update({"fingerprint": {"key_fingerprint": store.key_fingerprint(key2048.public)},
                 "shape": {"shape": [3, 4, 4]}, "chunk_size": {"chunk_size": 1}, "mac": {"mac": "00" * 32},
                 "salt": {"salt": "0" * 32}}[edit])
    (tmp_path / store.MANIFEST).write_text(json.dumps(body))
    with pytest.raises(IntegrityError, match="manifest"):
        store.open_existing(tmp_path, other_key if edit != "fingerprint" else key2048)
    if edit == "fingerprint":  # key B adopting key A's chunks: refused
        wanted_b = Manifest(**{**wanted.__dict__, "key_fingerprint": store.key_fingerprint(key2048.public),
                               "key_bits": 2048})
        with pytest.raises(IntegrityError, match="manifest"):
            store.ChunkStore.open(tmp_path, wanted_b, key2048)


@given(body=st.one_of(st.lists(st.integers(), max_size=3), st.none(), st.integers(),
                      st.fixed_dictionaries({"chunk_size": st.sampled_from([0, -1, "2", None, 2.5])}),
                      st.fixed_dictionaries({"shape": st.sampled_from([[], [0, 4, 4], [2, 4], "x", [1.5, 2, 2]])})))
def test_a_malformed_manifest_is_a_data_error_naming_it(tmp_path_factory, other_key, body):
    folder = tmp_path_factory.mktemp("manifest")
    _store(folder, other_key)
    if isinstance(body, dict):
        body = {**json.loads((folder / store.MANIFEST).read_text()), **body}
    (folder / store.MANIFEST).write_text(json.dumps(body))
    with pytest.raises(DataError, match="manifest.json"):
        store.open_existing(folder, other_key)


def test_a_full_disk_is_a_data_error_naming_the_file(tmp_path, other_key, monkeypatch):
    chunks, _, images = _store(tmp_path, other_key)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "replace", full)
    with pytest.raises(DataError, match="chunk_000001.npy.*No space left"):
        chunks.write(1, images[2:4])
    with pytest.raises(DataError, match="is authenticated with"):
        store.open_existing(tmp_path, other_key.public)


# --------------------------------------------------------------------------- cluster identity
@given(port=st.integers(1, 65535), host=st.sampled_from(["localhost", "127.0.0.1", "127.0.1.1"]))
def test_aliases_of_one_scheduler_compare_equal(port, host):
    assert same_address(f"tcp://{host}:{port}", f"tcp://127.0.0.1:{port}")
    assert not same_address(f"tcp://{host}:{port}", f"tcp://127.0.0.1:{port % 65535 + 1}")


@given(value=st.integers() | st.floats() | st.binary(max_size=4) | st.lists(st.integers(), max_size=2))
def test_a_scheduler_that_is_not_an_address_or_client_is_named(value):
    with pytest.raises(SchedulerParameterError, match="must be a Dask scheduler address"):
        check_scheduler(value)
    with pytest.raises(SchedulerParameterError, match="must be a Dask scheduler address"):
        with dask_client(value):
            pass


# --------------------------------------------------------------------------- CKKS parameters and key identity
@pytest.fixture(scope="module")
def two_contexts():
    params = ckks.insecure_test_params()
    return ckks.make_context(params, galois=False), ckks.make_context(params, galois=False)


@given(ring=st.sampled_from([1024, 2048, 4096, 1000, 0, -4096]),
       chain=st.lists(st.integers(-5, 70), min_size=0, max_size=4), scale=st.integers(-5, 70))
def test_every_parameter_set_is_validated_or_refused_by_name(ring, chain, scale):
    params = ckks.CKKSParams(ring, tuple(chain), scale)
    try:
        ctx = ckks.make_context(params, galois=False)
    except ckks.CKKSParameterError as exc:
        assert any(name in str(exc) for name in ("poly_modulus_degree", "coeff_mod_bit_sizes", "global_scale_bits"))
        assert "INVALID" in ckks.describe(params) or isinstance(exc, ckks.InsecureParametersError)
        return
    except ckks.InsecureParametersError as exc:
        assert "coeff_mod_bit_sizes" in str(exc)
        return
    assert scale >= ckks.MIN_SCALE_BITS and ckks.security_of_context(ctx) == 128
    assert ckks.context_chain(ctx) == (ring, tuple(chain))
    values = [0.25, -0.5]
    assert np.allclose(ckks.decrypt(ts.ckks_vector(ctx, values))[:2], values, atol=1e-2)


@pytest.mark.parametrize("scale", [0, -3, 3, 19])
def test_a_tiny_scale_is_refused_and_never_described_as_secure(scale):
    params = ckks.CKKSParams(4096, (40, 40), scale)
    assert "INVALID" in ckks.describe(params) and "128-bit" not in ckks.describe(params)
    with pytest.raises(ckks.ScaleMismatchError, match="global_scale_bits"):
        ckks.make_context(params)


def test_the_security_label_comes_from_the_context(two_contexts):
    ctx, _ = two_contexts
    with pytest.raises(ckks.CKKSParameterError, match="N=4096.*MLP_8192 says N=8192"):
        ckks.check_context(ctx, ckks.MLP_8192)
    assert "N=4096" in ckks.describe_context(ctx, ckks.insecure_test_params())
    assert "N=4096" in ckks.describe_context(ctx) and "128-bit" in ckks.describe_context(ctx)


@given(values=st.lists(st.floats(-1, 1), min_size=1, max_size=4))
def test_a_ciphertext_of_another_key_is_refused_not_decrypted(two_contexts, values):
    a, b = two_contexts
    blob = ckks.serialize_vector(ts.ckks_vector(a, values), a)
    assert np.allclose(emlp.client_decrypt_scores(a, blob)[:len(values)], values, atol=1e-3)
    for decrypt in (emlp.client_decrypt_scores, ecnn.client_decrypt_scores):
        with pytest.raises(WrongKeyError, match="another context"):
            decrypt(b, blob)
    public_b = ckks.load_context(ckks.public_context(b))
    with pytest.raises(WrongKeyError):
        ckks.vector_from(public_b, blob)


@given(data=st.binary(max_size=200))
def test_hostile_bytes_are_ciphertext_errors(two_contexts, data):
    ctx, _ = two_contexts
    with pytest.raises(CiphertextError, match="context"):
        ckks.load_context(data)
    for blob in (data, ckks.seal_ciphertext(data + b"x", ckks.context_fingerprint(ctx))):
        with pytest.raises(CiphertextError, match="ciphertext"):
            ckks.vector_from(ctx, blob)


@given(cut=st.integers(0, 2000))
def test_a_truncated_upload_is_a_ciphertext_error(two_contexts, cut):
    ctx, _ = two_contexts
    blob = ckks.serialize_vector(ts.ckks_vector(ctx, [0.5] * 8), ctx)
    with pytest.raises(CiphertextError):
        ckks.vector_from(ctx, blob[:cut])


def test_server_functions_name_bad_inputs(two_contexts):
    ctx, _ = two_contexts
    public = ckks.load_context(ckks.public_context(ctx))
    with pytest.raises(InputShapeError, match="non-empty"):
        etrain.server_epoch(public, [], b"", b"", lr=1.0)
    with pytest.raises(ckks.CKKSParameterError, match="public_ctx must be a TenSEAL context"):
        etrain.server_epoch(b"ctx", [(1, 2)], b"", b"", lr=1.0)
    for spec in ({"image_size": 4, "kernel": 8}, {"stride": 0}, {"n_classes": 1}, {"kernel": True}):
        with pytest.raises(InputShapeError, match="CNNSpec"):
            ecnn.CNNSpec(**spec)


@given(lr=st.sampled_from([float("nan"), float("inf"), -1.0, 0.0, "0.1", None]),
       epochs=st.sampled_from([1, 0, -1, 2.0, True]))
def test_training_settings_are_checked_before_any_work(lr, epochs):
    x, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    with pytest.raises(TrainingParameterError, match="lr=|epochs="):
        etrain.encrypted_train(None, x, y, epochs, lr)
    with pytest.raises(TrainingParameterError, match="lr=|epochs="):
        etrain.plain_train(x, y, epochs, lr)


@pytest.mark.parametrize("labels", [[-1, -1, -1, -1], [0, 0, 0, 0], [0, 1, 2.5, 1], [0, 7_000_000, 1, 0]])
def test_one_vs_rest_labels_must_be_classes(labels):
    with pytest.raises(TrainingParameterError, match="labels"):
        etrain.encrypted_train_ovr(None, np.zeros((4, 3)), np.array(labels), 1, 0.1)


# --------------------------------------------------------------------------- notebook parameters
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))
TRAINING = NOTEBOOKS[0].with_name("03_training.ipynb")


@given(name=st.sampled_from(["epoch", "epochs", "image_size", "lerning_rate"]), value=st.integers(-5, 20000))
def test_every_papermill_spelling_is_parsed_alike(name, value):
    spellings = [["-p", name, str(value)], [f"-p{name}", str(value)], [f"--parameters={name}", str(value)],
                 ["--parameters", name, str(value)], ["-y", f"{name}: {value}"]]
    parsed = [npm.given_values(args)[name][0] for args in spellings]
    assert parsed == [value] * len(spellings)
    declared = npm.declared_parameters(TRAINING)
    for args in spellings:
        if name in declared and npm.value_problem(declared[name], value) is None:
            npm.check(TRAINING, args)
        else:
            with pytest.raises(npm.ParameterError, match=f"'{name}'"):
                npm.check(TRAINING, args)


@pytest.mark.parametrize("args, message", [
    (["-p", "image_size", "0"], "outside the declared range 16..1024"),
    (["-p", "image_size", "10000"], "outside the declared range"),
    (["-p", "epochs", "-1"], "outside the declared range 1..10000"),
    (["-p", "epochs", "2.5"], "not an integer"),
    (["-p", "learning_rate", "nan"], "not a finite number"),
    (["-p", "lr_schedule", "cosin"], "not one of constant, cosine"),
    (["-r", "epochs", "3"], "not an integer"),
    (["-pepoch", "5"], "'epoch' .*no such parameter"),
    (["-p", "epochs"], "requires 2 arguments"),
    (["-b", "!!"], "not base64"),
])
def test_values_are_typed_and_ranged_from_the_parameters_cell(args, message):
    with pytest.raises(npm.ParameterError, match=message):
        npm.check(TRAINING, args)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_default_fits_its_declaration(path):
    declared = npm.declared_parameters(path)
    assert {n: npm.value_problem(d, d.default) for n, d in declared.items()} == dict.fromkeys(declared)
    assert "quick" in declared and declared["quick"].high == 1


def test_a_missing_notebook_is_exit_status_2(tmp_path, capsys):
    assert npm.main([str(tmp_path / "missing.ipynb"), "-p", "epochs", "3"]) == 2
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- run records
def _record_body() -> dict:
    return {"run": "x", "label": "table", "class_names": ["a", "b"], "schema": records.SCHEMA_VERSION,
            "summary": {"test_accuracy": 0.9, "test_accuracy_ci95": [0.8, 0.95], "macro_f1": 0.9,
                        "weighted_f1": 0.9, "n_test": 200, "classes": 2, "f1": {"a": 0.9, "b": 0.9}},
            "train": {"best_epoch": 3, "best_val_accuracy": 0.9, "n_train": 1600, "n_val": 200}}


BAD_FIELDS = st.sampled_from([
    ("summary", "test_accuracy", float("nan")), ("summary", "test_accuracy", "0.9"), ("summary", "test_accuracy", 85.0),
    ("summary", "test_accuracy", True), ("summary", "test_accuracy_ci95", None), ("summary", "test_accuracy_ci95", [1]),
    ("summary", "test_accuracy_ci95", [0.9, 0.1]), ("summary", "n_test", -5), ("summary", "n_test", 0),
    ("summary", "classes", 3), ("summary", "macro_f1", -0.1), ("summary", "f1", {"a": 2}),
    ("train", "best_val_accuracy", float("inf")), ("train", "n_train", -1), ("train", "best_epoch", 1.5),
    ("", "schema", records.SCHEMA_VERSION + 1), ("", "schema", "2"), ("", "class_names", "ab"), ("", "run", ""),
])


@given(bad=BAD_FIELDS)
def test_a_record_with_an_impossible_value_is_refused_and_retrained(tmp_path_factory, bad):
    part, name, value = bad
    body = _record_body()
    (body[part] if part else body)[name] = value
    folder = tmp_path_factory.mktemp("records")
    (folder / "x").mkdir()  # the run folder of run "x"
    path = folder / "x" / "03_table.json"
    path.write_text(json.dumps(body))
    with pytest.raises(records.RecordError, match=f"03_table.json.*{name}|03_table.json.*schema"):
        records.RunRecord.load(path, with_tables=False)
    for table in ("history", "predictions"):
        (folder / "x" / f"03_table_{table}.csv").write_text("a\n1\n")
    assert records.finished_record(folder, "x", "table", {"run": "x"}) is None  # a resumed run retrains it


def test_records_carry_their_schema_and_old_ones_load_as_schema_1(tmp_path):
    body = _record_body()
    del body["schema"]
    (tmp_path / "03_x_table.json").write_text(json.dumps(body))
    assert records.RunRecord.load(tmp_path / "03_x_table.json", with_tables=False).schema == 1
    body["schema"] = records.SCHEMA_VERSION
    (tmp_path / "03_x_table.json").write_text(json.dumps(body))
    record = records.RunRecord.load(tmp_path / "03_x_table.json", with_tables=False)
    assert record.to_json()["schema"] == records.SCHEMA_VERSION


# --------------------------------------------------------------------------- public entry points name bad inputs
@given(value=st.none() | st.integers() | st.floats() | st.binary(max_size=4) | st.just(""))
def test_a_path_that_is_not_a_path_is_named(other_key, value):
    calls = {"private key path": lambda: keyfiles.load_private_key(value),
             "keys_dir": lambda: keyfiles.load_or_create_private_key(value, 2048),
             "dataset folder": lambda: store.open_existing(value, other_key),
             "results_dir": lambda: records.load_records(value, "x"),
             "run record path": lambda: records.RunRecord.load(value)}
    for parameter, call in calls.items():
        with pytest.raises(PPDLError, match=parameter):
            call()


@given(value=st.none() | st.integers() | st.text(max_size=3) | st.binary(max_size=3))
def test_contexts_vectors_and_models_of_the_wrong_type_are_named(two_contexts, value):
    ctx, _ = two_contexts
    public = ckks.load_context(ckks.public_context(ctx))
    for call in (lambda: ckks.decrypt(value), lambda: ckks.public_context(value), lambda: ckks.security_bits(value),
                 lambda: ckks.check_context(value, ckks.MLP_8192),
                 lambda: emlp.client_encrypt_features(ctx, value, [0.0]),
                 lambda: etrain.server_load_dataset(public, [value])):
        with pytest.raises(PPDLError):
            call()
