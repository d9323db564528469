"""A registry of the secrets a run generated, and a scanner that finds them in the run's outputs.

Registry.  Key generation and the encryptors call :func:`register_secret` for every secret they
draw: Paillier p, q, lambda, mu; RSA d, p, q, dp, dq, qinv; the LWE secret s; the ``table``
regime's secret table E(0..255) and the ``fixed_r`` regime's secret r.  Registration is a no-op
until a registry is active.  It becomes active

* explicitly, with :func:`activate` (a path), or
* through the environment variable ``PPDL_SECRET_REGISTRY`` (a path, or ``off``), which wins, or
* implicitly when a key is saved to or loaded from a keys folder (``crypto.keyfiles``): the
  registry is then ``<keys_dir>/secret_registry.jsonl``, so every later key, table and fixed r
  of that process (a notebook kernel) is recorded next to the private key files.

The registry is a JSON-lines file written with 0600 permissions, never inside a ``results`` or
``figures`` folder.  It holds secrets (as the key files do): keep it with the keys, never publish it.

Scanner.  :func:`scan_paths` searches executed notebooks (image payloads skipped), any file under
``results/`` and the text chunks of PNG figures for

* any ``WINDOW`` (24) consecutive characters of a secret's decimal or hexadecimal form, after
  removing every other character from the text, so wrapped lines, thousands separators, ``0x``
  prefixes, JSON escapes and truncated excerpts are still found;
* any ``SEQUENCE_WINDOW`` (40) consecutive entries of a small-integer vector secret (LWE's s),
  whatever separates them.

A random text matches a given 24-digit window with probability 10^-24 per position, so a finding
is a leak, not noise.  Secrets shorter than ``WINDOW`` digits (toy keys) are not registered.
Findings name the secret and the file, never the secret's value.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import gmpy2
import numpy as np

from ppdl_utils.errors import PPDLError

REGISTRY_NAME = "secret_registry.jsonl"
ENV_VAR = "PPDL_SECRET_REGISTRY"
WINDOW = 24  # characters of a decimal / hex form that count as a leak
SEQUENCE_WINDOW = 40  # consecutive entries of a vector secret that count as a leak
_CHUNK = 12  # aligned secret chunks; every WINDOW-window of a secret contains a whole one
_SEQ_CHUNK = 15  # 15 entries x 4 bits fit an int64; 2 * 15 - 1 <= SEQUENCE_WINDOW
_SEQ_LIMIT = 7  # vector secrets hold small integers |v| <= 7 (4-bit codes, 15 = other token)
_FORBIDDEN_PARENTS = ("results", "figures")
_BLOCK = 1 << 22  # filtered characters processed per numpy block
_FILTER_MASK = (1 << 24) - 1  # presence filter on the low 24 bits of a chunk value


class SecretLeakError(PPDLError):
    """Registered secret material was found in an output; the message names secret and file."""


class SecretRegistryError(PPDLError, ValueError):
    """The secret registry cannot be used (bad path, corrupt line, unscannable secret)."""


@dataclass(frozen=True, repr=False)
class Secret:
    """One registered secret: a big integer, several (a table), or a vector of small integers."""

    kind: str  # "paillier", "rsa", "lwe", "table", "fixed_r"
    name: str  # "p", "lambda", "d", "s", "E(0..255)", "r", ...
    key: str  # public fingerprint of the key it belongs to
    values: tuple[int, ...]
    sequence: bool = False  # True: one vector scanned as a run of entries
    # public numbers of the same key (Paillier n): digits a secret shares with them are not a leak.
    # lambda = (p-1)(q-1)/g shares the top half of n's digits whenever g is a power of the base
    # (g = 10: lambda = phi/10, and phi = n - p - q + 1 starts like n).
    public: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name} (key {self.key})"

    def __repr__(self) -> str:  # never the values: reprs end up in assertion messages
        return f"Secret({self.label}, {len(self.values)} value(s))"


@dataclass(frozen=True)
class Finding:
    """Where a secret was found: file (and part), the form, and how many characters matched."""

    secret: str
    where: str
    form: str  # "decimal", "hex" or "sequence"
    length: int
    offset: int  # position in the filtered character stream (or token list) of that part

    def __str__(self) -> str:
        unit = "entries" if self.form == "sequence" else "characters"
        return f"{self.secret}: {self.length} {unit} of its {self.form} form in {self.where}"


# --------------------------------------------------------------------------- registry
def _decimal(value: int) -> str:
    return gmpy2.mpz(value).digits(10)  # str(int) refuses more than 4300 digits


def _secret_id(kind: str, name: str, key: str, values: Sequence[int], sequence: bool) -> str:
    h = hashlib.sha256(f"{kind}|{name}|{key}|{int(sequence)}|".encode())
    for v in values:
        h.update(format(int(v), "x").encode() + b",")
    return h.hexdigest()[:24]


def _check_location(path: Path) -> Path:
    path = Path(path).expanduser().absolute()
    bad = [p for p in path.parent.parts if p in _FORBIDDEN_PARENTS]
    if bad:
        raise SecretRegistryError(f"secret registry {path} would lie inside a {bad[0]!r} folder, which is "
                                  "published: keep it next to the keys")
    if path.is_dir() or path.is_symlink():
        raise SecretRegistryError(f"secret registry {path} is a directory or a symbolic link, not a file")
    return path


def _normalize(values: "int | Iterable[int]", sequence: bool, label: str) -> tuple[int, ...]:
    """Values as Python ints; vector secrets must be small integers, long enough to scan."""
    raw = [values] if isinstance(values, (int, np.integer, type(gmpy2.mpz(0)))) else list(np.ravel(values))
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer, type(gmpy2.mpz(0))))
           for v in raw):
        raise SecretRegistryError(f"secret {label} must be integers")
    ints = tuple(int(v) for v in raw)
    if sequence:
        if any(abs(v) > _SEQ_LIMIT for v in ints):
            raise SecretRegistryError(f"vector secret {label} must hold integers in [-{_SEQ_LIMIT}, {_SEQ_LIMIT}]")
        return ints if len(ints) >= SEQUENCE_WINDOW else ()
    return tuple(v for v in ints if len(_decimal(abs(v))) >= WINDOW)  # shorter ones cannot be scanned


class SecretRegistry:
    """The JSON-lines file of one run's secrets (0600); appends are de-duplicated."""

    def __init__(self, path: "str | Path") -> None:
        self.path = _check_location(Path(path))
        self._ids: set[str] | None = None

    def _known_ids(self) -> set[str]:
        if self._ids is None:
            self._ids = {s_id for s_id, _ in self._records()} if self.path.exists() else set()
        return self._ids

    def add(self, kind: str, name: str, key: str, values: "int | Iterable[int]",
            sequence: bool = False, public: Iterable[int] = ()) -> bool:
        """Record a secret; False when it was already there or is too short to scan."""
        label = f"{kind} {name} (key {key})"
        ints = _normalize(values, sequence, label)
        if not ints:
            return False
        secret_id = _secret_id(kind, name, key, ints, sequence)
        if secret_id in self._known_ids():
            return False
        record = {"v": 1, "id": secret_id, "kind": kind, "name": name, "key": key, "sequence": sequence}
        record.update({"values": list(ints)} if sequence else {"hex": [format(v, "x") for v in ints]})
        if public:
            record["public_hex"] = [format(int(v), "x") for v in public]
        self._append((json.dumps(record, separators=(",", ":")) + "\n").encode())
        self._ids.add(secret_id)
        return True

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # also when an existing file had looser permissions
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _records(self) -> list[tuple[str, Secret]]:
        try:
            lines = self.path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(_parse_record(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                if number == len(lines):  # a last line cut short by a crash: the rest is intact
                    warnings.warn(f"{self.path}: ignoring an incomplete last line ({exc})", stacklevel=3)
                    continue
                raise SecretRegistryError(f"secret registry {self.path}, line {number}, is corrupt: {exc}") from None
        return out

    def secrets(self) -> list[Secret]:
        return [secret for _, secret in self._records()]


def _parse_record(record: dict) -> tuple[str, Secret]:
    sequence = bool(record["sequence"])
    values = tuple(int(v) for v in record["values"]) if sequence else tuple(int(h, 16) for h in record["hex"])
    public = tuple(int(h, 16) for h in record.get("public_hex", ()))
    return str(record["id"]), Secret(str(record["kind"]), str(record["name"]), str(record["key"]), values,
                                     sequence, public)


_ACTIVE: SecretRegistry | None = None
_BY_PATH: dict[Path, SecretRegistry] = {}


def _registry_at(path: "str | Path") -> SecretRegistry:
    resolved = _check_location(Path(path))
    if resolved not in _BY_PATH:
        _BY_PATH[resolved] = SecretRegistry(resolved)
    return _BY_PATH[resolved]


def activate(path: "str | Path") -> SecretRegistry:
    """Make `path` this process's registry: a ``.jsonl`` file, or a folder (existing or not), which
    means ``<folder>/secret_registry.jsonl``."""
    global _ACTIVE
    path = Path(path)
    _ACTIVE = _registry_at(path if path.suffix == ".jsonl" and not path.is_dir() else path / REGISTRY_NAME)
    return _ACTIVE


def activate_keys_dir(keys_dir: "str | Path") -> SecretRegistry | None:
    """What key files call: activate ``<keys_dir>/secret_registry.jsonl``; warn (never fail a key
    operation) when that location is refused."""
    try:
        return activate(Path(keys_dir) / REGISTRY_NAME)
    except SecretRegistryError as exc:
        warnings.warn(f"secrets of this run are not registered: {exc}", stacklevel=3)
        return None


def deactivate() -> None:
    """Stop registering in this process (the environment variable still wins if set)."""
    global _ACTIVE
    _ACTIVE = None


def active_registry() -> SecretRegistry | None:
    """``$PPDL_SECRET_REGISTRY`` (``off`` disables), else the activated registry, else None."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env.lower() == "off":
        return None
    if env:
        return _registry_at(env)
    return _ACTIVE


def register_secret(kind: str, name: str, key: str, values: "int | Iterable[int]",
                    sequence: bool = False, public: Iterable[int] = ()) -> None:
    """Record a secret in the active registry (with the public numbers of its key, whose digits
    are not a leak); does nothing when none is active."""
    registry = active_registry()
    if registry is not None:
        registry.add(kind, name, key, values, sequence, public)


_KEY_FILE_FIELDS = ("p", "q", "lambda", "mu", "d", "dp", "dq", "qinv")


def secrets_from_key_file(path: "str | Path") -> list[Secret]:
    """The secret fields of one private key file (read as JSON: works for files of any scheme)."""
    body = json.loads(Path(path).read_text())
    if not isinstance(body, dict):
        return []
    key = str(body.get("fingerprint", Path(path).name))
    public = tuple(int(body[f]) for f in ("n", "N") if isinstance(body.get(f), str) and body[f].isdigit())
    out = []
    for field in _KEY_FILE_FIELDS:
        text = body.get(field)
        if isinstance(text, str) and text.isdigit() and len(text) >= WINDOW:
            out.append(Secret("key file", field, key, (int(gmpy2.mpz(text)),), public=public))
    return out


def load_secrets(keys_dir: "str | Path") -> list[Secret]:
    """Every secret of a keys folder: its registry plus the fields of its ``*.private.json`` files."""
    folder = Path(keys_dir)
    if not folder.is_dir():
        return []
    found = SecretRegistry(folder / REGISTRY_NAME).secrets() if (folder / REGISTRY_NAME).is_file() else []
    for path in sorted(folder.glob("*.private.json")):
        try:
            found += secrets_from_key_file(path)
        except (OSError, ValueError) as exc:
            raise SecretRegistryError(f"cannot read the secrets of key file {path}: {exc}") from None
    unique: dict[tuple, Secret] = {}
    for secret in found:  # a key is both registered and in its file: report it once
        unique.setdefault((secret.sequence, secret.values), secret)
    return list(unique.values())


# --------------------------------------------------------------------------- matching
class SecretIndex:
    """Aligned chunks of every secret form, as int64 values, for vectorized lookup.  Build it once
    and pass it to :func:`scan_text` when scanning many texts."""

    def __init__(self, secrets: Sequence[Secret]) -> None:
        self.strings: dict[str, list[tuple[str, str]]] = {"decimal": [], "hex": []}  # (text, label)
        self.chunks: dict[str, dict[int, list[tuple[int, int]]]] = {"decimal": {}, "hex": {}, "sequence": {}}
        self.sequences: list[tuple[np.ndarray, str]] = []
        self._sorted: dict[str, np.ndarray] = {}
        for secret in secrets:
            if secret.sequence:
                self._add_sequence(np.array(secret.values, dtype=np.int64), secret.label)
                continue
            for value in secret.values:
                self._add_string("decimal", _decimal(abs(value)), secret.label,
                                 [_decimal(abs(v)) for v in secret.public])
                self._add_string("hex", format(abs(value), "x"), secret.label,
                                 [format(abs(v), "x") for v in secret.public])

    def lookup(self, form: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted chunk values, a 2^24-entry presence filter on their low bits) of one form."""
        if form not in self._sorted:
            keys = np.sort(np.fromiter(self.chunks[form], dtype=np.int64, count=len(self.chunks[form])))
            present = np.zeros(_FILTER_MASK + 1, dtype=bool)
            present[keys & _FILTER_MASK] = True
            self._sorted[form] = (keys, present)
        return self._sorted[form]

    def _add_string(self, form: str, text: str, label: str, public: Sequence[str] = ()) -> None:
        if len(text) < WINDOW:
            return
        number = len(self.strings[form])
        self.strings[form].append((text, label))
        base = 10 if form == "decimal" else 16
        for start in range(0, len(text) - _CHUNK + 1, _CHUNK):
            chunk = text[start:start + _CHUNK]
            if any(chunk in shown for shown in public):  # digits the public key shows anyway
                continue
            self.chunks[form].setdefault(int(chunk, base), []).append((number, start))

    def _add_sequence(self, values: np.ndarray, label: str) -> None:
        number = len(self.sequences)
        codes = values + _SEQ_LIMIT
        self.sequences.append((codes, label))
        for start in range(0, len(codes) - _SEQ_CHUNK + 1, _SEQ_CHUNK):
            self.chunks["sequence"].setdefault(_pack(codes[start:start + _SEQ_CHUNK], 16), []).append(
                (number, start))


def _pack(codes: np.ndarray, base: int) -> int:
    acc = 0
    for c in codes:
        acc = acc * base + int(c)
    return acc


def _window_values(stream: np.ndarray, width: int, base: int) -> np.ndarray:
    """Value of every `width`-long window of a digit stream, read in `base` (int64)."""
    count = len(stream) - width + 1
    acc = np.zeros(max(count, 0), dtype=np.int64)
    for k in range(width):
        acc = acc * base + stream[k:k + count]
    return acc


def _extend(text: "bytes | np.ndarray", at: int, secret: "bytes | np.ndarray", start: int, width: int) -> int:
    """Length of the common run of text[at:] and secret[start:] that contains the matched chunk."""
    left = 0
    while at - left > 0 and start - left > 0 and text[at - left - 1] == secret[start - left - 1]:
        left += 1
    right = width
    while at + right < len(text) and start + right < len(secret) and text[at + right] == secret[start + right]:
        right += 1
    return left + right


def _match(stream: np.ndarray, text: "bytes | np.ndarray", form: str, index: SecretIndex, where: str) -> list[Finding]:
    """Findings of one form in one filtered stream (digit values) / its characters (`text`)."""
    table = index.chunks[form]
    if not table or len(stream) < _CHUNK:
        return []
    width, base, need = ((_SEQ_CHUNK, 16, SEQUENCE_WINDOW) if form == "sequence"
                         else (_CHUNK, 10 if form == "decimal" else 16, WINDOW))
    keys, present = index.lookup(form)
    found: dict[str, Finding] = {}
    for block in range(0, len(stream) - width + 1, _BLOCK):
        values = _window_values(stream[block:block + _BLOCK + width - 1], width, base)
        candidates = np.flatnonzero(present[values & _FILTER_MASK])  # cheap filter, then exact lookup
        slot = np.minimum(np.searchsorted(keys, values[candidates]), len(keys) - 1)
        for pos in candidates[keys[slot] == values[candidates]]:
            at = block + int(pos)
            for number, start in table[int(values[pos])]:
                secret, label = (index.sequences[number] if form == "sequence"
                                 else (index.strings[form][number][0].encode(), index.strings[form][number][1]))
                length = _extend(text, at, secret, start, width)
                if length >= need and (label not in found or found[label].length < length):
                    found[label] = Finding(label, where, form, length, at)
    return list(found.values())


_TOKEN = re.compile(rb"-?\d+")
_SEQ_CODES = {str(v).encode(): v + _SEQ_LIMIT for v in range(-_SEQ_LIMIT, _SEQ_LIMIT + 1)}


def scan_text(text: "str | bytes", secrets: "Sequence[Secret] | SecretIndex", where: str = "text") -> list[Finding]:
    """Every registered secret found in `text` (see the module docstring for the forms)."""
    index = secrets if isinstance(secrets, SecretIndex) else SecretIndex(secrets)
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    chars = np.frombuffer(raw.lower(), dtype=np.uint8)
    findings = []
    digits = chars[(chars >= 48) & (chars <= 57)]
    findings += _match(digits - 48, digits.tobytes(), "decimal", index, where)
    hexchars = chars[((chars >= 48) & (chars <= 57)) | ((chars >= 97) & (chars <= 102))]
    hexvalues = np.where(hexchars >= 97, hexchars - 87, hexchars - 48)
    findings += _match(hexvalues, hexchars.tobytes(), "hex", index, where)
    if index.sequences:
        # small integers -> 0..14, any other token -> 15, which breaks a run
        codes = np.array([_SEQ_CODES.get(t, 15) for t in _TOKEN.findall(raw)], dtype=np.int64)
        findings += _match(codes, codes, "sequence", index, where)
    return findings


# --------------------------------------------------------------------------- files
def png_text(path: "str | Path") -> str:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG file, keyword and text, one per line."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data.decode("latin-1")  # not a PNG after all: scan it whole
    out, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        try:
            out.append(_png_chunk_text(kind, chunk))
        except (ValueError, zlib.error):
            out.append(chunk.decode("latin-1"))  # malformed: scan the raw bytes
    return "\n".join(t for t in out if t)


def _png_chunk_text(kind: bytes, chunk: bytes) -> str:
    if kind == b"tEXt":
        return chunk.replace(b"\0", b" ").decode("latin-1")
    if kind == b"zTXt":
        keyword, _, rest = chunk.partition(b"\0")
        return keyword.decode("latin-1") + " " + zlib.decompress(rest[1:]).decode("latin-1")
    if kind == b"iTXt":
        keyword, _, rest = chunk.partition(b"\0")
        compressed, rest = rest[0], rest[2:]
        _lang, _, rest = rest.partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        body = zlib.decompress(text) if compressed else text
        return keyword.decode("latin-1") + " " + body.decode("utf-8", "replace")
    return ""


def notebook_text(path: "str | Path") -> str:
    """An executed notebook as JSON text with its base64 image payloads left out (they are pixels,
    and their random base64 digits only slow the scan)."""
    try:
        nb = json.loads(Path(path).read_text())
    except ValueError:
        return Path(path).read_bytes().decode("latin-1")
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for mime in [m for m in data if m.startswith("image/") and m != "image/svg+xml"]:
                data[mime] = ""
    return json.dumps(nb)


def _file_text(path: Path) -> str | bytes:
    if path.suffix.lower() == ".png":
        return png_text(path)
    if path.suffix.lower() == ".ipynb":
        return notebook_text(path)
    return path.read_bytes()


def _files(paths: Iterable["str | Path"]) -> list[Path]:
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        elif path.is_file():
            out.append(path)
    return [p for p in out if p.name != REGISTRY_NAME]  # the registry holds secrets by design


def scan_paths(paths: Iterable["str | Path"], secrets: Sequence[Secret]) -> list[Finding]:
    """Scan files and folders (recursively): notebooks without image payloads, PNG text chunks,
    every other file as bytes.  Missing paths are skipped."""
    index = SecretIndex(secrets)
    findings = []
    for path in _files(paths):
        findings += scan_text(_file_text(path), index, str(path))
    return findings


def assert_no_secrets(paths: Iterable["str | Path"], secrets: Sequence[Secret]) -> None:
    """Raise SecretLeakError naming every (secret, file) found; the values are never shown."""
    findings = scan_paths(paths, secrets)
    if findings:
        raise SecretLeakError("private key material found: " + "; ".join(map(str, findings)))
