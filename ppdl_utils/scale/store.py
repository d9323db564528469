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
* Authenticated like the bundles (``crypto.bundle``): the manifest carries an HMAC-SHA256 of its
  fields, and each chunk has a ``chunk_000000.mac`` file (written last, so it marks the chunk
  done) with the HMAC of each of its files, bound to the manifest's tag and the chunk index.  The
  MAC key is derived from the private key (``MacKey.derive(private, "chunk-store")``) or is a
  shared :class:`~ppdl_utils.crypto.bundle.MacKey`.  An edited manifest (another key's
  fingerprint, a smaller shape) is an :class:`IntegrityError`; a chunk that fails its MAC is
  redone on resume and is an ``IntegrityError`` on read.  The MAC does not hide anything and does
  not stop someone who deletes the whole folder or replaces it by an older one of the same job.

Nothing secret is written: no p, q, no deterministic regime's table or fixed r^n.  The manifest's
``salt`` is public; the deterministic tables are derived from it *and the private key*.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ppdl_utils.crypto.bundle import IntegrityError, MacKey
from ppdl_utils.crypto.cipher_array import PaillierArray
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey
from ppdl_utils.errors import CiphertextError, DataError, PPDLError, WrongKeyError, as_path

FORMAT = "ppdl-chunked-v2"  # v2: manifest and chunks carry HMACs
MANIFEST = "manifest.json"
MAC_PURPOSE = "chunk-store"
_TMP_SUFFIX = ".tmp"
_TAG = 32
_MAX_MANIFEST_BYTES = 1 << 20


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

    def signed_bytes(self) -> bytes:
        """What the manifest's MAC covers: every field, canonically serialized."""
        return b"ppdl-chunk-manifest|" + self.to_json().encode()

    @classmethod
    def from_json(cls, text: str, path: Path) -> "tuple[Manifest, str]":
        """(manifest, its hex MAC) from the file's text; DataError naming `path` and the field."""
        try:
            body = json.loads(text)
            if not isinstance(body, dict):
                raise ValueError(f"a JSON {type(body).__name__}, expected an object")
            mac = body.pop("mac", "")
            known = {f.name for f in fields(cls)}
            if body.get("format") != FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {FORMAT!r} (an older or foreign folder: "
                                 "delete it or use another one)")
            if not known >= set(body):
                raise ValueError(f"unknown field(s) {sorted(set(body) - known)}")
            shape = body.get("shape")
            if not (isinstance(shape, list) and len(shape) == 3
                    and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
                raise ValueError(f"field 'shape' must be three positive integers, got {shape!r:.60}")
            body["shape"] = tuple(shape)
            size = body.get("chunk_size")
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ValueError(f"field 'chunk_size' must be a positive integer, got {size!r:.40}")
            for name in ("key_fingerprint", "regime", "renderer", "images_digest", "salt", "created"):
                if not isinstance(body.get(name, ""), str):
                    raise ValueError(f"field {name!r} must be a string")
            if not isinstance(mac, str):
                raise ValueError("field 'mac' must be a hex string")
            return cls(**body), mac
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


def mac_key_of(key: "MacKey | PaillierPrivateKey") -> MacKey:
    """The store's MAC key: a MacKey as is, or derived from the private key (purpose "chunk-store")."""
    if isinstance(key, MacKey):
        return key
    if isinstance(key, PaillierPrivateKey):
        return MacKey.derive(key, MAC_PURPOSE)
    raise DataError(f"a chunked dataset is authenticated with the private key or a MacKey, got {type(key).__name__}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _atomic_bytes(path: Path, data: bytes) -> None:
    """Write through a temp file and os.replace; a full or read-only disk is a DataError naming `path`."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on one filesystem
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc} (disk full, read-only or no "
                        "permission?)") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def _read_bytes(path: Path, limit: int | None = None) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if limit is not None and len(data) > limit:
        raise DataError(f"{path} is larger than {limit} bytes: not a manifest")
    return data


def _read_manifest(path: Path, mac: MacKey, wanted: "Manifest | None" = None) -> Manifest:
    """Parse and authenticate a folder's manifest.  With `wanted`, another key's folder is a
    WrongKeyError before the MAC is checked (its MAC is under that other key)."""
    stored, tag = Manifest.from_json(_read_bytes(path, _MAX_MANIFEST_BYTES).decode("utf-8", "replace"), path)
    if wanted is not None and stored.key_fingerprint != wanted.key_fingerprint:
        _check_same(stored, wanted, path.parent)
    try:
        raw = bytes.fromhex(tag)
    except ValueError:
        raw = b""
    mac.verify(stored.signed_bytes(), raw, f"manifest {path}")
    return stored


class ChunkStore:
    """The chunk files of one dataset folder (see the module docstring)."""

    def __init__(self, folder: Path, manifest: Manifest, mac: MacKey) -> None:
        self.folder, self.manifest, self._mac = folder, manifest, mac
        self._manifest_tag = mac.tag(manifest.signed_bytes())

    @classmethod
    def open(cls, folder: "str | Path", wanted: Manifest, key: "MacKey | PaillierPrivateKey") -> "ChunkStore":
        """Create the folder with `wanted`'s manifest (new salt), or reopen it if its manifest
        matches and authenticates under `key`; refuse a folder of another key or other parameters,
        an edited manifest (IntegrityError), or foreign files."""
        folder, mac = as_path(folder, "output folder"), mac_key_of(key)
        if not isinstance(wanted, Manifest):
            raise DataError(f"wanted must be a Manifest, got {type(wanted).__name__}")
        path = folder / MANIFEST
        if path.is_file():
            stored = _read_manifest(path, mac, wanted)
            _check_same(stored, wanted, folder)
            store = cls(folder, stored, mac)
        else:
            if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
                raise DataError(f"output folder {folder} exists, is not empty and has no {MANIFEST}: "
                                "it is not a chunked dataset; choose an empty or new folder")
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DataError(f"output folder {folder} cannot be created: {exc.strerror or exc}") from None
            store = cls(folder, wanted.fresh(), mac)
            body = json.loads(store.manifest.to_json()) | {"mac": store._manifest_tag.hex()}
            # before any chunk: chunks are never orphans
            _atomic_bytes(path, json.dumps(body, indent=1, sort_keys=True).encode())
        for stale in folder.glob(f".*{_TMP_SUFFIX}"):  # left by a killed job
            stale.unlink(missing_ok=True)
        return store

    def chunk_path(self, index: int, kind: str = "") -> Path:
        if kind == "mac":
            return self.folder / f"chunk_{index:06d}.mac"
        return self.folder / f"chunk_{index:06d}{'.' + kind if kind else ''}.npy"

    def _shape(self, index: int) -> tuple[int, ...]:
        start, stop = self.manifest.bounds(index)
        return (stop - start, *self.manifest.shape[1:])

    def _kinds(self) -> tuple[str, ...]:
        return ("cipher", "") if self.manifest.ciphertexts else ("",)

    def _tag(self, index: int, kind: str, data: bytes) -> bytes:
        """HMAC of one chunk file, bound to this folder's manifest and the chunk's index and kind."""
        return self._mac.tag(b"ppdl-chunk|" + self._manifest_tag + f"|{index}|{kind or 'images'}|".encode() + data)

    def _authentic(self, index: int) -> "dict[str, bytes] | None":
        """The chunk's files' bytes when its MAC file exists and every file verifies, else None."""
        try:
            tags = self.chunk_path(index, "mac").read_bytes()
            files = {kind: self.chunk_path(index, kind).read_bytes() for kind in self._kinds()}
        except OSError:
            return None
        if len(tags) != _TAG * len(files):
            return None
        expected = b"".join(self._tag(index, kind, data) for kind, data in files.items())
        return files if hmac.compare_digest(expected, tags) else None

    def _load(self, index: int, kind: str) -> np.ndarray:
        """One verified chunk array; IntegrityError naming the file when its MAC fails."""
        files = self._authentic(index)
        if files is None:
            mac_name = self.chunk_path(index, "mac").name
            raise IntegrityError(f"chunk file {self.chunk_path(index, kind)} (or its {mac_name})"
                                 " failed authentication (HMAC-SHA256): altered, truncated or from another folder; "
                                 "rerun the job to redo it")
        array = np.load(io.BytesIO(files[kind]), allow_pickle=False)
        shape = self._shape(index) if kind == "" else None
        if array.dtype != np.uint8 or (array.shape != shape if shape is not None else array.ndim != 1):
            raise CiphertextError(f"chunk file {self.chunk_path(index, kind)} holds {array.dtype} {array.shape}")
        return array

    def is_done(self, index: int) -> bool:
        """The chunk's MAC file (written last) exists and its files verify under this folder's key:
        an altered or half-written chunk is redone."""
        return self._authentic(index) is not None

    def missing(self) -> list[int]:
        return [i for i in range(self.manifest.n_chunks) if not self.is_done(i)]

    def write(self, index: int, images: np.ndarray, ciphertexts: bytes | None = None) -> None:
        """Write one chunk: ciphertexts (a serialized PaillierArray) first, images last (the
        images file marks the chunk done)."""
        shape = self._shape(index)
        if images.shape != shape or images.dtype != np.uint8:
            raise DataError(f"chunk {index} of {self.folder}: expected uint8 {shape}, "
                            f"got {images.dtype} {images.shape}")
        files = {"": _npy_bytes(images)}
        if self.manifest.ciphertexts:
            if not isinstance(ciphertexts, (bytes, bytearray)):
                raise DataError(f"chunk {index} of {self.folder}: its ciphertexts are missing")
            files["cipher"] = _npy_bytes(np.frombuffer(bytes(ciphertexts), dtype=np.uint8))
        self.chunk_path(index, "mac").unlink(missing_ok=True)  # the chunk is not done until its MAC is back
        for kind in self._kinds():
            _atomic_bytes(self.chunk_path(index, kind), files[kind])
        _atomic_bytes(self.chunk_path(index, "mac"), b"".join(self._tag(index, kind, files[kind])
                                                             for kind in self._kinds()))

    def _check_complete(self) -> None:
        missing = self.missing()
        for index in missing:  # a chunk whose MAC file is there but fails: altered, not merely missing
            if self.chunk_path(index, "mac").exists():
                self._load(index, "")
        if missing:
            raise DataError(f"chunked dataset {self.folder} is incomplete: {len(missing)} of "
                            f"{self.manifest.n_chunks} chunks missing (first: {missing[0]}); rerun the job")

    def read_images(self) -> np.ndarray:
        """All rendered images (N, H, W) uint8, in input order."""
        self._check_complete()
        return np.concatenate([self._load(i, "") for i in range(self.manifest.n_chunks)])

    def read_ciphertexts(self, public: PaillierPublicKey) -> PaillierArray:
        """All ciphertexts (N, H, W) of a job that kept them, checked against `public`'s key
        (WrongKeyError under another key, CiphertextError if a chunk was altered in form)."""
        if not self.manifest.ciphertexts:
            raise DataError(f"chunked dataset {self.folder} was written without ciphertexts (ciphertexts=False)")
        if key_fingerprint(public) != self.manifest.key_fingerprint:
            raise WrongKeyError(f"chunked dataset {self.folder} was made under another key than {public.fingerprint}")
        self._check_complete()
        parts = [PaillierArray.from_bytes(self._load(i, "cipher").tobytes(), public)
                 for i in range(self.manifest.n_chunks)]
        return PaillierArray(np.concatenate([part.values for part in parts]), public, parts[0].regime)


def open_existing(folder: "str | Path", key: "MacKey | PaillierPrivateKey") -> ChunkStore:
    """Open a finished or partial dataset folder for reading; its manifest must authenticate under
    `key` (the private key it was made with, or the shared MacKey) and every chunk is verified on read."""
    path = as_path(folder, "dataset folder") / MANIFEST
    if not path.is_file():
        raise DataError(f"{folder} has no {MANIFEST}: not a chunked dataset folder")
    mac = mac_key_of(key)
    return ChunkStore(Path(folder), _read_manifest(path, mac), mac)
