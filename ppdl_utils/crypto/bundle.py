"""Authenticated ciphertext bundles: the integrity that Paillier, LWE and textbook RSA lack.

All three schemes are malleable: anyone with the public key (or, for LWE, any ciphertext) can turn
E(m) into a valid encryption of a related message, and decryption cannot tell.  A bundle is

    frame = magic | header length | header | payload,     bundle = frame | HMAC-SHA256(K, frame)

where the payload is the scheme's own serialization (key fingerprint, regime, shape, every
ciphertext byte) and the header repeats scheme, key fingerprint, regime, shape and a caller's
``context`` label.  The tag therefore covers the ciphertexts, the key fingerprint, the regime and
the shape: any change, truncation, extension or splice is an :class:`IntegrityError`, and a bundle
of another key is a ``WrongKeyError``.

K is a 32-byte secret the key holder keeps: :meth:`MacKey.derive` derives it from the private key
with HKDF-SHA256 (domain-separated by a purpose label, so it never equals any key material), or
:meth:`MacKey.generate` draws one to share with a party that must verify (e.g. a server receiving
features).  Limits: the HMAC proves the bundle was made by a holder of K, nothing more; it hides
nothing, it cannot stop a holder of K (a server computing on the data cannot authenticate its
results under the client's K), and it does not stop the replay of an older bundle (put a counter
or a purpose in ``context`` where that matters).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import gmpy2
import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ppdl_utils.crypto import lwe, rsa_textbook, serialization
from ppdl_utils.crypto.cipher_array import PaillierArray
from ppdl_utils.crypto.paillier import PaillierPrivateKey, PaillierPublicKey
from ppdl_utils.crypto.security import ParameterError
from ppdl_utils.errors import CiphertextError, WrongKeyError

BUNDLE_MAGIC = b"PPDL-BUNDLE-HMAC-SHA256\n"
BUNDLE_FORMAT = "ppdl-bundle-v1"
TAG_BYTES = 32
MAC_KEY_BYTES = 32

AnyKey = Union[PaillierPublicKey, PaillierPrivateKey, lwe.LWESecretKey, rsa_textbook.RSAPublicKey,
               rsa_textbook.RSAPrivateKey]
Sealable = Union[PaillierArray, lwe.LWECiphertext, np.ndarray]


class IntegrityError(CiphertextError):
    """An authenticated bundle failed verification: altered, truncated, or sealed with another key."""


@dataclass(frozen=True, repr=False, eq=False)
class MacKey:
    """A 32-byte HMAC-SHA256 key.  Its repr hides it; never print or save it next to results."""

    secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < MAC_KEY_BYTES:
            raise ParameterError(f"MacKey secret must be at least {MAC_KEY_BYTES} bytes")

    def __repr__(self) -> str:
        return "MacKey(<hidden>)"

    @classmethod
    def generate(cls) -> "MacKey":
        """A fresh random key (OS CSPRNG), for sharing with a party that must verify bundles."""
        return cls(secrets.token_bytes(MAC_KEY_BYTES))

    @classmethod
    def derive(cls, key: AnyKey, purpose: str = "bundle") -> "MacKey":
        """HKDF-SHA256 of the private key material, labelled with `purpose` and the key fingerprint:
        no extra secret to store, and different purposes give independent keys."""
        material, fingerprint = _private_material(key)
        info = f"ppdl-mac-v1|{purpose}|{fingerprint}".encode()
        return cls(HKDF(algorithm=hashes.SHA256(), length=MAC_KEY_BYTES, salt=None, info=info).derive(material))

    def tag(self, data: bytes) -> bytes:
        mac = hmac.HMAC(self.secret, hashes.SHA256())
        mac.update(data)
        return mac.finalize()

    def verify(self, data: bytes, tag: bytes, what: str) -> None:
        """Constant-time check; IntegrityError naming `what` on mismatch."""
        mac = hmac.HMAC(self.secret, hashes.SHA256())
        mac.update(data)
        try:
            mac.verify(tag)
        except InvalidSignature:
            raise IntegrityError(f"{what} failed authentication (HMAC-SHA256): it was altered, truncated, "
                                 "or sealed with another MAC key; do not use its contents") from None


def _big(value: int) -> bytes:
    return gmpy2.mpz(value).digits(16).encode()


def _private_material(key: object) -> tuple[bytes, str]:
    if isinstance(key, PaillierPrivateKey):
        return _big(key.p) + b":" + _big(key.q), key.public.fingerprint
    if isinstance(key, lwe.LWESecretKey):
        return np.ascontiguousarray(key.s, dtype="<i1").tobytes(), key.fingerprint
    if isinstance(key, rsa_textbook.RSAPrivateKey):
        return _big(key.d) + b":" + _big(key.p), key.public.fingerprint
    raise ParameterError(f"MacKey.derive needs a private key (Paillier, LWE or RSA), got {type(key).__name__}")


def _describe(ciphertexts: object, public: object) -> tuple[str, str, str, list[int], bytes]:
    """(scheme, key fingerprint, regime, shape, payload) of something to seal."""
    if isinstance(ciphertexts, PaillierArray):
        payload = ciphertexts.to_bytes()
        return ("paillier", ciphertexts.public.fingerprint, ciphertexts.regime, list(ciphertexts.shape), payload)
    if isinstance(ciphertexts, lwe.LWECiphertext):
        return ("lwe", ciphertexts.key_fingerprint, ciphertexts.regime.value, list(ciphertexts.shape),
                lwe.to_bytes(ciphertexts))
    if isinstance(ciphertexts, np.ndarray) and isinstance(public, rsa_textbook.RSAPublicKey):
        return ("rsa", public.fingerprint, "fixed_r", list(ciphertexts.shape),
                rsa_textbook.to_bytes(public, ciphertexts))
    raise ParameterError(f"cannot seal {type(ciphertexts).__name__}: give a PaillierArray, an LWECiphertext, "
                         "or an RSA ciphertext array together with public=<RSAPublicKey>")


def seal(ciphertexts: Sealable, mac_key: MacKey, public: rsa_textbook.RSAPublicKey | None = None,
         context: str = "") -> bytes:
    """The authenticated bundle of `ciphertexts` (see the module docstring for what it covers)."""
    if not isinstance(mac_key, MacKey):
        raise ParameterError(f"mac_key must be a MacKey, got {type(mac_key).__name__}")
    scheme, fingerprint, regime, shape, payload = _describe(ciphertexts, public)
    header = {"format": BUNDLE_FORMAT, "scheme": scheme, "key_fingerprint": fingerprint, "regime": regime,
              "shape": shape, "context": str(context), "payload_sha256": hashlib.sha256(payload).hexdigest()}
    frame = serialization.pack(BUNDLE_MAGIC, header, payload)
    return frame + mac_key.tag(frame)


def _key_identity(key: object) -> tuple[str, str]:
    """(scheme, fingerprint) of the key a bundle is opened with."""
    if isinstance(key, PaillierPrivateKey):
        key = key.public
    if isinstance(key, rsa_textbook.RSAPrivateKey):
        key = key.public
    if isinstance(key, PaillierPublicKey):
        return "paillier", key.fingerprint
    if isinstance(key, lwe.LWESecretKey):
        return "lwe", key.fingerprint
    if isinstance(key, rsa_textbook.RSAPublicKey):
        return "rsa", key.fingerprint
    raise ParameterError(f"open_bundle needs the key of the ciphertexts, got {type(key).__name__}")


def _load_payload(scheme: str, payload: bytes, key: object) -> Sealable:
    if scheme == "paillier":
        return PaillierArray.from_bytes(payload, key.public if isinstance(key, PaillierPrivateKey) else key)
    if scheme == "lwe":
        return lwe.from_bytes(payload, key)
    return rsa_textbook.from_bytes(payload, key.public if isinstance(key, rsa_textbook.RSAPrivateKey) else key)


def open_bundle(blob: bytes, mac_key: MacKey, key: AnyKey, context: str = "", name: str = "bundle") -> Sealable:
    """Verify and load a bundle: WrongKeyError if it belongs to another key, IntegrityError if its
    tag, context or contents do not check out.  Nothing is returned unverified."""
    if not isinstance(mac_key, MacKey):
        raise ParameterError(f"mac_key must be a MacKey (MacKey.derive(private_key) or the shared key), "
                             f"got {type(mac_key).__name__}")
    if not isinstance(context, str):
        raise ParameterError(f"context must be a string label, got {type(context).__name__}")
    scheme, fingerprint = _key_identity(key)
    data = serialization.as_bytes(blob, name)
    if len(data) < len(BUNDLE_MAGIC) + 4 + TAG_BYTES:
        raise IntegrityError(f"{name} has {len(data)} bytes: too short to be an authenticated bundle")
    frame, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
    try:
        header, payload = serialization.unpack(frame, BUNDLE_MAGIC, name)
    except CiphertextError as exc:
        raise IntegrityError(f"{exc} (an authenticated bundle whose frame does not parse was altered)") from None
    if header.get("scheme") != scheme or header.get("key_fingerprint") != fingerprint:
        raise WrongKeyError(f"{name} holds {header.get('scheme')!r:.12} ciphertexts of key "
                            f"{header.get('key_fingerprint')!r:.24}, not of the given {scheme} key {fingerprint}")
    mac_key.verify(frame, tag, name)
    if header.get("context") != context:
        raise IntegrityError(f"{name} was sealed for context {header.get('context')!r:.60}, expected {context!r:.60}")
    loaded = _load_payload(scheme, payload, key)
    regime = loaded.regime.value if isinstance(loaded, lwe.LWECiphertext) else getattr(loaded, "regime", "fixed_r")
    if list(loaded.shape) != header.get("shape") or regime != header.get("regime"):
        raise IntegrityError(f"{name}: header and payload disagree on shape or regime (sealed by faulty code)")
    return loaded


def save_bundle(path: "str | Path", ciphertexts: Sealable, mac_key: MacKey,
                public: rsa_textbook.RSAPublicKey | None = None, context: str = "") -> Path:
    """Seal and write to `path` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    if path.is_dir() or path.is_symlink():
        raise ParameterError(f"bundle path {path} is a directory or a symbolic link")
    blob = seal(ciphertexts, mac_key, public, context)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return path


def load_bundle(path: "str | Path", mac_key: MacKey, key: AnyKey, context: str = "") -> Sealable:
    """Read, verify and load a bundle file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CiphertextError(f"bundle file {path} does not exist or is not a regular file")
    return open_bundle(path.read_bytes(), mac_key, key, context, name=f"bundle file {path}")
