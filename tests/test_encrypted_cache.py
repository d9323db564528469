"""The encrypted-dataset cache: a rerun reads the file, a key change makes a new entry, and the
file holds no private material."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from ppdl_utils.crypto.paillier import generate_keypair
from ppdl_utils.errors import PPDLError
from ppdl_utils.images import encrypted_cache
from ppdl_utils.images.encryption import ImageEncryptor


@pytest.fixture(scope="module")
def small_key():
    return generate_keypair(512, allow_insecure=True)


@pytest.fixture()
def counting(monkeypatch):
    """Replace the encryptor the cache uses by one that records each instance it makes."""
    made: list[ImageEncryptor] = []

    class Counting(ImageEncryptor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(encrypted_cache, "ImageEncryptor", Counting)
    return made


def _images(seed=0, n=6, size=8):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size), dtype=np.uint8)


def test_second_call_hits_the_cache(tmp_path, small_key, counting):
    images = _images()
    first = encrypted_cache.encrypt_cached(images, small_key, "table", cache_dir=tmp_path, progress=False)
    second = encrypted_cache.encrypt_cached(images, small_key, "table", cache_dir=tmp_path, progress=False)
    assert len(counting) == 1
    assert not first.hit and second.hit and first.path == second.path
    np.testing.assert_array_equal(first.images, second.images)
    assert first.images.dtype == np.uint8 and first.images.shape == images.shape
    # it really is the encryptor's table-rendered output
    np.testing.assert_array_equal(first.images, counting[0].encrypt_rendered(images, progress=False))
    assert [e["regime"] for e in encrypted_cache.list_entries(tmp_path)] == ["table"]


def test_changes_make_new_entries(tmp_path, small_key, counting):
    images = _images()
    base = encrypted_cache.encrypt_cached(images, small_key, "fixed_r", cache_dir=tmp_path, progress=False)
    other_key = generate_keypair(512, allow_insecure=True)
    variants = [
        encrypted_cache.encrypt_cached(images, other_key, "fixed_r", cache_dir=tmp_path, progress=False),
        encrypted_cache.encrypt_cached(images, small_key, "r_one", cache_dir=tmp_path, progress=False),
        encrypted_cache.encrypt_cached(images, small_key, "fixed_r", renderer="msb", cache_dir=tmp_path,
                                       progress=False),
        encrypted_cache.encrypt_cached(images[:5], small_key, "fixed_r", cache_dir=tmp_path, progress=False),
        encrypted_cache.encrypt_cached(images, small_key, "fixed_r", hashes=[f"h{i}" for i in range(6)],
                                       cache_dir=tmp_path, progress=False),
        encrypted_cache.encrypt_cached(_images(n=6, size=9), small_key, "fixed_r", cache_dir=tmp_path,
                                       progress=False),
    ]
    assert len(counting) == 7
    assert len({base.key, *(v.key for v in variants)}) == 7
    assert len(list(tmp_path.glob("*.npz"))) == 7
    assert base.meta["key_fingerprint"] == small_key.public.fingerprint


def test_randomized_entry_and_no_private_material(tmp_path, small_key, counting):
    images = _images(n=2, size=4)
    for regime in ("randomized", "table", "fixed_r", "r_one"):
        entry = encrypted_cache.encrypt_cached(images, small_key, regime, cache_dir=tmp_path, workers=1,
                                               progress=False, source="SYNTHETIC")
        stored, meta = encrypted_cache.read_entry(entry.path)
        np.testing.assert_array_equal(stored, entry.images)
        assert meta["regime"] == regime and meta["source"] == "SYNTHETIC"
        with np.load(entry.path, allow_pickle=False) as npz:
            assert sorted(npz.files) == ["images", "meta"]
            assert npz["images"].dtype == np.uint8
        raw = entry.path.read_bytes()
        import zipfile
        with zipfile.ZipFile(entry.path) as zf:  # look inside the compressed members too
            content = b"".join(zf.read(name) for name in zf.namelist())
        secrets = [small_key.p, small_key.q, small_key.lam, small_key.mu]
        encryptor = counting[-1]
        if regime in ("table", "fixed_r"):  # their tables are secret (r_one's is public: 1 + m*n)
            secrets += [int(v) for v in encryptor.table]
        for secret in secrets:
            for blob in (raw, content):
                assert str(secret).encode() not in blob
                assert format(secret, "x").encode() not in blob
                width = (int(secret).bit_length() + 7) // 8
                assert int(secret).to_bytes(width, "big") not in blob
                assert int(secret).to_bytes(width, "little") not in blob
        assert "p" not in meta and "q" not in meta and "table" not in meta


def test_unreadable_entry_is_rebuilt(tmp_path, small_key, counting):
    images = _images()
    first = encrypted_cache.encrypt_cached(images, small_key, "table", cache_dir=tmp_path, progress=False)
    first.path.write_bytes(b"not a zip file")
    with pytest.warns(encrypted_cache.CacheWarning, match=f"{first.path.name} is not an npz"):
        again = encrypted_cache.encrypt_cached(images, small_key, "table", cache_dir=tmp_path, progress=False)
    assert not again.hit and len(counting) == 2
    with pytest.raises(Exception, match="not a readable"):
        (tmp_path / "x.npz").write_bytes(b"junk")
        encrypted_cache.read_entry(tmp_path / "x.npz")


def _plant(path, images, meta):
    np.savez_compressed(path, images=images, meta=np.array(json.dumps(meta)))


def test_a_foreign_file_under_an_entry_name_is_not_a_hit(tmp_path, small_key, counting):
    images = _images()
    first = encrypted_cache.encrypt_cached(images, small_key, "table", cache_dir=tmp_path, progress=False)
    good_images, good_meta = encrypted_cache.read_entry(first.path, small_key)
    forgeries = {
        "float images, wrong metadata": (good_images.astype(np.float64), {"format": "x"}, "dtype float64"),
        "right images, wrong regime": (good_images, {**good_meta, "regime": "randomized"}, "regime"),
        "right images, another key": (good_images, {**good_meta, "key_fingerprint": "0" * 16}, "key_fingerprint"),
        "right images, other renderer": (good_images, {**good_meta, "renderer": "msb"}, "renderer"),
        "altered pixel, metadata copied": (good_images ^ np.eye(8, dtype=np.uint8), good_meta, "HMAC"),
        "older version without tag": (good_images, {k: v for k, v in good_meta.items() if k != "mac"}
                                      | {"format": "ppdl-encrypted-cache-v1"}, "older version"),
    }
    for label, (stored, meta, reason) in forgeries.items():
        _plant(first.path, stored, meta)
        with pytest.warns(encrypted_cache.CacheWarning, match=f"{first.path.name}.*{reason}"):
            again = encrypted_cache.encrypt_cached(images, small_key, "table", cache_dir=tmp_path, progress=False)
        assert not again.hit, label
        assert again.images.dtype == np.uint8 and encrypted_cache.read_entry(again.path, small_key)
    with pytest.raises(PPDLError, match="integrity"):
        _plant(first.path, good_images ^ 1, good_meta)
        encrypted_cache.read_entry(first.path, small_key)


def test_temp_files_of_killed_builds_are_removed(tmp_path, small_key, counting):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = tmp_path / f"table_mod256_8px_6img_abc.{child.pid}.x1y2.tmp.npz"
    alive = tmp_path / f"table_mod256_8px_6img_abc.{os.getpid()}.x1y2.tmp.npz"
    legacy_old, legacy_new = tmp_path / "entryabcdefgh.tmp.npz", tmp_path / "entryijklmnop.tmp.npz"
    for path in (dead, alive, legacy_old, legacy_new):
        path.write_bytes(b"\0" * 1000)
    os.utime(legacy_old, (time.time() - 3600, time.time() - 3600))
    with pytest.warns(encrypted_cache.CacheWarning, match="killed cache build"):
        encrypted_cache.encrypt_cached(_images(), small_key, "table", cache_dir=tmp_path, progress=False)
    assert not dead.exists() and not legacy_old.exists() and alive.exists() and legacy_new.exists()
    assert [e["regime"] for e in encrypted_cache.list_entries(tmp_path)] == ["table"]  # temps are not entries
