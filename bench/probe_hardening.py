"""Hostile inputs against the public API, each classified as a clear error, a raw traceback or a
silent (or insecure) result.

    venv/bin/python bench/probe_hardening.py [--json results/bench/probe_hardening.json] [-v]

Every probe is one bad or hostile input (1024-bit quick keys, small CKKS contexts, one Dask
LocalCluster).  Outcomes:

* ``clear``: a PPDLError subclass was raised (or the probe verified that the bad input was
  neutralised, e.g. an altered chunk is redone on resume);
* ``raw``: any other exception escaped (a traceback the user must decode);
* ``silent`` / ``security``: the call returned as if the input were fine.

The probe set covers the classes of the hardening issue (cluster identity, key sizes, CKKS key
identity and parameters, the chunk store, notebook parameters, run records, training settings,
hostile bytes).  Exit status 1 when any probe is security or silent, or more than 5 are raw.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ppdl_utils import notebook_params as npm  # noqa: E402
from ppdl_utils import records, secret_scan  # noqa: E402
from ppdl_utils.crypto import bundle, ckks, keyfiles  # noqa: E402
from ppdl_utils.crypto.fast_encrypt import FastEncryptor  # noqa: E402
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, generate_keypair  # noqa: E402
from ppdl_utils.errors import PPDLError  # noqa: E402
from ppdl_utils.images.encryption import ImageEncryptor  # noqa: E402

PROBES: list[tuple[str, str, object]] = []  # (category, description, function)
TRAINING = ROOT / "notebooks" / "03_training.ipynb"


def probe(category: str, description: str):
    """Register a probe.  It raises (classified by type) or returns whether the input was neutralised."""
    def register(function):
        PROBES.append((category, description, function))
        return function
    return register


class World:
    """Keys, contexts, folders and a cluster, made once and shared by the probes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.key = generate_keypair(1024, allow_insecure=True)
        self.other = generate_keypair(1024, allow_insecure=True)
        self.images = np.random.default_rng(0).integers(0, 256, (6, 4, 4), dtype=np.uint8)
        params = ckks.insecure_test_params()
        self.ctx = ckks.make_context(params)
        self.ctx_other = ckks.make_context(params, galois=False)
        self.public = ckks.load_context(ckks.public_context(self.ctx))
        self._client = None
        self._count = 0

    def path(self, name: str) -> Path:
        self._count += 1
        return self.folder / f"{self._count:03d}_{name}"

    def store(self, ciphertexts: bool = False):
        from ppdl_utils.scale import store

        wanted = store.Manifest(store.key_fingerprint(self.key.public), 1024, "randomized", "mod256",
                                self.images.shape, 2, store.images_digest(self.images), ciphertexts)
        chunks = store.ChunkStore.open(self.path("chunks"), wanted, self.key)
        for index in range(chunks.manifest.n_chunks):
            lo, hi = chunks.manifest.bounds(index)
            chunks.write(index, self.images[lo:hi], b"\x01\x02" if ciphertexts else None)
        return chunks, wanted

    def client(self):
        if self._client is None:
            from ppdl_utils.scale.cluster import dask_client

            self._cluster_cm = dask_client(n_workers=1)
            self._client = self._cluster_cm.__enter__()
        return self._client

    def head(self):
        from ppdl_utils.learning.private_inference import fit_quantized_head

        rng = np.random.default_rng(2)
        head = fit_quantized_head(rng.normal(size=(60, 6)), rng.integers(0, 2, 60))
        return head, head.quantize_features(rng.normal(size=(3, 6)))

    def close(self) -> None:
        if self._client is not None:
            self._cluster_cm.__exit__(None, None, None)


W: World


# ------------------------------------------------------------------------------------------ security
@probe("security", "batch_private_inference on 'tcp://127.0.0.1:P' and 'tcp://localhost:P' (one cluster)")
def _():
    from ppdl_utils.scale.private_inference import batch_private_inference

    port = W.client().scheduler.address.rsplit(":", 1)[1]
    head, q = W.head()
    batch_private_inference(head, W.key, q, f"tcp://127.0.0.1:{port}", f"tcp://localhost:{port}", progress=False)


@probe("security", "batch_private_inference with a Client and an alias of its scheduler")
def _():
    from ppdl_utils.scale.private_inference import batch_private_inference

    port = W.client().scheduler.address.rsplit(":", 1)[1]
    head, q = W.head()
    batch_private_inference(head, W.key, q, W.client(), f"tcp://localhost:{port}", progress=False)


@probe("security", "two Client objects of one scheduler (scheduler-id check)")
def _():
    from distributed import Client

    from ppdl_utils.scale.private_inference import check_distinct_clusters

    with Client(W.client().scheduler.address, set_as_default=False) as alias:
        check_distinct_clusters(W.client(), alias)


@probe("security", "load_or_create_private_key(folder, 256) writes a 256-bit key")
def _():
    keyfiles.load_or_create_private_key(W.path("keys"), 256)


@probe("security", "load_or_create_private_key(folder, 256, allow_insecure=True): a toy key saved")
def _():
    keyfiles.load_or_create_private_key(W.path("keys"), 256, allow_insecure=True)


@probe("security", "load_or_create_private_key(folder, 1024) without the quick/teaching mode")
def _():
    keyfiles.load_or_create_private_key(W.path("keys"), 1024)


@probe("security", "a 512-bit public key file loads")
def _():
    small = generate_keypair(512, allow_insecure=True)
    path = W.path("small.INSECURE.public.json")
    path.write_text(json.dumps({"format": keyfiles.FORMAT, "kind": "public", "n": str(small.n)}))
    keyfiles.load_public_key(path, allow_insecure=True)


@probe("security", "a 1024-bit private key file under the normal name loads")
def _():
    path = W.path("paillier_1024.private.json")
    body = {"format": keyfiles.FORMAT, "kind": "private", "n": str(W.key.n), "p": str(W.key.p), "q": str(W.key.q)}
    path.write_text(json.dumps(body))
    path.chmod(0o600)
    keyfiles.load_private_key(path, allow_insecure=True)


@probe("security", "a 1024-bit key saved under the normal name")
def _():
    keyfiles.save_private_key(W.key, W.path("paillier_1024.private.json"))


@probe("security", "generate_keypair(512) without the teaching mode")
def _():
    generate_keypair(512)


@probe("security", "ImageEncryptor on an unlabelled 512-bit key encrypts")
def _():
    small = generate_keypair(512, allow_insecure=True)
    ImageEncryptor(PaillierPrivateKey(PaillierPublicKey(small.n), small.p, small.q), "randomized")


@probe("security", "FastEncryptor on an unlabelled 1024-bit key")
def _():
    FastEncryptor(PaillierPrivateKey(PaillierPublicKey(W.key.n), W.key.p, W.key.q))


@probe("security", "CKKS scores of another context decrypt to garbage")
def _():
    import tenseal as ts

    from ppdl_utils.learning import encrypted_mlp

    blob = ckks.serialize_vector(ts.ckks_vector(W.ctx, [-0.006, -0.023]), W.ctx)
    encrypted_mlp.client_decrypt_scores(W.ctx_other, blob)


@probe("security", "a server gets ciphertexts of another context")
def _():
    import tenseal as ts

    from ppdl_utils.learning import encrypted_mlp

    blob = ckks.serialize_vector(ts.ckks_vector(W.ctx_other, [0.1] * 4), W.ctx_other)
    encrypted_mlp.server_mlp(W.public, blob, None)


def _flip_last_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


@probe("security", "one flipped byte in a chunk is returned on read")
def _():
    from ppdl_utils.scale import store

    chunks, _ = W.store()
    _flip_last_byte(chunks.chunk_path(1))
    store.open_existing(chunks.folder, W.key).read_images()


@probe("security", "one flipped byte in a chunk is kept on resume")
def _():
    from ppdl_utils.scale import store

    chunks, wanted = W.store()
    _flip_last_byte(chunks.chunk_path(0))
    return 0 in store.ChunkStore.open(chunks.folder, wanted, W.key).missing()  # True: it is redone


@probe("security", "a manifest edited to another key's fingerprint is adopted by that key")
def _():
    from ppdl_utils.scale import store

    chunks, wanted = W.store()
    body = json.loads((chunks.folder / store.MANIFEST).read_text())
    body["key_fingerprint"] = store.key_fingerprint(W.other.public)
    (chunks.folder / store.MANIFEST).write_text(json.dumps(body))
    wanted_b = store.Manifest(**{**wanted.__dict__, "key_fingerprint": store.key_fingerprint(W.other.public)})
    store.ChunkStore.open(chunks.folder, wanted_b, W.other)


@probe("security", "a manifest with a shrunk shape drops images silently")
def _():
    from ppdl_utils.scale import store

    chunks, _ = W.store()
    body = json.loads((chunks.folder / store.MANIFEST).read_text())
    body["shape"] = [2, 4, 4]
    (chunks.folder / store.MANIFEST).write_text(json.dumps(body))
    store.open_existing(chunks.folder, W.key).read_images()


@probe("security", "a chunk copied from another folder of the same key")
def _():
    from ppdl_utils.scale import store

    a, _ = W.store()
    b, _ = W.store()
    for name in ("chunk_000000.npy", "chunk_000000.mac"):
        (b.folder / name).write_bytes((a.folder / name).read_bytes())
    store.open_existing(b.folder, W.key).read_images()


# ------------------------------------------------------------------------------------------ silent
for _scale in (0, -3, 3):
    @probe("silent", f"a CKKS context with scale 2^{_scale} builds")
    def _(scale=_scale):
        ckks.make_context(ckks.CKKSParams(4096, (40, 40), scale), galois=False)


@probe("silent", "describe() calls a scale-0 parameter set 128-bit secure")
def _():
    return "128-bit" not in ckks.describe(ckks.CKKSParams(4096, (40, 40), 0))


@probe("silent", "encrypted_mlp_cost(ctx N=4096, ..., MLP_8192) reports N = 8192")
def _():
    from ppdl_utils.learning import encrypted_mlp

    encrypted_mlp.encrypted_mlp_cost(W.ctx, None, None, None, ckks.MLP_8192)


@probe("silent", "encrypted_cnn_cost with another parameter set than its context")
def _():
    from ppdl_utils.learning import encrypted_cnn

    encrypted_cnn.encrypted_cnn_cost(W.ctx, None, None, None, ckks.CNN_8192)


for _args in (["-pepoch", "5"], ["--parameters=epoch", "5"], ["-p", "image_size", "0"], ["-p", "image_size", "10000"],
              ["-p", "epochs", "-1"], ["-p", "epochs", "2.5"], ["-p", "learning_rate", "nan"],
              ["-p", "lr_schedule", "cosin"], ["-r", "epochs", "3"], ["-y", "batch_size: 0"]):
    @probe("silent", f"notebook 03 run with {' '.join(_args)}")
    def _(args=_args):
        npm.check(TRAINING, args)


def _record(**summary) -> Path:
    body = {"run": "x", "label": "table", "class_names": ["a", "b"],
            "summary": {"test_accuracy": 0.9, "test_accuracy_ci95": [0.8, 0.95], "macro_f1": 0.9,
                        "weighted_f1": 0.9, "n_test": 200, "classes": 2, "f1": {"a": 0.9, "b": 0.9}, **summary},
            "train": {"best_epoch": 3, "best_val_accuracy": 0.9, "n_train": 1600, "n_val": 200}}
    folder = W.path("records")
    (folder / "x").mkdir(parents=True)  # the run folder of run "x"
    (folder / "x" / "03_table.json").write_text(json.dumps(body))
    for table in ("history", "predictions"):
        (folder / "x" / f"03_table_{table}.csv").write_text("a\n1\n")
    return folder


for _field, _value in (("test_accuracy", float("nan")), ("test_accuracy", "0.9"), ("test_accuracy", 85.0),
                       ("n_test", -5), ("macro_f1", 2.0)):
    @probe("silent", f"a run record with {_field} = {_value!r} loads")
    def _(field=_field, value=_value):
        records.RunRecord.load(_record(**{field: value}) / "x" / "03_table.json")


@probe("silent", "a resumed notebook 03 crashes on test_accuracy_ci95: null instead of retraining")
def _():
    return records.finished_record(_record(test_accuracy_ci95=None), "x", "table", {"run": "x"}) is None


@probe("silent", "run records carry no schema version")
def _():
    summary = records.EvaluationSummary.from_predictions([0, 1], [0, 1], ["a", "b"])
    record = records.RunRecord("x", "plain", "plain", "plain", ["a", "b"], summary, records.TrainSummary(1, 1.0, 2, 2))
    return record.to_json().get("schema") == records.SCHEMA_VERSION


@probe("silent", "a run record of a newer schema loads")
def _():
    folder = _record()
    body = json.loads((folder / "x" / "03_table.json").read_text())
    (folder / "x" / "03_table.json").write_text(json.dumps({**body, "schema": records.SCHEMA_VERSION + 1}))
    records.RunRecord.load(folder / "x" / "03_table.json")


@probe("silent", "an npz label of 7,000,000 makes 7,000,001 classes")
def _():
    from ppdl_utils.data.loaders import load_medmnist_npz

    path = W.path("big.npz")
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    small = np.array([0, 1, 0, 1])
    np.savez(path, train_images=images, train_labels=np.array([0, 1, 7_000_000, 1]),
             val_images=images, val_labels=small, test_images=images, test_labels=small)
    load_medmnist_npz(path)


@probe("silent", "rung-5 labels of all -1 train")
def _():
    from ppdl_utils.learning import encrypted_training

    encrypted_training.encrypted_train_ovr(W.ctx, np.zeros((4, 3)), np.full(4, -1), 1, 0.1)


@probe("silent", "negative epochs train nothing (encrypted training)")
def _():
    from ppdl_utils.learning import encrypted_training

    encrypted_training.encrypted_train(W.ctx, np.zeros((4, 3)), np.array([0, 1, 0, 1]), -1, 0.1)


@probe("silent", "lr = nan 'trains' (plaintext twin)")
def _():
    from ppdl_utils.learning import encrypted_training

    encrypted_training.plain_train(np.zeros((4, 3)), np.array([0, 1, 0, 1]), 2, float("nan"))


@probe("silent", "Keras fit_arrays with epochs = -1")
def _():
    from ppdl_utils.learning.training import fit_arrays

    fit_arrays(None, np.zeros((4, 3)), np.zeros(4), {"train": [0], "val": [1], "test": [2]}, -1)


@probe("silent", "a CNNSpec smaller than its kernel gives 0 windows")
def _():
    from ppdl_utils.learning.encrypted_cnn import CNNSpec

    CNNSpec(image_size=4, kernel=8)


# ------------------------------------------------------------------------------------------ raw tracebacks
@probe("raw", "load_context(b'garbage')")
def _():
    ckks.load_context(b"garbage")


@probe("raw", "load_context(None)")
def _():
    ckks.load_context(None)


@probe("raw", "a truncated upload to server_mlp")
def _():
    import tenseal as ts

    from ppdl_utils.learning import encrypted_mlp

    blob = ckks.serialize_vector(ts.ckks_vector(W.ctx, [0.1] * 4), W.ctx)
    encrypted_mlp.server_mlp(W.public, blob[:120], None)


@probe("raw", "raw TenSEAL bytes (no key header) to server_mlp")
def _():
    import tenseal as ts

    from ppdl_utils.learning import encrypted_mlp

    encrypted_mlp.server_mlp(W.public, ts.ckks_vector(W.ctx, [0.1] * 4).serialize(), None)


@probe("raw", "server_cnn given a ciphertext of the wrong size")
def _():
    import tenseal as ts

    from ppdl_utils.learning import encrypted_cnn

    spec = encrypted_cnn.CNNSpec(image_size=12, kernel=4, stride=2, n_filters=1, hidden=2)
    zeros = np.zeros
    cnn = encrypted_cnn.SquareCNN(spec, zeros((1, 4, 4)), zeros(1), zeros((spec.windows, 2)), zeros(2), zeros((2, 2)),
                                  zeros(2))
    blob = ckks.serialize_vector(ts.ckks_vector(W.ctx, [0.1] * 10), W.ctx)
    encrypted_cnn.server_cnn(W.public, blob, spec.windows, cnn)


@probe("raw", "server_epoch(pub, [], ...)")
def _():
    from ppdl_utils.learning import encrypted_training

    encrypted_training.server_epoch(W.public, [], b"", b"", 1.0)


@probe("raw", "server_mlp with bytes for the public context")
def _():
    from ppdl_utils.learning import encrypted_mlp

    encrypted_mlp.server_mlp(b"context", b"", None)


@probe("raw", "client_decrypt_scores(ctx, b'')")
def _():
    from ppdl_utils.learning import encrypted_cnn

    encrypted_cnn.client_decrypt_scores(W.ctx, b"")


for _what, _owner, _name, _error in (("a full disk", "os", "replace", OSError(errno.ENOSPC, "No space left")),
                                     ("a read-only folder", "tempfile", "mkstemp",
                                      PermissionError(errno.EROFS, "Read-only file system"))):
    @probe("raw", f"the chunk store on {_what}")
    def _(owner=_owner, name=_name, error=_error):
        from ppdl_utils.scale import store

        chunks, _ = W.store()

        def fail(*args, **kwargs):
            raise error

        with _patched(getattr(store, owner), name, fail):
            chunks.write(0, W.images[:2])


for _body in ([1, 2], {"chunk_size": 0}, {"shape": "x"}, "not json"):
    @probe("raw", f"a manifest that is {_body!r}")
    def _(body=_body):
        from ppdl_utils.scale import store

        chunks, _ = W.store()
        path = chunks.folder / store.MANIFEST
        if isinstance(body, dict):
            body = {**json.loads(path.read_text()), **body}
        path.write_text(body if isinstance(body, str) else json.dumps(body))
        store.open_existing(chunks.folder, W.key)


@probe("raw", "encrypt_dataset(..., chunk_size=0)")
def _():
    from ppdl_utils.scale.encrypt_dataset import encrypt_dataset

    encrypt_dataset(W.images, W.key, W.path("out"), chunk_size=0, progress=False)


@probe("raw", "encrypt_dataset(..., scheduler=8786)")
def _():
    from ppdl_utils.scale.encrypt_dataset import encrypt_dataset

    encrypt_dataset(W.images, W.key, W.path("out"), scheduler=8786, progress=False)


@probe("raw", "encrypt_dataset(private=key.public)")
def _():
    from ppdl_utils.scale.encrypt_dataset import encrypt_dataset

    encrypt_dataset(W.images, W.key.public, W.path("out"), progress=False)


@probe("raw", "batch_private_inference(private=key.public)")
def _():
    from ppdl_utils.scale.private_inference import batch_private_inference

    head, q = W.head()
    batch_private_inference(head, W.key.public, q, progress=False)


@probe("raw", "batch_private_inference(client_scheduler=3.5)")
def _():
    from ppdl_utils.scale.private_inference import batch_private_inference

    head, q = W.head()
    batch_private_inference(head, W.key, q, client_scheduler=3.5, progress=False)


@probe("raw", "ImageEncryptor(key.public)")
def _():
    ImageEncryptor(W.key.public, "randomized")


@probe("raw", "open_bundle(mac_key=None)")
def _():
    blob = bundle.seal(ImageEncryptor(W.key, "randomized").encrypt(W.images[0]), bundle.MacKey.derive(W.key))
    bundle.open_bundle(blob, None, W.key)


@probe("raw", "PaillierPrivateKey(pub, p, p)")
def _():
    PaillierPrivateKey(W.key.public, W.key.p, W.key.p)


@probe("raw", "PaillierPrivateKey(pub, p, q of another key)")
def _():
    PaillierPrivateKey(W.key.public, W.key.p, W.other.q)


@probe("raw", "CKKSParams(1024, (13, 14), 12)")
def _():
    ckks.make_context(ckks.CKKSParams(1024, (13, 14), 12))


@probe("raw", "CKKSParams with a string ring")
def _():
    ckks.make_context(ckks.CKKSParams("4096", (40, 20, 40), 20))


@probe("raw", "make_context(params, n_threads=0)")
def _():
    ckks.make_context(ckks.insecure_test_params(), n_threads=0)


@probe("raw", "a keys_dir that is a file")
def _():
    path = W.path("keys_file")
    path.write_text("x")
    keyfiles.load_or_create_private_key(path, 2048)


@probe("raw", "a keys_dir below a file")
def _():
    path = W.path("keys_file")
    path.write_text("x")
    keyfiles.load_or_create_private_key(path / "keys", 1024, allow_insecure=True)


@probe("raw", "notebook_params on a missing notebook (exit status 2, no traceback)")
def _():
    with contextlib.redirect_stderr(open(os.devnull, "w")):
        return npm.main([str(W.path("missing.ipynb")), "-p", "epochs", "1"]) == 2


@probe("raw", "notebook_params with '-p epochs' (one argument)")
def _():
    npm.check(TRAINING, ["-p", "epochs"])


@probe("raw", "a run record that is a JSON list")
def _():
    path = W.path("03_list.json")
    path.write_text("[1, 2]")
    records.RunRecord.load(path)


@probe("raw", "a run record whose history CSV is binary garbage")
def _():
    folder = _record()
    (folder / "x" / "03_table_history.csv").write_bytes(b"\x00\xff\xfe" * 10)
    return records.finished_record(folder, "x", "table", {"run": "x"}) is None


@probe("raw", "seal_ciphertext with a malformed fingerprint")
def _():
    ckks.seal_ciphertext(b"abc", "xyz")


@probe("raw", "open_existing(folder, key.public)")
def _():
    from ppdl_utils.scale import store

    chunks, _ = W.store()
    store.open_existing(chunks.folder, W.key.public)


for _name, _call in (
        ("ckks.decrypt(None)", lambda: ckks.decrypt(None)),
        ("ckks.public_context(None)", lambda: ckks.public_context(None)),
        ("ckks.check_context(None, MLP_8192)", lambda: ckks.check_context(None, ckks.MLP_8192)),
        ("ckks.security_bits(None)", lambda: ckks.security_bits(None)),
        ("insecure_test_params(depth=-1)", lambda: ckks.insecure_test_params(depth=-1)),
        ("load_private_key(123)", lambda: keyfiles.load_private_key(123)),
        ("load_or_create_private_key(None, 2048)", lambda: keyfiles.load_or_create_private_key(None, 2048)),
        ("records.load_records(None, 'x')", lambda: records.load_records(None, "x")),
        ("records.finished_record(None, ...)", lambda: records.finished_record(None, "x", "y", {}))):
    @probe("raw", _name)
    def _(call=_call):
        call()


@probe("raw", "open_existing(123, key)")
def _():
    from ppdl_utils.scale import store

    store.open_existing(123, W.key)


@probe("raw", "encrypt_dataset(output=None)")
def _():
    from ppdl_utils.scale.encrypt_dataset import encrypt_dataset

    encrypt_dataset(W.images, W.key, None, progress=False)


@probe("silent", "dask_client(n_workers=-1) starts a cluster")
def _():
    from ppdl_utils.scale.cluster import dask_client

    with dask_client(n_workers=-1):
        pass


@probe("raw", "dask_client(address, timeout='x')")
def _():
    from ppdl_utils.scale.cluster import dask_client

    with dask_client("tcp://127.0.0.1:1", timeout="x"):
        pass


@probe("raw", "batch_private_inference(head=None)")
def _():
    from ppdl_utils.scale.private_inference import batch_private_inference

    batch_private_inference(None, W.key, np.zeros((2, 6), dtype=int), progress=False)


@probe("raw", "server_load_dataset with a list of ints")
def _():
    from ppdl_utils.learning import encrypted_training

    encrypted_training.server_load_dataset(W.public, [1, 2])


@probe("raw", "client_encrypt_features(ctx, None, features)")
def _():
    from ppdl_utils.learning import encrypted_mlp

    encrypted_mlp.client_encrypt_features(W.ctx, None, np.zeros(3))


# ------------------------------------------------------------------------------------------ running
@contextlib.contextmanager
def _patched(owner, name, value):
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def run(verbose: bool) -> dict:
    results = []
    for category, description, function in PROBES:
        try:
            outcome = "clear" if function() is True else category
            detail = "returned normally" if outcome != "clear" else "neutralised"
        except PPDLError as exc:
            outcome, detail = "clear", f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"
        except Exception as exc:  # noqa: BLE001 - the point is to see what escapes
            outcome, detail = "raw", f"{type(exc).__name__}: {str(exc)[:150]}"
            if verbose:
                traceback.print_exc()
        results.append({"category": category, "probe": description, "outcome": outcome, "detail": detail})
        if verbose or outcome != "clear":
            print(f"[{outcome:8}] {description}\n           {detail}")
    counts = {k: sum(r["outcome"] == k for r in results) for k in ("clear", "raw", "silent", "security")}
    return {"probes": len(results), "counts": counts, "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write every probe's outcome here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PPDL_SECRET_REGISTRY", "off")
    global W
    with tempfile.TemporaryDirectory(prefix="ppdl-probe-") as folder:
        W = World(Path(folder))
        try:
            report = run(args.verbose)
        finally:
            W.close()
            secret_scan.deactivate()
    counts = report["counts"]
    print(f"{report['probes']} probes: {counts['clear']} clear errors, {counts['raw']} raw tracebacks, "
          f"{counts['silent']} silent results, {counts['security']} security defects")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return int(counts["security"] > 0 or counts["silent"] > 0 or counts["raw"] > 5)


if __name__ == "__main__":
    sys.exit(main())
