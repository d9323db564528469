"""Dask execution (ppdl_utils.scale): resumable chunked encryption, faults, and the parties' keys.

Small keys (1024 bits) and tiny images keep this fast; one two-worker LocalCluster serves the
encryption tests, a one-worker one plays the server in the private-inference tests.
"""
from __future__ import annotations

import gc
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppdl_utils.crypto.cipher_array import PaillierArray, decrypt_array
from ppdl_utils.crypto.paillier import PaillierPrivateKey, generate_keypair
from ppdl_utils.errors import CiphertextError, DataError, PlaintextRangeError, PPDLError, WrongKeyError
from ppdl_utils.images.render import render, render_with_table
from ppdl_utils.learning.private_inference import fit_quantized_head, packing_parameters
from ppdl_utils.scale import private_inference as spi
from ppdl_utils.scale.cluster import SCHEDULER_ENV, SchedulerUnreachableError, dask_client
from ppdl_utils.scale.encrypt_dataset import TASK_PREFIX, JobParameterError, deterministic_table, encrypt_dataset
from ppdl_utils.scale.projection import project, project_dataset_encryption, project_private_inference
from ppdl_utils.scale.store import MANIFEST, OutputMismatchError, key_fingerprint, open_existing

distributed = pytest.importorskip("distributed")
CHUNK_TASK = re.compile(rf"^{TASK_PREFIX}-[0-9a-f]+-\d{{6}}$")


@pytest.fixture(scope="module")
def key() -> PaillierPrivateKey:
    return generate_keypair(1024, allow_insecure=True)


@pytest.fixture(scope="module")
def client():
    with dask_client(n_workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def server():
    with dask_client(n_workers=1) as c:
        yield c


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (10, 6, 6), dtype=np.uint8)


def _folder_bytes(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------------------------------
# connecting
# --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_named(monkeypatch, images, key, tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(SchedulerUnreachableError, match=re.escape(address)) as err:
        encrypt_dataset(images, key, tmp_path / "a", scheduler=address, timeout=1, progress=False)
    assert "scheduler parameter" in str(err.value)
    monkeypatch.setenv(SCHEDULER_ENV, address)
    with pytest.raises(SchedulerUnreachableError, match=re.escape(f"${SCHEDULER_ENV}")):
        with dask_client(timeout=1):
            pass
    with pytest.raises(SchedulerUnreachableError, match="not-an-address"):
        with dask_client("not-an-address", timeout=1):
            pass


def test_a_port_that_is_not_a_scheduler_times_out_with_its_name():
    with socket.socket() as listener:  # accepts connections, never speaks Dask
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(SchedulerUnreachableError, match=re.escape(address)):
            with dask_client(address, timeout=1):
                pass


def test_environment_variable_points_at_an_existing_cluster(monkeypatch, client):
    monkeypatch.setenv(SCHEDULER_ENV, client.scheduler.address)
    with dask_client(timeout=5) as other:
        assert other is not client and other.scheduler.address == client.scheduler.address


# --------------------------------------------------------------------------------------------
# encrypting a dataset
# --------------------------------------------------------------------------------------------
def test_randomized_dataset_decrypts_and_holds_no_secret(client, key, images, tmp_path):
    report = encrypt_dataset(images, key, tmp_path / "r", chunk_size=3, scheduler=client, ciphertexts=True,
                             progress=False)
    assert sorted(report.computed) == [0, 1, 2, 3] and report.skipped == 0
    store = open_existing(tmp_path / "r", key)
    manifest = store.manifest
    assert manifest.key_fingerprint == key_fingerprint(key.public) and manifest.regime == "randomized"
    assert manifest.shape == images.shape and manifest.chunk_size == 3 and manifest.renderer == "mod256"
    cipher = store.read_ciphertexts(key.public)
    with pytest.raises(WrongKeyError):
        store.read_ciphertexts(generate_keypair(1024, allow_insecure=True).public)
    assert np.array_equal(decrypt_array(key, cipher), images)
    assert np.array_equal(store.read_images(), render(cipher.values, key.public, "mod256"))
    for name, data in _folder_bytes(tmp_path / "r").items():
        assert spi.private_key_traces(data, key) == [], name


@pytest.mark.parametrize("regime", ["fixed_r", "table"])
def test_resume_redoes_only_missing_chunks_byte_identically(client, key, images, tmp_path, regime):
    folder = tmp_path / regime
    encrypt_dataset(images, key, folder, regime=regime, chunk_size=2, scheduler=client, progress=False)
    before = _folder_bytes(folder)
    for index in (1, 3):
        (folder / f"chunk_{index:06d}.npy").unlink()
    with distributed.get_task_stream(client=client) as stream:
        report = encrypt_dataset(images, key, folder, regime=regime, chunk_size=2, scheduler=client, progress=False)
    assert sorted(report.computed) == [1, 3] and report.skipped == 3
    assert sum(bool(CHUNK_TASK.match(str(t["key"]))) for t in stream.data) == 2  # counted by Dask itself
    assert _folder_bytes(folder) == before
    table = deterministic_table(key, regime, open_existing(folder, key).manifest.salt)
    assert np.array_equal(open_existing(folder, key).read_images(), render_with_table(images, table, key.public))


def test_a_complete_folder_starts_no_work(key, images, tmp_path, client):
    encrypt_dataset(images, key, tmp_path / "d", regime="r_one", scheduler=client, progress=False)
    report = encrypt_dataset(images, key, tmp_path / "d", regime="r_one", scheduler="tcp://127.0.0.1:1",
                             progress=False)  # would fail if it tried to connect
    assert report.computed == [] and report.skipped == report.manifest.n_chunks


KILLED_CLIENT = """
import os, pickle, signal, sys
import numpy as np
from ppdl_utils.scale.encrypt_dataset import encrypt_dataset
key, images = pickle.loads(open(sys.argv[1], "rb").read()), np.load(sys.argv[2])
written = []
def die_after_two(index):
    written.append(index)
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)  # no clean-up of any kind: as if the machine went away
encrypt_dataset(images, key, sys.argv[3], regime="table", chunk_size=1, scheduler=sys.argv[4], progress=False,
                on_chunk=die_after_two)
"""


def test_a_killed_job_restarted_redoes_only_the_missing_chunks(client, key, images, tmp_path):
    folder, key_file = tmp_path / "killed", tmp_path / "key.pickle"
    key_file.write_bytes(pickle.dumps(key))
    key_file.chmod(0o600)
    np.save(tmp_path / "images.npy", images)
    done = subprocess.run([sys.executable, "-c", KILLED_CLIENT, str(key_file), str(tmp_path / "images.npy"),
                           str(folder), client.scheduler.address], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    survivors = sorted(int(p.name[6:12]) for p in folder.glob("chunk_*.npy"))
    assert len(survivors) == 2 and (folder / MANIFEST).is_file()
    (folder / ".chunk_000009.npy.abc.tmp").write_bytes(b"half a chunk")  # as a kill mid-write leaves
    report = encrypt_dataset(images, key, folder, regime="table", chunk_size=1, scheduler=client, progress=False)
    assert report.skipped == 2 and sorted(report.computed) == sorted(set(range(10)) - set(survivors))
    assert not list(folder.glob(".*.tmp"))
    table = deterministic_table(key, "table", report.manifest.salt)  # the table the killed job used
    assert np.array_equal(open_existing(folder, key).read_images(), render_with_table(images, table, key.public))


def test_a_worker_killed_mid_job_loses_and_duplicates_nothing(client, key, tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (16, 24, 24), dtype=np.uint8)  # ~0.1 s a chunk
    pids, killed, seen = client.run(os.getpid), {}, []

    def kill_a_busy_worker(index: int) -> None:
        seen.append(index)
        busy = {w: keys for w, keys in client.processing().items() if keys}
        if not killed and busy:
            address = next(iter(busy))
            killed.update(address=address, pid=pids[address], keys=list(busy[address]))
            os.kill(pids[address], signal.SIGKILL)

    report = encrypt_dataset(images, key, tmp_path / "k", chunk_size=2, scheduler=client, ciphertexts=True,
                             progress=False, on_chunk=kill_a_busy_worker)
    assert killed and killed["keys"], "no worker was busy when the first chunk arrived"
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    assert sorted(seen) == sorted(report.computed) == list(range(8))  # each chunk written exactly once
    store = open_existing(tmp_path / "k", key)
    assert np.array_equal(decrypt_array(key, store.read_ciphertexts(key.public)), images)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it; leave the cluster whole


def test_folder_of_another_key_or_regime_is_refused(client, key, images, tmp_path):
    folder = tmp_path / "o"
    encrypt_dataset(images, key, folder, regime="fixed_r", scheduler=client, progress=False)
    with pytest.raises(WrongKeyError, match=re.escape(str(folder))):
        encrypt_dataset(images, generate_keypair(1024, allow_insecure=True), folder, regime="fixed_r",
                        scheduler=client, progress=False)
    with pytest.raises(OutputMismatchError, match="regime='fixed_r'.*regime='table'"):
        encrypt_dataset(images, key, folder, regime="table", scheduler=client, progress=False)
    with pytest.raises(OutputMismatchError, match="renderer"):
        encrypt_dataset(images, key, folder, regime="fixed_r", renderer="msb", scheduler=client, progress=False)
    with pytest.raises(OutputMismatchError, match="input images"):
        encrypt_dataset(images[::-1], key, folder, regime="fixed_r", scheduler=client, progress=False)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="has no manifest.json"):
        encrypt_dataset(images, key, tmp_path / "foreign", scheduler=client, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"regime": "fixed_r", "ciphertexts": True}, "ciphertexts=True"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"renderer": "jpeg"}, "renderer='jpeg'"),
])
def test_bad_job_parameters_are_named(key, images, tmp_path, kwargs, match):
    with pytest.raises(JobParameterError, match=match):
        encrypt_dataset(images, key, tmp_path / "x", scheduler="tcp://127.0.0.1:1", progress=False, **kwargs)
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def small_key() -> PaillierPrivateKey:
    return generate_keypair(512, allow_insecure=True)  # the tables' 256 exponentiations stay cheap


@settings(max_examples=4)
@given(salt=st.text(min_size=1, max_size=12), regime=st.sampled_from(["fixed_r", "table", "r_one"]))
def test_deterministic_tables_encrypt_0_to_255_reproducibly(small_key, salt, regime):
    table = deterministic_table(small_key, regime, salt)
    assert list(decrypt_array(small_key, PaillierArray(table, small_key.public))) == list(range(256))
    assert list(deterministic_table(small_key, regime, salt)) == list(table)
    changed = list(deterministic_table(small_key, regime, salt + "!")) != list(table)
    assert changed == (regime != "r_one")  # r_one has no secret: c = 1 + m n for everyone
    if regime != "r_one":
        assert len(set(table)) == 256


# --------------------------------------------------------------------------------------------
# batch private inference: two parties, two clusters
# --------------------------------------------------------------------------------------------
class GraphRecorder(distributed.diagnostics.plugin.SchedulerPlugin):
    """Pickles the run_spec of every task that enters the scheduler (the task graph it holds)."""

    name = "ppdl-graph-recorder"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def update_graph(self, scheduler, *, tasks, **kwargs) -> None:
        from distributed.protocol.pickle import dumps

        with self.lock:
            for key in tasks:
                ts = scheduler.tasks.get(key)
                if ts is not None and ts.run_spec is not None:
                    self.blobs[str(key)] = dumps(ts.run_spec)


@pytest.fixture
def recorders():
    """Attach a GraphRecorder to a cluster's (in-process) scheduler; detached after the test."""
    attached = []

    def attach(c) -> GraphRecorder:
        recorder, name = GraphRecorder(), f"{GraphRecorder.name}-{len(attached)}"
        c.cluster.scheduler.add_plugin(recorder, name=name)
        attached.append((c.cluster.scheduler, name))
        return recorder

    yield attach
    for scheduler, name in attached:
        scheduler.remove_plugin(name=name)


def _private_keys_in_worker() -> int:
    from ppdl_utils.crypto.paillier import PaillierPrivateKey as Key

    return sum(isinstance(o, Key) for o in gc.get_objects())


@pytest.fixture(scope="module")
def head():
    rng = np.random.default_rng(2)
    features, labels = rng.normal(size=(120, 12)), rng.integers(0, 3, 120)
    return fit_quantized_head(features, labels), rng.normal(size=(11, 12))


def test_batch_inference_is_exact_and_the_server_graph_holds_no_private_key(client, server, key, head, recorders):
    head, test_features = head
    quantized = head.quantize_features(test_features)
    on_server, on_client = recorders(server), recorders(client)
    result = spi.batch_private_inference(head, key, quantized, client_scheduler=client, server_scheduler=server,
                                         rows_per_chunk=4, progress=False)
    assert np.array_equal(result.scores, head.scores(quantized)) and result.mismatches == 0
    assert result.chunks == 3 and result.bytes_up > quantized.size * key.public.ciphertext_nbytes
    server_tasks = {k: b for k, b in on_server.blobs.items() if k.startswith(spi.TASK_PREFIX)}
    assert len(server_tasks) == result.chunks + 1  # the model task and one task per chunk: all seen
    for name, blob in server_tasks.items():
        assert spi.private_key_traces(blob, key) == [], name
    client_graph = b"".join(b for k, b in on_client.blobs.items() if k.startswith(spi.TASK_PREFIX))
    assert set(spi.private_key_traces(client_graph, key)) == {"p", "q", "lambda", "mu"}  # the check can fail
    assert set(server.run(_private_keys_in_worker).values()) == {0}
    assert max(client.run(_private_keys_in_worker).values()) >= 1


def test_server_task_builders_carry_only_public_data(key, head):
    head, test_features = head
    cipher = PaillierArray(np.full((2, 12), 2, dtype=object), key.public).to_bytes()
    tasks = [spi.server_model_task(head, key.public, "t"), spi.server_chunk_task("t", 0, cipher)]
    blob = b"".join(distributed.protocol.pickle.dumps(task) for task in tasks)
    assert spi.private_key_traces(blob, key) == []
    assert spi.private_key_traces(pickle.dumps(key), key) == ["p", "q", "lambda", "mu"]


def test_one_cluster_for_both_parties_is_refused(client, key, head):
    head, test_features = head
    with pytest.raises(PPDLError, match="private key"):
        spi.batch_private_inference(head, key, head.quantize_features(test_features), client_scheduler=client,
                                    server_scheduler=client, progress=False)


def test_one_cluster_under_two_names_is_refused(client, key, head):
    from distributed import Client

    head, test_features = head
    quantized = head.quantize_features(test_features)
    port = client.scheduler.address.rsplit(":", 1)[1]
    for mine, theirs in ((f"tcp://127.0.0.1:{port}", f"tcp://localhost:{port}"), (client, f"tcp://localhost:{port}")):
        with pytest.raises(spi.SameClusterError, match="private key"):
            spi.batch_private_inference(head, key, quantized, client_scheduler=mine, server_scheduler=theirs,
                                        progress=False)
    with Client(client.scheduler.address, set_as_default=False) as alias:  # a second Client of one scheduler
        with pytest.raises(spi.SameClusterError, match="one scheduler"):
            spi.check_distinct_clusters(client, alias)


def test_out_of_range_features_are_refused_before_any_work(key, head):
    head, _ = head
    bad = np.full((2, 12), head.feature_max + 1)
    with pytest.raises(PlaintextRangeError, match=str(head.feature_max)):
        spi.batch_private_inference(head, key, bad, client_scheduler="tcp://127.0.0.1:1", progress=False)


def test_a_tampered_reply_is_detected_on_decryption(key, head):
    head, _ = head
    offset, base = packing_parameters(head)
    forged = PaillierArray(np.array([1 + base ** head.n_classes * key.n], dtype=object), key.public)  # E(B^K)
    with pytest.raises(CiphertextError, match="altered"):
        spi.client_decrypt(key, forged.to_bytes(), head.n_classes, offset, base)


# --------------------------------------------------------------------------------------------
# the projection model
# --------------------------------------------------------------------------------------------
def test_projection_scales_compute_and_names_the_bound():
    ten, twenty = project("w", 1000.0, 100, 10, 0.1), project("w", 1000.0, 100, 20, 0.1)
    assert ten.waves_s == pytest.approx(10 * (10 + 0.1)) and twenty.waves_s == pytest.approx(ten.waves_s / 2)
    assert project("w", 1000.0, 100, 30, 0.0).waves_s == pytest.approx(4 * 10)  # 4 waves, the last one partial
    assert project("w", 1.0, 10_000, 1000, 0.0).bound == "scheduler"
    assert project("w", 1.0, 10, 10, 0.0, bytes_through_client=1e9).bound == "network"
    full = project_dataset_encryption(12_500, 0.0, 64)
    assert full.tasks == 21_165 and full.core_hours == pytest.approx(21_165 * 299 ** 2 / 12_500 / 3600)


@given(cores=st.integers(1, 4096), more=st.integers(1, 4096), overhead=st.floats(0, 1))
def test_more_cores_never_project_slower(cores, more, overhead):
    for make in (lambda c: project_dataset_encryption(12_500, overhead, c),
                 lambda c: project_private_inference(0.1, 0.4, 0.004, overhead, c)):
        assert make(cores + more).projected_s <= make(cores).projected_s + 1e-9
