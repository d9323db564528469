"""Encrypt a dataset once, keep the rendered cipher images on disk, reuse them on every rerun.

An entry is ``<cache_dir>/<key>.npz`` where the key digests everything the rendered images depend
on: the images' content hashes and pixel bytes, the image size, the regime, the renderer and the
Paillier key's public fingerprint.  Change any of them and a new entry is made.

The file holds the rendered uint8 images and public metadata only: never p, q, the deterministic
regimes' secret table E(0..255) or fixed r^n, never a ciphertext.  (Note: the images of a
deterministic regime are still a substitution of the plain images — that is the regime's
weakness, not the cache's.)  The secret state of a deterministic regime is drawn once per entry,
so a whole dataset is encrypted in one call and train/validation/test share one table.

Integrity: an entry is a hit only if its dtype (uint8), shape, key fingerprint, regime, renderer,
image count and content digest match the request *and* its HMAC-SHA256 tag (keyed by a MAC key
derived from the private key, ``crypto.bundle.MacKey.derive``) verifies over the images and the
metadata.  Anything else (a foreign or altered file, an entry of an older version) is rebuilt
with a :class:`CacheWarning` naming the file and the reason.  Entries are written to a temp file,
fsync'd and renamed; temp files of killed builds are removed on the next call.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ppdl_utils.crypto.bundle import MacKey
from ppdl_utils.crypto.keyfiles import pid_alive
from ppdl_utils.crypto.paillier import PaillierPrivateKey
from ppdl_utils.crypto.regimes import Regime
from ppdl_utils.errors import PPDLError
from ppdl_utils.images.encryption import ImageEncryptor, validate_images

#: ``cache/encrypted`` at the repository root (``cache/`` is git-ignored).
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / "cache" / "encrypted"
FORMAT = "ppdl-encrypted-cache-v2"
_NAME_FORMAT = "ppdl-encrypted-cache-v1"  # kept in entry names: older entries are found and rebuilt
_STORED_KEYS = ("images", "meta")
_MAC_PURPOSE = "encrypted-cache"
_TEMP_SUFFIX = ".tmp.npz"
_STALE_SECONDS = 24 * 3600  # a temp file of a live writer older than this is abandoned too
_LEGACY_STALE_SECONDS = 600  # temp files without a pid (older versions): left alone for 10 minutes


class CacheWarning(UserWarning):
    """A cache entry was rebuilt or a stale temp file removed; the message names the file."""


@dataclass
class EncryptedImages:
    """Rendered cipher images and where they came from (``hit``: read from the cache)."""

    images: np.ndarray
    path: Path
    key: str
    hit: bool
    meta: dict


def hashes_digest(hashes: Sequence[str]) -> str:
    """sha256 over the ordered per-image content hashes."""
    h = hashlib.sha256()
    for item in hashes:
        h.update(str(item).encode())
        h.update(b"\n")
    return h.hexdigest()


def cache_key(hashes: Sequence[str], images: np.ndarray, regime: "Regime | str", renderer: str,
              fingerprint: str) -> str:
    """The entry name: a digest of (content hashes, pixel bytes, size, regime, renderer, key fingerprint)."""
    images = np.ascontiguousarray(images)
    parts = {"format": _NAME_FORMAT, "hashes": hashes_digest(hashes),
             "pixels": hashlib.sha256(images.tobytes()).hexdigest(), "shape": list(images.shape),
             "regime": Regime.parse(regime).value, "renderer": renderer, "key": fingerprint}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    return f"{Regime.parse(regime).value}_{renderer}_{images.shape[-1]}px_{len(images)}img_{digest}"


def encrypt_cached(images: np.ndarray, private_key: PaillierPrivateKey, regime: "Regime | str",
                   renderer: str = "mod256", hashes: Sequence[str] | None = None,
                   cache_dir: "str | Path | None" = None, workers: int | None = None,
                   progress: bool = True, source: str = "") -> EncryptedImages:
    """The rendered cipher images of `images` (N, H, W) uint8, from the cache when present.

    Args:
        images: the plain images (one call per dataset: a deterministic regime's secret table is
            drawn once per call, so train/validation/test must be encrypted together).
        private_key: the client's key (only its public fingerprint enters the cache).
        regime, renderer: as in :meth:`ImageEncryptor.encrypt_rendered`.
        hashes: per-image content hashes (``ImageDataset.hashes``); default: sha256 of each image.
        cache_dir: default ``cache/encrypted`` at the repository root.
        workers, progress: passed to the encryptor (randomized regime: all cores, progress bar).
        source: a public description of the data (e.g. the dataset path or "SYNTHETIC") kept in
            the metadata.
    """
    stack = validate_images(images, "images", batch=True)
    regime = Regime.parse(regime)
    if hashes is None:
        hashes = [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in stack]
    if len(hashes) != len(stack):
        raise PPDLError(f"{len(hashes)} hashes given for {len(stack)} images")
    fingerprint = private_key.public.fingerprint
    key = cache_key(hashes, stack, regime, renderer, fingerprint)
    folder = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    remove_stale_temp_files(folder)
    path = folder / f"{key}.npz"
    expected = {"format": FORMAT, "key": key, "regime": regime.value, "renderer": renderer,
                "key_fingerprint": fingerprint, "n_images": int(len(stack)), "image_shape": list(stack.shape[1:]),
                "shape": list(stack.shape), "dtype": "uint8", "hashes_digest": hashes_digest(hashes)}
    mac_key = MacKey.derive(private_key, _MAC_PURPOSE)
    if os.path.lexists(path):
        cached, problem = _read_checked(path, expected, mac_key)
        if cached is not None:
            if progress:
                print(f"encrypted cache hit: {path.name} ({len(stack)} images, {regime.value})")
            return EncryptedImages(cached[0], path, key, True, cached[1])
        warnings.warn(f"encrypted cache entry {path} {problem}: rebuilding it", CacheWarning, stacklevel=2)
    start = time.perf_counter()
    encryptor = ImageEncryptor(private_key, regime)
    rendered = encryptor.encrypt_rendered(stack, renderer=renderer, workers=workers, progress=progress)
    seconds = time.perf_counter() - start
    del encryptor  # the secret table / fixed r goes with it; nothing of it is written
    meta = {**expected, "regime_label": regime.label, "semantically_secure": regime.is_semantically_secure,
            "key_bits": int(private_key.public.bits), "encrypt_seconds": round(seconds, 3),
            "seconds_per_image": round(seconds / max(1, len(stack)), 5), "source": source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    rendered = np.ascontiguousarray(rendered, dtype=np.uint8)
    meta["mac"] = _tag(mac_key, rendered, meta)
    _write(path, rendered, meta)
    return EncryptedImages(rendered, path, key, False, meta)


def _tag(mac_key: MacKey, images: np.ndarray, meta: dict) -> str:
    """HMAC-SHA256 over the canonical metadata (without the tag) and the image bytes."""
    body = json.dumps({k: v for k, v in meta.items() if k != "mac"}, sort_keys=True).encode()
    return mac_key.tag(body + b"\0" + np.ascontiguousarray(images).tobytes()).hex()


def remove_stale_temp_files(folder: "str | Path") -> list[Path]:
    """Delete temp files of cache builds that were killed: their process is gone (pid in the
    name), or they are a day old; pid-less ones of older versions after 10 minutes."""
    removed = []
    for tmp in Path(folder).glob(f"*{_TEMP_SUFFIX}") if Path(folder).is_dir() else []:
        parts = tmp.name.split(".")
        try:
            age = time.time() - tmp.lstat().st_mtime
            if len(parts) == 5 and parts[1].isdigit():
                stale = not pid_alive(int(parts[1])) or age > _STALE_SECONDS
            else:
                stale = age > _LEGACY_STALE_SECONDS
            if stale and not tmp.is_dir():
                tmp.unlink()
                removed.append(tmp)
                warnings.warn(f"removed {tmp}, a temp file left by a killed cache build", CacheWarning, stacklevel=3)
        except FileNotFoundError:  # another process cleaned it meanwhile
            continue
    return removed




def _write(path: Path, images: np.ndarray, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{path.stem}.{os.getpid()}.", suffix=_TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, images=np.ascontiguousarray(images, dtype=np.uint8),
                                meta=np.array(json.dumps(meta, sort_keys=True)))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic: a crash never leaves half an entry under the final name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read(path: Path) -> tuple[np.ndarray, dict] | str:
    """(images, meta), or the reason the file is not a readable entry."""
    if path.is_symlink() or not path.is_file():
        return "is not a regular file"
    if not zipfile.is_zipfile(path):
        return "is not an npz (zip) file: truncated or foreign"
    try:
        with np.load(path, allow_pickle=False) as npz:
            if set(npz.files) != set(_STORED_KEYS):
                return f"holds the arrays {sorted(npz.files)}, expected {list(_STORED_KEYS)}"
            images, meta = npz["images"], json.loads(str(npz["meta"]))
    except Exception as exc:  # np.load raises many types for a corrupt zip/npy: all mean "unreadable"
        return f"is not a readable npz ({type(exc).__name__}: {str(exc)[:80]})"
    if not isinstance(meta, dict):
        return "has metadata that is not a JSON object"
    return images, meta


def _read_checked(path: Path, expected: dict, mac_key: MacKey) -> tuple[tuple[np.ndarray, dict] | None, str]:
    """((images, meta), "") for a valid entry matching `expected`, else (None, reason)."""
    got = _read(path)
    if isinstance(got, str):
        return None, got
    images, meta = got
    if images.dtype != np.uint8:
        return None, f"holds images of dtype {images.dtype}, expected uint8"
    if list(images.shape) != expected["shape"]:
        return None, f"holds images of shape {images.shape}, expected {tuple(expected['shape'])}"
    for name, value in expected.items():
        if meta.get(name) != value:
            if name == "format":
                return None, f"has format {meta.get(name)!r} (an older version, without integrity tag)"
            return None, f"has metadata {name} = {meta.get(name)!r:.60}, expected {value!r:.60}"
    mac = meta.get("mac")
    if not isinstance(mac, str) or not _same(mac, _tag(mac_key, images, meta)):
        return None, "failed its integrity check (HMAC): altered, or written under another key"
    return (images, meta), ""


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def read_entry(path: "str | Path", private_key: PaillierPrivateKey | None = None) -> tuple[np.ndarray, dict]:
    """Open one cache file (for inspection); raises PPDLError naming the path if it is not one.
    With the private key its integrity tag is verified too."""
    path = Path(path)
    got = _read(path)
    if isinstance(got, str):
        raise PPDLError(f"{path} is not a readable encrypted-cache entry ({FORMAT}): it {got}")
    images, meta = got
    if private_key is not None:
        mac = meta.get("mac")
        if not isinstance(mac, str) or not _same(mac, _tag(MacKey.derive(private_key, _MAC_PURPOSE), images, meta)):
            raise PPDLError(f"{path} failed its integrity check (HMAC): altered, or written under another key")
    return got


def list_entries(cache_dir: "str | Path | None" = None) -> list[dict]:
    """The metadata of every entry in the cache folder."""
    folder = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    out = []
    for path in sorted(folder.glob("*.npz")):
        if path.name.endswith(_TEMP_SUFFIX):
            continue
        got = _read(path)
        if not isinstance(got, str):
            out.append({**got[1], "path": str(path), "megabytes": round(path.stat().st_size / 1e6, 2)})
    return out
