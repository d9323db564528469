"""Paillier key files as JSON: written crash-safely, validated on load; nothing here prints a secret.

Writing: the file is written to a temporary file in the same folder, fsync'd, then renamed over
the target (``os.replace``; ``os.link`` when it must not exist), and the folder is fsync'd.  A crash
leaves either the old file or the new one, never a truncated key, and ``overwrite=True`` never
empties the old key first.  Temporary files of a killed writer are removed on the next save/load.

Loading: a path that is a directory or a symbolic link is refused; JSON and structural errors are
:class:`KeyFileError` naming the file and the field; p and q must be distinct primes with
p * q = n, and the public modulus must look like an RSA-type modulus (odd, 1024..16384 bits, not
prime, not a perfect power, no prime factor below 2^16).  The private file must be 0600.

Key size: a key below 2048 bits (``paillier.MIN_SECURE_KEY_BITS``) is saved only under a file name
that says so (``paillier_1024.INSECURE.private.json``) and loaded only with ``allow_insecure=True``
(the notebooks' quick mode); a key below 1024 bits (a toy key) is never saved nor loaded.

Saving or loading a key also activates the secret registry of its folder (``secret_scan``), so the
secrets of the run are recorded next to the keys for the output scan.
"""
from __future__ import annotations

import fcntl
import json
import os
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gmpy2

from ppdl_utils import secret_scan
from ppdl_utils.crypto.paillier import (
    MIN_SECURE_KEY_BITS,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
    is_integer,
    register_key_secrets,
)
from ppdl_utils.errors import PPDLError, as_path

FORMAT = "ppdl-paillier-v1"
MIN_KEY_BITS = 1024  # below: toy keys, which only the teaching widget builds (never saved)
INSECURE_TAG = ".INSECURE."  # in the file name of every saved key below MIN_SECURE_KEY_BITS
MAX_KEY_BITS = 16384
MAX_FILE_BYTES = 1 << 20
_MAX_DIGITS = 6000  # a 16384-bit modulus has 4933 decimal digits
_SMALL_FACTOR_BOUND = 1 << 16
_STALE_SECONDS = 24 * 3600


class KeyFileError(PPDLError, ValueError):
    """A key file cannot be used; the message names the file and, where it applies, the field."""


# --------------------------------------------------------------------------- writing
def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a temp file's writer may still be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(folder: "str | Path", name: str) -> list[Path]:
    """Remove ``.<name>.<pid>.*.tmp`` files left by a writer that died (pid gone, or a day old)."""
    removed = []
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        try:
            pid = int(tmp.name[len(name) + 2:].split(".")[0])
        except ValueError:
            pid = -1
        try:
            stale = pid <= 0 or not pid_alive(pid) or time.time() - tmp.lstat().st_mtime > _STALE_SECONDS
            if stale and not tmp.is_dir():
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:
            continue
    return removed


def _refuse_odd_target(path: Path, what: str) -> None:
    if path.is_symlink():
        raise KeyFileError(f"{what} {path} is a symbolic link; refusing it (a key path must be a regular file)")
    if path.is_dir():
        raise KeyFileError(f"{what} {path} is a directory, not a key file")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: "str | Path", data: bytes, mode: int, overwrite: bool) -> Path:
    """Write `data` to `path` through a temp file in the same folder: fsync, then rename.

    With ``overwrite=False`` an existing file is a KeyFileError (checked atomically by ``os.link``).
    """
    path = Path(path)
    _refuse_odd_target(path, "key file")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():
        raise KeyFileError(f"key file {path} exists; pass overwrite=True to replace it")
    remove_stale_temp_files(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the name appeared meanwhile: never clobbers
            except FileExistsError:
                raise KeyFileError(f"key file {path} exists; pass overwrite=True to replace it") from None
        _fsync_dir(path.parent)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def _decimal(value: int) -> str:
    return gmpy2.mpz(value).digits(10)


def key_file_name(bits: int, kind: str) -> str:
    """``paillier_2048.private.json``; below 2048 bits ``paillier_1024.INSECURE.private.json``."""
    tag = INSECURE_TAG if bits < MIN_SECURE_KEY_BITS else "."
    return f"paillier_{bits}{tag}{kind}.json"


def _check_size_to_save(public: PaillierPublicKey, path: Path) -> None:
    """A toy key is never saved; a key below 2048 bits only under a name labelled INSECURE."""
    _refuse_odd_target(path, "key file")
    if not isinstance(public, PaillierPublicKey):
        raise KeyFileError(f"key file {path}: expected a Paillier key, got {type(public).__name__}")
    if public.bits < MIN_KEY_BITS:
        raise KeyFileError(f"key file {path}: a {public.bits}-bit key is a toy key and is never saved "
                           f"(at least {MIN_KEY_BITS} bits, {MIN_SECURE_KEY_BITS} outside quick/teaching mode)")
    if public.bits < MIN_SECURE_KEY_BITS and INSECURE_TAG not in path.name:
        raise KeyFileError(f"key file {path}: a {public.bits}-bit key (below {MIN_SECURE_KEY_BITS}) is saved only "
                           f"under a name containing {INSECURE_TAG!r}, e.g. {key_file_name(public.bits, 'private')}")


def save_public_key(public: PaillierPublicKey, path: "str | Path") -> Path:
    """Write (n, g) world-readable; replaces an existing public file atomically."""
    _check_size_to_save(public, as_path(path, "public key path", KeyFileError))
    body = {"format": FORMAT, "kind": "public", "n": _decimal(public.n), "g": _decimal(public.g),
            "bits": public.bits, "fingerprint": public.fingerprint}
    return atomic_write(path, json.dumps(body, indent=1).encode(), 0o644, overwrite=True)


def save_private_key(private: PaillierPrivateKey, path: "str | Path", overwrite: bool = False) -> Path:
    """Write p, q (and the derived lambda, mu for readers) to a file only the owner can read."""
    if not isinstance(private, PaillierPrivateKey):
        raise KeyFileError(f"key file {path}: save_private_key needs a PaillierPrivateKey, "
                           f"got {type(private).__name__}")
    _check_size_to_save(private.public, as_path(path, "private key path", KeyFileError))
    body = {"format": FORMAT, "kind": "private", "n": _decimal(private.n), "p": _decimal(private.p),
            "q": _decimal(private.q), "lambda": _decimal(private.lam), "mu": _decimal(private.mu),
            "fingerprint": private.public.fingerprint}
    path = atomic_write(path, json.dumps(body, indent=1).encode(), 0o600, overwrite)
    secret_scan.activate_keys_dir(path.parent)
    register_key_secrets(private)
    return path


# --------------------------------------------------------------------------- reading
def _open_regular(path: Path, kind: str) -> bytes:
    """The bytes of a regular, not-too-large file; private files must not be readable by others."""
    _refuse_odd_target(path, f"{kind} key file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"key file {path} cannot be opened: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        if kind == "private" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"private key file {path} is readable by others (mode "
                               f"{oct(info.st_mode & 0o777)}); run: chmod 600 {path}")
        if info.st_size > MAX_FILE_BYTES:
            raise KeyFileError(f"key file {path} has {info.st_size} bytes: too large to be a key file")
        return handle.read(MAX_FILE_BYTES + 1)


def _read(path: "str | Path", kind: str) -> dict[str, Any]:
    path = Path(path)
    raw = _open_regular(path, kind)
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"key file {path} is not valid JSON: {exc} (cut short by a crash? "
                           "restore it from a backup or delete it to make a new key)") from None
    if not isinstance(body, dict):
        raise KeyFileError(f"key file {path} is a JSON {type(body).__name__}, expected an object")
    if body.get("format") != FORMAT or body.get("kind") != kind:
        raise KeyFileError(f"{path} is not a {kind} key file of format {FORMAT}")
    return body


def _int_field(body: dict[str, Any], name: str, path: Path) -> int:
    """A decimal-string (or JSON integer) field as an int; KeyFileError naming file and field."""
    if name not in body:
        raise KeyFileError(f"key file {path} has no field {name!r}")
    value = body[name]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) > _MAX_DIGITS:
        raise KeyFileError(f"key file {path}: field {name!r} has {len(value)} digits, more than any key of "
                           f"at most {MAX_KEY_BITS} bits")
    if not (isinstance(value, str) and value and value.isascii() and value.isdigit()):
        raise KeyFileError(f"key file {path}: field {name!r} must be a decimal integer string, got {value!r:.40}")
    return int(gmpy2.mpz(value, 10))


_PRIMORIAL: list[gmpy2.mpz] = []


def check_modulus(n: int, path: "str | Path", name: str = "n") -> None:
    """n must be odd, 512..16384 bits, not prime, not a perfect power, without small factors."""
    def bad(reason: str) -> KeyFileError:
        return KeyFileError(f"key file {path}: field {name!r} {reason}")

    if n <= 0:
        raise bad("must be a positive integer")
    if not MIN_KEY_BITS <= n.bit_length() <= MAX_KEY_BITS:
        raise bad(f"has {n.bit_length()} bits; a key file needs {MIN_KEY_BITS}..{MAX_KEY_BITS}")
    if n % 2 == 0:
        raise bad("is even; a Paillier modulus is a product of two odd primes")
    if not _PRIMORIAL:
        _PRIMORIAL.append(gmpy2.primorial(_SMALL_FACTOR_BOUND))
    if gmpy2.gcd(n, _PRIMORIAL[0]) != 1:
        raise bad(f"has a prime factor below {_SMALL_FACTOR_BOUND}: not a product of two large primes")
    if gmpy2.is_power(n):
        raise bad("is a perfect power: not a product of two distinct primes")
    if gmpy2.is_prime(n, 25):
        raise bad("is prime: not a product of two primes")


def _check_size_to_use(n: int, path: Path, allow_insecure: bool) -> bool:
    """Whether the key is below 2048 bits (then allowed only with allow_insecure and a labelled name)."""
    if n.bit_length() >= MIN_SECURE_KEY_BITS:
        return False
    if allow_insecure is not True:
        raise KeyFileError(f"key file {path}: field 'n' has {n.bit_length()} bits, below {MIN_SECURE_KEY_BITS}; "
                           "such a key is loaded only in the labelled quick/teaching mode (allow_insecure=True)")
    if INSECURE_TAG not in path.name:
        raise KeyFileError(f"key file {path}: a {n.bit_length()}-bit key must be in a file named with "
                           f"{INSECURE_TAG!r} (e.g. {key_file_name(n.bit_length(), path.name.split('.')[-2])})")
    return True


def load_public_key(path: "str | Path", allow_insecure: bool = False) -> PaillierPublicKey:
    """Load and check a public key file (n validated; g and fingerprint, if present, consistent).

    A key below 2048 bits needs ``allow_insecure=True`` and a file name containing ``.INSECURE.``."""
    path = as_path(path, "public key path", KeyFileError)
    body = _read(path, "public")
    n = _int_field(body, "n", path)
    check_modulus(n, path)
    public = PaillierPublicKey(n, insecure_ok=_check_size_to_use(n, path, allow_insecure))
    if "g" in body and _int_field(body, "g", path) != public.g:
        raise KeyFileError(f"key file {path}: field 'g' is not n + 1")
    if "fingerprint" in body and body["fingerprint"] != public.fingerprint:
        raise KeyFileError(f"key file {path}: field 'fingerprint' does not match n (file edited or corrupt)")
    return public


def _check_primes(p: int, q: int, n: int, path: Path) -> None:
    for name, value in (("p", p), ("q", q)):
        if value < 3 or not gmpy2.is_prime(value, 25):
            raise KeyFileError(f"key file {path}: field {name!r} is not an odd prime")
    if p == q:
        raise KeyFileError(f"key file {path}: fields 'p' and 'q' are equal")
    if p * q != n:
        raise KeyFileError(f"private key file {path} is corrupt: p*q != n")
    if gmpy2.gcd(n, (p - 1) * (q - 1)) != 1:
        raise KeyFileError(f"key file {path}: gcd(n, (p-1)(q-1)) != 1, not a Paillier key")


def load_private_key(path: "str | Path", allow_insecure: bool = False) -> PaillierPrivateKey:
    """Load and check a private key; refuse files that others can read, directories and links.

    A key below 2048 bits needs ``allow_insecure=True`` and a file name containing ``.INSECURE.``."""
    path = as_path(path, "private key path", KeyFileError)
    body = _read(path, "private")
    n, p, q = (_int_field(body, name, path) for name in ("n", "p", "q"))
    check_modulus(n, path)
    insecure = _check_size_to_use(n, path, allow_insecure)
    _check_primes(p, q, n, path)
    key = PaillierPrivateKey(PaillierPublicKey(n, insecure_ok=insecure), p, q)
    for name, value in (("lambda", key.lam), ("mu", key.mu)):
        if name in body and _int_field(body, name, path) != value:
            raise KeyFileError(f"key file {path}: field {name!r} does not match p and q (file edited or corrupt)")
    if "fingerprint" in body and body["fingerprint"] != key.public.fingerprint:
        raise KeyFileError(f"key file {path}: field 'fingerprint' does not match n (file edited or corrupt)")
    secret_scan.activate_keys_dir(path.parent)
    register_key_secrets(key)
    return key


@contextmanager
def _folder_lock(folder: Path, name: str):
    """An exclusive advisory lock (flock) on ``folder/.<name>.lock``, held by one process at a time.

    The lock file is never removed: removing it would let a late process lock a new inode while
    an early one still holds the old.  The kernel frees the lock when its holder dies.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"keys_dir {folder} cannot be created: {exc.strerror}") from None
    lock_path = folder / f".{name}.lock"
    _refuse_odd_target(lock_path, "key lock file")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise KeyFileError(f"key lock file {lock_path} cannot be opened: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def load_or_create_private_key(keys_dir: "str | Path", bits: int, allow_insecure: bool = False) -> PaillierPrivateKey:
    """The project's key of this size: loaded from keys_dir if present, else generated and saved,
    so that encrypted datasets cached under its fingerprint stay valid between runs.

    `bits` must be at least 2048, or at least 1024 with ``allow_insecure=True`` (the notebooks'
    quick mode): such a key lives in ``paillier_<bits>.INSECURE.private.json``, never under the
    normal name.

    Safe under concurrent processes (``make -j``): the check and the creation happen under one
    exclusive lock of the folder, so exactly one process generates the key and every other one
    waits for it and loads the same key; the public file is written before the lock is released.
    """
    keys_dir = as_path(keys_dir, "keys_dir", KeyFileError)
    if keys_dir.exists() and not keys_dir.is_dir():
        raise KeyFileError(f"keys_dir {keys_dir} is a file, not a folder for key files")
    if not is_integer(bits) or bits % 2 or not MIN_KEY_BITS <= bits <= MAX_KEY_BITS:
        raise KeyFileError(f"key_bits={bits!r}: a saved key has an even number of bits in "
                           f"{MIN_KEY_BITS}..{MAX_KEY_BITS} ({MIN_SECURE_KEY_BITS} or more outside quick/teaching "
                           "mode)")
    bits = int(bits)
    if bits < MIN_SECURE_KEY_BITS and allow_insecure is not True:
        raise KeyFileError(f"key_bits={bits} is below {MIN_SECURE_KEY_BITS}: such a key is made only in the labelled "
                           "quick/teaching mode (allow_insecure=True, saved as "
                           f"{key_file_name(bits, 'private')})")
    private_path = keys_dir / key_file_name(bits, "private")
    public_path = keys_dir / key_file_name(bits, "public")
    with _folder_lock(keys_dir, private_path.name):
        remove_stale_temp_files(keys_dir, private_path.name)
        if private_path.exists() or private_path.is_symlink():
            key = load_private_key(private_path, allow_insecure=allow_insecure)
            if key.public.bits != bits:
                raise KeyFileError(f"key file {private_path} holds a {key.public.bits}-bit key, not {bits} bits")
            if not public_path.exists():  # a writer killed between the two files
                save_public_key(key.public, public_path)
            return key
        key = generate_keypair(bits, allow_insecure=allow_insecure)
        save_private_key(key, private_path)
        save_public_key(key.public, public_path)
        return key
