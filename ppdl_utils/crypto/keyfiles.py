"""Paillier key files as JSON.  The private file is created with 0600 permissions and is never
overwritten silently; nothing here prints a secret."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ppdl_utils.errors import PPDLError
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey

FORMAT = "ppdl-paillier-v1"


def save_public_key(public: PaillierPublicKey, path: "str | Path") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": FORMAT, "kind": "public", "n": str(public.n),
                                "g": str(public.g), "bits": public.bits,
                                "fingerprint": public.fingerprint}, indent=1))
    return path


def save_private_key(private: PaillierPrivateKey, path: "str | Path", overwrite: bool = False) -> Path:
    """Write p, q (and the derived lambda, mu for readers) to a file only the owner can read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise PPDLError(f"private key file {path} exists; pass overwrite=True to replace it") from None
    os.fchmod(fd, 0o600)  # also when an existing file had looser permissions
    body = {"format": FORMAT, "kind": "private", "n": str(private.n), "p": str(private.p),
            "q": str(private.q), "lambda": str(private.lam), "mu": str(private.mu),
            "fingerprint": private.public.fingerprint}
    with os.fdopen(fd, "w") as handle:
        json.dump(body, handle, indent=1)
    return path


def _read(path: "str | Path", kind: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise PPDLError(f"key file {path} does not exist")
    try:
        body = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PPDLError(f"key file {path} is not valid JSON: {exc}") from None
    if body.get("format") != FORMAT or body.get("kind") != kind:
        raise PPDLError(f"{path} is not a {kind} key file of format {FORMAT}")
    return body


def load_public_key(path: "str | Path") -> PaillierPublicKey:
    return PaillierPublicKey(int(_read(path, "public")["n"]))


def load_private_key(path: "str | Path") -> PaillierPrivateKey:
    """Load and check a private key; refuse files that others can read."""
    mode = Path(path).stat().st_mode if Path(path).exists() else 0
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PPDLError(f"private key file {path} is readable by others (mode {oct(mode & 0o777)}); "
                        "run: chmod 600 " + str(path))
    body = _read(path, "private")
    p, q, n = int(body["p"]), int(body["q"]), int(body["n"])
    if p * q != n:
        raise PPDLError(f"private key file {path} is corrupt: p*q != n")
    return PaillierPrivateKey(PaillierPublicKey(n), p, q)


def load_or_create_private_key(keys_dir: "str | Path", bits: int) -> PaillierPrivateKey:
    """The project's key of this size: loaded from keys_dir if present, else generated and saved,
    so that encrypted datasets cached under its fingerprint stay valid between runs."""
    from ppdl_utils.crypto.paillier import generate_keypair

    private_path = Path(keys_dir) / f"paillier_{bits}.private.json"
    if private_path.exists():
        return load_private_key(private_path)
    key = generate_keypair(bits)
    save_private_key(key, private_path)
    save_public_key(key.public, Path(keys_dir) / f"paillier_{bits}.public.json")
    return key
