"""Encrypt a dataset once, keep the rendered cipher images on disk, reuse them on every rerun.

An entry is ``<cache_dir>/<key>.npz`` where the key digests everything the rendered images depend
on: the images' content hashes and pixel bytes, the image size, the regime, the renderer and the
Paillier key's public fingerprint.  Change any of them and a new entry is made.

The file holds the rendered uint8 images and public metadata only: never p, q, the deterministic
regimes' secret table E(0..255) or fixed r^n, never a ciphertext.  (Note: the images of a
deterministic regime are still a substitution of the plain images — that is the regime's
weakness, not the cache's.)  The secret state of a deterministic regime is drawn once per entry,
so a whole dataset is encrypted in one call and train/validation/test share one table.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ppdl_utils.errors import PPDLError
from ppdl_utils.images.encryption import ImageEncryptor, validate_images
from ppdl_utils.crypto.paillier import PaillierPrivateKey
from ppdl_utils.crypto.regimes import Regime

#: ``cache/encrypted`` at the repository root (``cache/`` is git-ignored).
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / "cache" / "encrypted"
FORMAT = "ppdl-encrypted-cache-v1"
_STORED_KEYS = ("images", "meta")


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
    parts = {"format": FORMAT, "hashes": hashes_digest(hashes),
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
    path = folder / f"{key}.npz"
    if path.is_file():
        cached = _read(path)
        if cached is not None and cached[0].shape == stack.shape:
            if progress:
                print(f"encrypted cache hit: {path.name} ({len(stack)} images, {regime.value})")
            return EncryptedImages(cached[0], path, key, True, cached[1])
    start = time.perf_counter()
    encryptor = ImageEncryptor(private_key, regime)
    rendered = encryptor.encrypt_rendered(stack, renderer=renderer, workers=workers, progress=progress)
    seconds = time.perf_counter() - start
    del encryptor  # the secret table / fixed r goes with it; nothing of it is written
    meta = {"format": FORMAT, "key": key, "regime": regime.value, "regime_label": regime.label,
            "semantically_secure": regime.is_semantically_secure, "renderer": renderer,
            "n_images": int(len(stack)), "image_shape": list(stack.shape[1:]),
            "hashes_digest": hashes_digest(hashes), "key_fingerprint": fingerprint,
            "key_bits": int(private_key.public.bits), "encrypt_seconds": round(seconds, 3),
            "seconds_per_image": round(seconds / max(1, len(stack)), 5), "source": source,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    _write(path, rendered, meta)
    return EncryptedImages(rendered, path, key, False, meta)


def _write(path: Path, images: np.ndarray, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, images=np.ascontiguousarray(images, dtype=np.uint8),
                            meta=np.array(json.dumps(meta, sort_keys=True)))
        os.replace(tmp, path)  # atomic: a crash never leaves half an entry under the final name
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read(path: Path) -> tuple[np.ndarray, dict] | None:
    """(images, meta), or None when the entry is unreadable (it is then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if set(npz.files) != set(_STORED_KEYS):
                return None
            return npz["images"], json.loads(str(npz["meta"]))
    except Exception:
        return None


def read_entry(path: "str | Path") -> tuple[np.ndarray, dict]:
    """Open one cache file (for inspection); raises PPDLError naming the path if it is not one."""
    got = _read(Path(path))
    if got is None:
        raise PPDLError(f"{path} is not a readable encrypted-cache entry ({FORMAT})")
    return got


def list_entries(cache_dir: "str | Path | None" = None) -> list[dict]:
    """The metadata of every entry in the cache folder."""
    folder = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    out = []
    for path in sorted(folder.glob("*.npz")):
        got = _read(path)
        if got is not None:
            out.append({**got[1], "path": str(path), "megabytes": round(path.stat().st_size / 1e6, 2)})
    return out
