"""Encrypt and render a whole dataset on a Dask cluster, in chunks, into a resumable folder.

Who holds what: this runs on the **client's** cluster (the party that owns the images).
Randomized chunks need the private key on the workers: the fast encryption path
(:class:`~ppdl_utils.crypto.fast_encrypt.FastEncryptor`) works modulo p^2 and q^2.  Deterministic
chunks need only the public key and the regime's secret 256-entry table.  Never point this at a
cluster you do not trust with the key; the server's cluster only ever sees the rendered output.

Deterministic regimes (``fixed_r``, ``table``) are reproducible so that a restarted job is
byte-identical: their secret randomness is derived as HMAC-SHA256(key = H(p, q), salt, label)
(a PRF of the private key) with the folder's public salt, instead of being drawn afresh.  Someone
without p and q cannot compute it; a new folder gets a new salt and thus a new table.
Randomized chunks use fresh randomness from ``secrets``: a restart redoes the missing chunks with
new randomness, which is still a valid (and semantically secure) encryption of the same images.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import gmpy2
import numpy as np
from tqdm.auto import tqdm

from ppdl_utils import secret_scan
from ppdl_utils.crypto.cipher_array import PaillierArray
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, require_key_size
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.errors import PPDLError
from ppdl_utils.images.encryption import ImageEncryptor, validate_images
from ppdl_utils.images.render import RENDERERS, render, render_with_table
from ppdl_utils.scale.cluster import CONNECT_TIMEOUT_S, dask_client
from ppdl_utils.scale.store import ChunkStore, Manifest, images_digest, key_fingerprint

if TYPE_CHECKING:
    from distributed import Client

#: pixels per chunk by default: 4 images at 128 px (~5 s of work per task at ~12,500 encryptions
#: per second per core), 1 image at 299 px; Dask's ~1 ms per task is then far below 1 %.
DEFAULT_CHUNK_PIXELS = 1 << 16
TASK_PREFIX = "ppdl-encrypt"


class JobParameterError(PPDLError, ValueError):
    """A job parameter (regime, renderer, chunk size, ...) cannot be used; the message names it."""


def default_chunk_size(image_shape: tuple[int, ...]) -> int:
    """Images per chunk so that a chunk holds about DEFAULT_CHUNK_PIXELS pixels (at least one)."""
    return max(1, DEFAULT_CHUNK_PIXELS // max(1, int(np.prod(image_shape[-2:]))))


# ---------------------------------------------------------------------------------------------
# deterministic regimes: reproducible secret tables
# ---------------------------------------------------------------------------------------------
def _derived_unit(private: PaillierPrivateKey, salt: str, label: str) -> int:
    """A pseudorandom r in Z*_n: HMAC-SHA256 in counter mode, keyed by a hash of the primes,
    128 bits longer than n so that r mod n is statistically uniform."""
    n = int(private.n)
    secret = hashlib.sha256(f"ppdl-derive-v1|{int(private.p)}|{int(private.q)}".encode()).digest()
    length = (n.bit_length() + 128 + 7) // 8
    for attempt in range(1000):
        stream = b"".join(hmac.new(secret, f"{salt}|{label}|{attempt}|{block}".encode(), hashlib.sha256).digest()
                          for block in range(-(-length // 32)))
        r = int.from_bytes(stream[:length], "big") % n
        if r and math.gcd(r, n) == 1:
            return r
    raise PPDLError("could not derive a unit modulo n (is the key valid?)")  # probability ~ 0


def deterministic_table(private: PaillierPrivateKey, regime: "Regime | str", salt: str) -> np.ndarray:
    """E(0..255) of a deterministic regime, reproducible from (private key, salt).

    ``r_one``: 1 + m*n; ``fixed_r``: (1 + m*n) * r^n with one derived r; ``table``: an
    independent derived r_m per value.  Same meaning as ``ImageEncryptor``'s tables, but a rerun
    with the same salt gets the same table."""
    regime = Regime.parse(regime)
    if regime is Regime.RANDOMIZED:
        raise JobParameterError("the randomized regime has no table: every pixel gets fresh randomness")
    n, n2 = gmpy2.mpz(private.n), gmpy2.mpz(private.n) ** 2
    fixed = None
    if regime is Regime.FIXED_R:
        r = _derived_unit(private, salt, "fixed_r")
        secret_scan.register_secret("fixed_r", "r", private.public.fingerprint, r)
        fixed = gmpy2.powmod(r, n, n2)
    table = np.empty(256, dtype=object)
    for m in range(256):
        if regime is Regime.R_ONE:
            residue = gmpy2.mpz(1)
        elif fixed is not None:
            residue = fixed
        else:
            residue = gmpy2.powmod(_derived_unit(private, salt, f"table-{m}"), n, n2)
        table[m] = int((1 + m * n) * residue % n2)
    if regime is Regime.TABLE:  # so that the output scan can prove the table never leaks
        secret_scan.register_secret("table", "E(0..255)", private.public.fingerprint, [int(c) for c in table])
    return table


# ---------------------------------------------------------------------------------------------
# the task run on the client's workers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class WorkerSpec:
    """What a worker needs for one job: the private key only for randomized chunks, the secret
    table only for deterministic ones (its repr shows neither)."""

    token: str
    public: PaillierPublicKey
    regime: str
    renderer: str
    ciphertexts: bool
    private: PaillierPrivateKey | None = None
    table: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"WorkerSpec({self.token}, {self.regime}, {self.renderer}, key {self.public.fingerprint})"


_ENCRYPTOR: dict[str, ImageEncryptor] = {}  # per worker process: the comb tables are built once


def _encryptor(spec: WorkerSpec) -> ImageEncryptor:
    if spec.token not in _ENCRYPTOR:
        _ENCRYPTOR.clear()  # keep no key of a finished job
        _ENCRYPTOR[spec.token] = ImageEncryptor(spec.private, Regime.RANDOMIZED)
    return _ENCRYPTOR[spec.token]


def encrypt_chunk(spec: WorkerSpec, images: np.ndarray) -> tuple[np.ndarray, bytes | None, float]:
    """(rendered uint8 images, the chunk's serialized PaillierArray or None, compute seconds)."""
    start = time.perf_counter()
    if spec.table is not None:
        rendered = render_with_table(images, spec.table, spec.public, spec.renderer)
        return rendered, None, time.perf_counter() - start
    encryptor = _encryptor(spec)
    arrays = [encryptor.encrypt(image) for image in images]
    rendered = np.stack([render(array.values, spec.public, spec.renderer) for array in arrays])
    cipher = None
    if spec.ciphertexts:  # one self-describing blob (key fingerprint, shape) per chunk
        cipher = PaillierArray(np.stack([a.values for a in arrays]), spec.public, Regime.RANDOMIZED.value).to_bytes()
    return rendered, cipher, time.perf_counter() - start


def _identity(value: object) -> object:
    return value


# ---------------------------------------------------------------------------------------------
# the client side
# ---------------------------------------------------------------------------------------------
@dataclass
class EncryptReport:
    """What one call did: which chunks it computed, and how long the tasks and the whole took."""

    folder: Path
    manifest: Manifest
    skipped: int  # chunks already present when the job started
    computed: list[int] = field(default_factory=list)  # chunk indices, in completion order
    task_seconds: dict[int, float] = field(default_factory=dict)  # compute time inside each task
    wall_seconds: float = 0.0  # first submission to last chunk written (cluster start-up excluded)
    cores: int = 0  # worker threads when the job started

    @property
    def overhead_core_seconds(self) -> float:
        """Core-seconds not spent computing: cores x wall - sum of task compute times."""
        return self.cores * self.wall_seconds - sum(self.task_seconds.values())

    @property
    def overhead_fraction(self) -> float:
        """Scheduling overhead as a fraction of task compute time."""
        return self.overhead_core_seconds / max(sum(self.task_seconds.values()), 1e-12)


def _check_job(stack: np.ndarray, regime: Regime, renderer: str, chunk_size: int | None,
               ciphertexts: bool) -> int:
    if renderer not in RENDERERS:
        raise JobParameterError(f"renderer={renderer!r} is unknown; expected one of {', '.join(RENDERERS)}")
    if ciphertexts and regime is not Regime.RANDOMIZED:
        raise JobParameterError(f"ciphertexts=True with regime={regime.value!r}: a deterministic regime's "
                                "ciphertexts are its secret table; only randomized ciphertexts may be kept")
    size = default_chunk_size(stack.shape) if chunk_size is None else chunk_size
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise JobParameterError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    if len(stack) == 0:
        raise JobParameterError("images is empty: nothing to encrypt")
    return int(size)


def _spec(private: PaillierPrivateKey, manifest: Manifest) -> WorkerSpec:
    regime = Regime.parse(manifest.regime)
    token = secrets.token_hex(6)
    if regime is Regime.RANDOMIZED:
        return WorkerSpec(token, private.public, regime.value, manifest.renderer, manifest.ciphertexts, private=private)
    table = deterministic_table(private, regime, manifest.salt)
    return WorkerSpec(token, private.public, regime.value, manifest.renderer, False, table=table)


def encrypt_dataset(images: np.ndarray, private: PaillierPrivateKey, output: "str | Path",
                    regime: "Regime | str" = Regime.RANDOMIZED, renderer: str = "mod256",
                    chunk_size: int | None = None, scheduler: "str | Client | None" = None,
                    n_workers: int | None = None, ciphertexts: bool = False, progress: bool = True,
                    on_chunk: Callable[[int], None] | None = None,
                    timeout: float = CONNECT_TIMEOUT_S) -> EncryptReport:
    """Encrypt `images` (N, H, W) uint8 under `regime`, render each cipher image, and write the
    result chunk by chunk into `output` (see :mod:`ppdl_utils.scale.store`).

    Args:
        output: a new or empty folder, or the folder of an interrupted run of the *same* job
            (same key, regime, renderer, chunk size and images): only its missing chunks are done.
        chunk_size: images per task (default: :func:`default_chunk_size`).
        scheduler: a Dask address or Client; default ``$PPDL_DASK_SCHEDULER``, else a LocalCluster
            of `n_workers` processes started for this call.  It must be the client's own cluster.
        ciphertexts: also keep the randomized ciphertexts (``.cipher.npy``: a serialized
            PaillierArray per chunk, 2*bits/8 bytes a pixel).
        on_chunk: called with each chunk index after it is written (progress hooks, tests).

    Returns an :class:`EncryptReport`; read the data with ``store.open_existing(output, private)``
    (every chunk is verified against its HMAC).
    """
    if not isinstance(private, PaillierPrivateKey):
        raise JobParameterError(f"private must be the client's PaillierPrivateKey, got {type(private).__name__}")
    require_key_size(private.public, "encrypt_dataset's private key")
    stack = validate_images(images, "images", batch=True)
    try:
        regime = Regime.parse(regime)
    except ValueError as exc:
        raise JobParameterError(str(exc)) from None
    size = _check_job(stack, regime, renderer, chunk_size, ciphertexts)
    wanted = Manifest(key_fingerprint(private.public), int(private.public.bits), regime.value, renderer,
                      tuple(int(v) for v in stack.shape), size, images_digest(stack), bool(ciphertexts))
    store = ChunkStore.open(output, wanted, private)
    missing = store.missing()
    report = EncryptReport(store.folder, store.manifest, skipped=store.manifest.n_chunks - len(missing))
    if not missing:
        return report  # nothing to do: no cluster is started
    spec = _spec(private, store.manifest)
    with dask_client(scheduler, n_workers, timeout) as client:
        report.cores = int(sum(client.nthreads().values()))
        _run_chunks(client, spec, stack, store, missing, report, progress, on_chunk)
    return report


def _run_chunks(client: "Client", spec: WorkerSpec, stack: np.ndarray, store: ChunkStore, missing: list[int],
                report: EncryptReport, progress: bool, on_chunk: Callable[[int], None] | None) -> None:
    """Keep a bounded window of chunk tasks in flight (the scheduler never holds the whole
    dataset) and write each result as it arrives; a task lost with a worker is rerun by Dask."""
    from distributed import as_completed

    start = time.perf_counter()
    # the spec is a task, not scattered data: if the worker holding it dies, Dask recomputes it
    spec_future = client.submit(_identity, spec, key=f"{TASK_PREFIX}-spec-{spec.token}")
    todo, window = iter(missing), max(8, 4 * max(report.cores, 1))
    manifest, futures, in_flight = store.manifest, as_completed(loop=client.loop), {}

    def submit_next() -> None:
        index = next(todo, None)
        if index is not None:
            lo, hi = manifest.bounds(index)
            future = client.submit(encrypt_chunk, spec_future, stack[lo:hi],
                                   key=f"{TASK_PREFIX}-{spec.token}-{index:06d}")
            in_flight[future.key] = (future, index)
            futures.add(future)

    for _ in range(window):
        submit_next()
    done_images = manifest.shape[0] - sum(hi - lo for lo, hi in map(manifest.bounds, missing))
    try:
        with tqdm(total=manifest.shape[0], initial=done_images, unit="img", disable=not progress,
                  desc=f"encrypting ({manifest.regime}, {len(missing)} chunks)") as bar:
            for future in futures:
                rendered, cipher, seconds = future.result()
                index = in_flight.pop(future.key)[1]
                store.write(index, rendered, cipher)
                report.computed.append(index)
                report.task_seconds[index] = float(seconds)
                future.release()
                bar.update(len(rendered))
                if on_chunk is not None:
                    on_chunk(index)
                submit_next()
    finally:  # interrupted (Ctrl-C, an error): stop the rest; the written chunks stay valid
        client.cancel([future for future, _ in in_flight.values()] + [spec_future])
    report.wall_seconds = time.perf_counter() - start
