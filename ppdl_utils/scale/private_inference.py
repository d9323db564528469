"""Batch private inference (notebook 07's protocol) on two Dask clusters, one per party.

Who holds what:

* **client cluster** (the hospital's machines): the private key.  Its workers encrypt the
  quantized features (the fast path works modulo p^2 and q^2, so it uses p and q; encryption as
  such needs only n) and decrypt the packed scores (that needs lambda/mu, or p and q).
* **client process**: carries ciphertext bytes between the clusters; nothing else leaves it.
* **server cluster** (the model owner's machines): the public key, the ciphertexts and the
  linear head's weights only.  :func:`server_model_task` and :func:`server_chunk_task` build
  every task the server receives; tests search them, and the server scheduler's graph, for p,
  q, lambda and mu (:func:`private_key_traces`).

The two clusters are never the same one: by default two LocalClusters are started; two addresses
that resolve to one host and port are refused before connecting, and two connections to one
scheduler (same scheduler id, whatever the address or Client object) are refused before any task.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

import gmpy2
import numpy as np
from tqdm.auto import tqdm

from ppdl_utils.crypto.cipher_array import PaillierArray, decrypt_array
from ppdl_utils.crypto.fast_encrypt import FastEncryptor
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, require_key_size
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.errors import CiphertextError, DataError, PPDLError
from ppdl_utils.learning.private_inference import PaillierHeadServer, QuantizedHead, packing_parameters, unpack_scores
from ppdl_utils.scale.cluster import (
    CONNECT_TIMEOUT_S,
    SCHEDULER_ENV,
    check_scheduler,
    dask_client,
    same_address,
    scheduler_address,
    scheduler_id,
)

if TYPE_CHECKING:
    from distributed import Client

#: feature rows per task: ~1.5 s of client encryption and ~5 s of server work for 1280 features
DEFAULT_ROWS_PER_CHUNK = 16
TASK_PREFIX = "ppdl-inference"
#: the server's cluster when `server_scheduler` is None (``$PPDL_DASK_SCHEDULER`` names the client's)
SERVER_SCHEDULER_ENV = "PPDL_DASK_SERVER_SCHEDULER"


# ---------------------------------------------------------------------------------------------
# tasks: client side (private key) and server side (public key, head, ciphertexts)
# ---------------------------------------------------------------------------------------------
_CLIENT_ENCRYPTOR: dict[int, FastEncryptor] = {}  # per client worker: comb tables built once


def client_encrypt(private: PaillierPrivateKey, rows: np.ndarray) -> tuple[bytes, float]:
    """Client worker: randomized ciphertexts of quantized features (k, d), serialized (the
    header names the key, so the server cannot use them under another one)."""
    start = time.perf_counter()
    encryptor = _CLIENT_ENCRYPTOR.get(int(private.n))
    if encryptor is None:
        _CLIENT_ENCRYPTOR.clear()
        encryptor = _CLIENT_ENCRYPTOR[int(private.n)] = FastEncryptor(private)
    values = np.empty(rows.size, dtype=object)
    values[:] = [int(c) for c in encryptor.encrypt_many(rows.ravel())]
    array = PaillierArray(values.reshape(rows.shape), private.public, Regime.RANDOMIZED.value)
    return array.to_bytes(), time.perf_counter() - start


def server_evaluate(head: QuantizedHead, public: PaillierPublicKey, cipher: bytes) -> tuple[bytes, float]:
    """Server worker: one packed score ciphertext per row, serialized.  It sees only public data;
    ``from_bytes`` rejects anything that is not a well-formed array under `public`."""
    start = time.perf_counter()
    server = PaillierHeadServer(head, public)
    features = PaillierArray.from_bytes(cipher, public)
    if features.values.ndim != 2:
        raise CiphertextError(f"expected a (rows, features) ciphertext array, got shape {features.shape}")
    packed = np.empty(features.shape[0], dtype=object)
    packed[:] = [server.evaluate(PaillierArray(row, public, features.regime)) for row in features.values]
    return PaillierArray(packed, public, features.regime).to_bytes(), time.perf_counter() - start


def client_decrypt(private: PaillierPrivateKey, packed: bytes, n_classes: int, offset: int,
                   base: int) -> tuple[np.ndarray, float]:
    """Client worker: decrypt each packed ciphertext and unpack its K integer scores (k, K)."""
    start = time.perf_counter()
    plain = decrypt_array(private, PaillierArray.from_bytes(packed, private.public))
    limit = base ** n_classes
    scores = []
    for m in np.ravel(plain):
        if not 0 <= int(m) < limit:  # an impossible value: corrupted, or not computed by this head
            raise CiphertextError(f"a packed score decrypts to a value outside [0, B^K) with B={base}, "
                                  f"K={n_classes}: the server's reply was altered or mis-computed")
        scores.append(unpack_scores(int(m), n_classes, offset, base))
    return np.array(scores, dtype=np.int64).reshape(len(scores), n_classes), time.perf_counter() - start


def _identity(value: object) -> object:
    return value


def _evaluate_with_model(model: tuple[QuantizedHead, PaillierPublicKey], cipher: bytes) -> tuple[bytes, float]:
    return server_evaluate(model[0], model[1], cipher)


def server_model_task(head: QuantizedHead, public: PaillierPublicKey, token: str) -> tuple[str, Callable, tuple]:
    """(key, function, args) of the task that puts the head and the public key on the server."""
    return f"{TASK_PREFIX}-server-model-{token}", _identity, ((head, public),)


def server_chunk_task(token: str, index: int, cipher: bytes) -> tuple[str, Callable, tuple]:
    """(key, function, args) of one chunk's evaluation; the model task's future is prepended.
    These two builders make every task the server cluster receives."""
    return f"{TASK_PREFIX}-server-{token}-{index:06d}", _evaluate_with_model, (cipher,)


# ---------------------------------------------------------------------------------------------
# the client process: the batch
# ---------------------------------------------------------------------------------------------
@dataclass
class BatchInference:
    """Decrypted scores and predictions of a batch, with per-stage compute and wall times."""

    scores: np.ndarray  # (N, K) int64, exactly the plaintext head's integer scores
    predictions: np.ndarray  # (N,) argmax
    reference: np.ndarray  # argmax of the plaintext quantized head (for the mismatch count)
    chunks: int
    wall_seconds: float
    task_seconds: dict[str, float] = field(default_factory=dict)  # encrypt / server / decrypt sums
    bytes_up: int = 0  # serialized ciphertext bytes client -> server
    bytes_down: int = 0  # server -> client

    @property
    def mismatches(self) -> int:
        return int((self.predictions != self.reference).sum())

    def per_image_seconds(self) -> dict[str, float]:
        """Core-seconds per image of each stage (the projection's inputs)."""
        n = max(len(self.predictions), 1)
        return {stage: seconds / n for stage, seconds in self.task_seconds.items()}


def _address(value: "str | Client | None", env: str) -> str | None:
    if value is None or isinstance(value, str):
        return scheduler_address(value, env)[0]
    return str(value.scheduler.address)


class SameClusterError(PPDLError, ValueError):
    """The client's and the server's cluster are one scheduler: the server would hold the key."""


def _check_roles(client_scheduler: "str | Client | None", server_scheduler: "str | Client | None") -> None:
    """Before connecting: refuse two names of one scheduler (aliases resolved, see ``same_address``)."""
    check_scheduler(client_scheduler, "client_scheduler")
    check_scheduler(server_scheduler, "server_scheduler")
    mine, theirs = _address(client_scheduler, SCHEDULER_ENV), _address(server_scheduler, SERVER_SCHEDULER_ENV)
    if mine is not None and theirs is not None and same_address(mine, theirs):
        raise SameClusterError(f"client and server clusters are the same ({mine} and {theirs}): the server's "
                               "workers would hold the private key. Give the server cluster its own scheduler.")


def check_distinct_clusters(client: "Client", server: "Client") -> None:
    """After connecting: refuse one scheduler for both parties by its identity (scheduler id), which no
    alias, proxy or second Client object can hide."""
    if client is server or scheduler_id(client) == scheduler_id(server):
        raise SameClusterError(f"client and server clusters are one scheduler (id {scheduler_id(client)}, "
                               f"{client.scheduler.address}): the server's workers would hold the private key. "
                               "Give the server cluster its own scheduler.")


def batch_private_inference(head: QuantizedHead, private: PaillierPrivateKey, quantized: np.ndarray,
                            client_scheduler: "str | Client | None" = None,
                            server_scheduler: "str | Client | None" = None,
                            rows_per_chunk: int = DEFAULT_ROWS_PER_CHUNK, n_workers: int | None = None,
                            progress: bool = True, timeout: float = CONNECT_TIMEOUT_S) -> BatchInference:
    """Encrypt on the client cluster, evaluate the head on the server cluster, decrypt on the
    client cluster; chunks flow through the three stages as soon as each is ready.

    Args:
        quantized: (N, d) features already quantized with ``head.quantize_features``.
        client_scheduler: the client's cluster (address or Client); default ``$PPDL_DASK_SCHEDULER``,
            else a LocalCluster of `n_workers` processes.
        server_scheduler: the server's cluster; default ``$PPDL_DASK_SERVER_SCHEDULER``, else a
            second LocalCluster.  Refused when it is the client's cluster.
    """
    if not isinstance(private, PaillierPrivateKey):
        raise PPDLError(f"private must be the client's PaillierPrivateKey, got {type(private).__name__}")
    require_key_size(private.public, "batch_private_inference's private key")
    if not isinstance(head, QuantizedHead):
        raise PPDLError(f"head must be a QuantizedHead (fit_quantized_head), got {type(head).__name__}")
    rows = head.check_quantized(quantized)  # client side, before any work: PlaintextRangeError
    if isinstance(rows_per_chunk, bool) or not isinstance(rows_per_chunk, (int, np.integer)) or rows_per_chunk < 1:
        raise DataError(f"rows_per_chunk must be a positive int, got {rows_per_chunk!r}")
    _check_roles(client_scheduler, server_scheduler)
    with dask_client(client_scheduler, n_workers, timeout) as client, \
            dask_client(server_scheduler, n_workers, timeout, env=SERVER_SCHEDULER_ENV) as server:
        check_distinct_clusters(client, server)
        return _run_batch(client, server, head, private, rows, int(rows_per_chunk), progress)


def _run_batch(client: "Client", server: "Client", head: QuantizedHead, private: PaillierPrivateKey,
               rows: np.ndarray, size: int, progress: bool) -> BatchInference:
    from distributed import as_completed

    token, start = secrets.token_hex(6), time.perf_counter()
    offset, base = packing_parameters(head)
    bounds = [(lo, min(lo + size, len(rows))) for lo in range(0, len(rows), size)]
    key_future = client.submit(_identity, private, key=f"{TASK_PREFIX}-client-key-{token}")
    model_key, model_fn, model_args = server_model_task(head, private.public, token)
    model_future = server.submit(model_fn, *model_args, key=model_key)
    encrypt = {client.submit(client_encrypt, key_future, rows[lo:hi], key=f"{TASK_PREFIX}-encrypt-{token}-{i:06d}"): i
               for i, (lo, hi) in enumerate(bounds)}
    seconds, up, down = {"encrypt": 0.0, "server": 0.0, "decrypt": 0.0}, 0, 0
    evaluate = {}
    for future in as_completed(list(encrypt), loop=client.loop):
        cipher, t = future.result()  # the ciphertexts cross from the client to the server here
        seconds["encrypt"], up = seconds["encrypt"] + t, up + len(cipher)
        key, function, args = server_chunk_task(token, encrypt[future], cipher)
        evaluate[server.submit(function, model_future, *args, key=key)] = encrypt.pop(future)
        future.release()
    decrypt = {}
    for future in as_completed(list(evaluate), loop=server.loop):
        packed, t = future.result()
        seconds["server"], down = seconds["server"] + t, down + len(packed)
        index = evaluate.pop(future)
        decrypt[client.submit(client_decrypt, key_future, packed, head.n_classes, offset, base,
                              key=f"{TASK_PREFIX}-decrypt-{token}-{index:06d}")] = index
    scores = np.zeros((len(rows), head.n_classes), dtype=np.int64)
    with tqdm(total=len(rows), unit="img", disable=not progress, desc="private inference") as bar:
        for future in as_completed(list(decrypt), loop=client.loop):
            part, t = future.result()
            lo, hi = bounds[decrypt.pop(future)]
            scores[lo:hi], seconds["decrypt"] = part, seconds["decrypt"] + t
            bar.update(hi - lo)
    key_future.release()
    model_future.release()
    return BatchInference(scores, scores.argmax(axis=1), head.scores(rows).argmax(axis=1), len(bounds),
                          time.perf_counter() - start, seconds, up, down)


def private_key_traces(payload: bytes, private: PaillierPrivateKey) -> list[str]:
    """Which of p, q, lambda, mu occur in `payload` (pickled tasks, graphs, messages), in any of
    the encodings a pickle or a message may use: decimal and hex text, big- and little-endian
    bytes (pickle's LONG), gmpy2's binary form.  An empty list means none was found."""
    found = []
    for name, value in (("p", private.p), ("q", private.q), ("lambda", private.lam), ("mu", private.mu)):
        value = int(value)
        width = (value.bit_length() + 8) // 8  # pickle stores a signed, little-endian two's complement
        forms: Iterable[bytes] = (str(value).encode(), format(value, "x").encode(),
                                  value.to_bytes(width, "big").lstrip(b"\0"),
                                  value.to_bytes(width, "little").rstrip(b"\0"),
                                  gmpy2.to_binary(gmpy2.mpz(value))[2:])
        if any(form and form in payload for form in forms):
            found.append(name)
    return found
