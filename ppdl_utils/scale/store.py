"""Chunked, resumable output: one atomic ``.npy`` file per chunk plus a manifest.

A folder holds ``manifest.json`` and ``chunk_000000.npy``, ``chunk_000001.npy``, ... (rendered
uint8 images, ``(chunk, H, W)``), and for randomized jobs that keep them,
``chunk_000000.cipher.npy`` (the chunk's serialized ``PaillierArray``, a 1-D uint8 array: its
header names the key, so ciphertexts are never read under another key).

* Every file is written to a temporary name in the same folder and moved into place with
  ``os.replace``: a killed job never leaves half a chunk under a final name, so "the chunk file
  exists and has the right header" means "the chunk is done".
* ``.npy`` (not ``.npz``, whose zip entries carry a time stamp) so that equal arrays give
  byte-identical files.
* The manifest names what the chunks are: the key fingerprint (sha256 of n), regime, renderer,
  shape, chunk size and a digest of the plain input.  A job reopening the folder with other
  parameters is refused; with the same ones it redoes only the missing chunks.

Nothing secret is written: no p, q, no deterministic regime's table or fixed r^n.  The manifest's
``salt`` is public; the deterministic tables are derived from it *and the private key*.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ppdl_utils.crypto.cipher_array import PaillierArray
from ppdl_utils.crypto.paillier import PaillierPublicKey
from ppdl_utils.errors import DataError, PPDLError, WrongKeyError

FORMAT = "ppdl-chunked-v1"
MANIFEST = "manifest.json"
_TMP_SUFFIX = ".tmp"


class OutputMismatchError(PPDLError, ValueError):
    """An output folder holds a dataset made with other parameters (regime, renderer, shape, ...)."""


def key_fingerprint(public: PaillierPublicKey) -> str:
    """sha256 of the decimal modulus n (public; identifies the key a folder was made under)."""
    return hashlib.sha256(str(int(public.n)).encode()).hexdigest()


def images_digest(images: np.ndarray) -> str:
    """sha256 of the plain pixel bytes and shape: resuming with other images is refused."""
    h = hashlib.sha256(repr(tuple(images.shape)).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What a chunked dataset is; every field but `salt` and `created` must match to resume."""

    key_fingerprint: str
    key_bits: int
    regime: str
    renderer: str
    shape: tuple[int, int, int]
    chunk_size: int
    images_digest: str
    ciphertexts: bool
    salt: str = ""
    created: str = ""
    format: str = FORMAT

    @property
    def n_chunks(self) -> int:
        return -(-self.shape[0] // self.chunk_size)

    def bounds(self, index: int) -> tuple[int, int]:
        """[start, stop) of the images in chunk `index`."""
        start = index * self.chunk_size
        return start, min(start + self.chunk_size, self.shape[0])

    def fresh(self) -> "Manifest":
        """This manifest with a new public salt and a creation time (for a new folder)."""
        values = asdict(self) | {"salt": secrets.token_hex(16), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        return Manifest(**values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: Path) -> "Manifest":
        try:
            body = json.loads(text)
            known = {f.name for f in fields(cls)}
            if body.get("format") != FORMAT or not known >= set(body):
                raise ValueError(f"format {body.get('format')!r}, expected {FORMAT!r}")
            body["shape"] = tuple(int(v) for v in body["shape"])
            return cls(**body)
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{path} is not a manifest of a chunked dataset ({exc})") from None


_RESUME_FIELDS = ("regime", "renderer", "shape", "chunk_size", "images_digest", "ciphertexts", "key_bits")


def _check_same(stored: Manifest, wanted: Manifest, folder: Path) -> None:
    """Refuse to mix chunks of two jobs: the key first (its own error type), then each parameter."""
    if stored.key_fingerprint != wanted.key_fingerprint:
        raise WrongKeyError(
            f"output folder {folder} was made under key sha256(n)={stored.key_fingerprint[:16]}..., this job "
            f"uses key {wanted.key_fingerprint[:16]}...: use another folder (its chunks cannot be mixed)")
    for name in _RESUME_FIELDS:
        have, want = getattr(stored, name), getattr(wanted, name)
        if have != want:
            what = "input images" if name == "images_digest" else name
            raise OutputMismatchError(
                f"output folder {folder} holds a dataset with {what}={have!r}; this job asks for "
                f"{what}={want!r}: use another folder, or delete this one to start over")


def _atomic_save(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on one filesystem
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class ChunkStore:
    """The chunk files of one dataset folder (see the module docstring)."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder, self.manifest = folder, manifest

    @classmethod
    def open(cls, folder: "str | Path", wanted: Manifest) -> "ChunkStore":
        """Create the folder with `wanted`'s manifest (new salt), or reopen it if its manifest
        matches; refuse a folder of another key or other parameters, or foreign files."""
        folder = Path(folder)
        path = folder / MANIFEST
        if path.is_file():
            stored = Manifest.from_json(path.read_text(), path)
            _check_same(stored, wanted, folder)
            store = cls(folder, stored)
        else:
            if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
                raise DataError(f"output folder {folder} exists, is not empty and has no {MANIFEST}: "
                                "it is not a chunked dataset; choose an empty or new folder")
            folder.mkdir(parents=True, exist_ok=True)
            store = cls(folder, wanted.fresh())
            _atomic_text(path, store.manifest.to_json())  # before any chunk: chunks are never orphans
        for stale in folder.glob(f".*{_TMP_SUFFIX}"):  # left by a killed job
            stale.unlink(missing_ok=True)
        return store

    def chunk_path(self, index: int, kind: str = "") -> Path:
        return self.folder / f"chunk_{index:06d}{'.' + kind if kind else ''}.npy"

    def _shape(self, index: int) -> tuple[int, ...]:
        start, stop = self.manifest.bounds(index)
        return (stop - start, *self.manifest.shape[1:])

    def _valid(self, path: Path, shape: tuple[int, ...] | None) -> bool:
        """A complete .npy of uint8 with this shape (or 1-D, for a serialized blob)."""
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return False
        return array.dtype == np.uint8 and (array.shape == shape if shape is not None else array.ndim == 1)

    def is_done(self, index: int) -> bool:
        """The chunk's image file (written last) exists with the right header; so does its
        ciphertext file when the job keeps ciphertexts."""
        shape = self._shape(index)
        if not self._valid(self.chunk_path(index), shape):
            return False
        return not self.manifest.ciphertexts or self._valid(self.chunk_path(index, "cipher"), None)

    def missing(self) -> list[int]:
        return [i for i in range(self.manifest.n_chunks) if not self.is_done(i)]

    def write(self, index: int, images: np.ndarray, ciphertexts: bytes | None = None) -> None:
        """Write one chunk: ciphertexts (a serialized PaillierArray) first, images last (the
        images file marks the chunk done)."""
        shape = self._shape(index)
        if images.shape != shape or images.dtype != np.uint8:
            raise DataError(f"chunk {index} of {self.folder}: expected uint8 {shape}, "
                            f"got {images.dtype} {images.shape}")
        if self.manifest.ciphertexts:
            if not isinstance(ciphertexts, (bytes, bytearray)):
                raise DataError(f"chunk {index} of {self.folder}: its ciphertexts are missing")
            _atomic_save(self.chunk_path(index, "cipher"), np.frombuffer(ciphertexts, dtype=np.uint8))
        _atomic_save(self.chunk_path(index), images)

    def _check_complete(self) -> None:
        missing = self.missing()
        if missing:
            raise DataError(f"chunked dataset {self.folder} is incomplete: {len(missing)} of "
                            f"{self.manifest.n_chunks} chunks missing (first: {missing[0]}); rerun the job")

    def read_images(self) -> np.ndarray:
        """All rendered images (N, H, W) uint8, in input order."""
        self._check_complete()
        return np.concatenate([np.load(self.chunk_path(i), allow_pickle=False)
                               for i in range(self.manifest.n_chunks)])

    def read_ciphertexts(self, public: PaillierPublicKey) -> PaillierArray:
        """All ciphertexts (N, H, W) of a job that kept them, checked against `public`'s key
        (WrongKeyError under another key, CiphertextError if a chunk was altered in form)."""
        if not self.manifest.ciphertexts:
            raise DataError(f"chunked dataset {self.folder} was written without ciphertexts (ciphertexts=False)")
        if key_fingerprint(public) != self.manifest.key_fingerprint:
            raise WrongKeyError(f"chunked dataset {self.folder} was made under another key than {public.fingerprint}")
        self._check_complete()
        parts = [PaillierArray.from_bytes(np.load(self.chunk_path(i, "cipher"), allow_pickle=False).tobytes(), public)
                 for i in range(self.manifest.n_chunks)]
        return PaillierArray(np.concatenate([part.values for part in parts]), public, parts[0].regime)


def open_existing(folder: "str | Path") -> ChunkStore:
    """Open a finished or partial dataset folder for reading."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataError(f"{folder} has no {MANIFEST}: not a chunked dataset folder")
    return ChunkStore(Path(folder), Manifest.from_json(path.read_text(), path))
