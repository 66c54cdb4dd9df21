"""Key-encryption keys (KEKs): where they come from, and the `KeyProvider` seam for a real KMS.

A KEK only ever wraps and unwraps data keys; data is never encrypted with it. Versions let
a new KEK take over (new wraps) while older ones stay readable until retired.

Sources, in order: the `kek` setting (base64 of 32 bytes, or `1:<b64>,2:<b64>` for several
versions, the highest active), else the `kek_file` (JSON; in development created with a
random KEK on first use). Production refuses to start without one.

With several gateway replicas, a new version is first given to every replica with
`kek_active_version` still naming the old one (they can all read it, none writes with it),
then made active everywhere, then `rotate-kek` runs: no replica ever meets a data key it
cannot open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import Settings

__all__ = [
    "KeyConfigError",
    "KeyProvider",
    "LocalKeyRing",
    "UnwrapError",
    "add_kek_version",
    "load_blind_index_key",
    "load_key_ring",
]

KEY_BYTES = 32
NONCE_BYTES = 12


class KeyConfigError(RuntimeError):
    """The KEK or the blind-index key is missing or malformed (messages never show key material)."""


class UnwrapError(Exception):
    """A wrapped data key does not open: wrong KEK, retired version, or moved to another subject."""


class KeyProvider(Protocol):
    """What the vault needs from a KEK holder; a KMS client can implement the same three calls."""

    @property
    def active_version(self) -> int: ...

    def versions(self) -> frozenset[int]: ...

    def wrap(self, data_key: bytes, context: bytes) -> tuple[int, bytes]:
        """(KEK version, wrapped key) under the active version, bound to `context`."""
        ...

    def unwrap(self, version: int, wrapped: bytes, context: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class LocalKeyRing:
    """KEKs held in process memory (from settings or a file): AES-256-GCM key wrapping."""

    keks: dict[int, bytes] = field(repr=False)  # never in a traceback's or a log's repr
    active: int = 0  # the version new wraps use; 0: the highest
    _ciphers: dict[int, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keks:
            raise KeyConfigError("no KEK configured")
        if any(len(k) != KEY_BYTES for k in self.keks.values()):
            raise KeyConfigError(f"every KEK must be {KEY_BYTES} bytes (base64 of 32 random bytes)")
        if self.active and self.active not in self.keks:
            raise KeyConfigError(f"the active KEK version {self.active} is not configured")
        object.__setattr__(self, "_ciphers", {v: AESGCM(k) for v, k in self.keks.items()})

    @property
    def active_version(self) -> int:
        return self.active or max(self.keks)

    def versions(self) -> frozenset[int]:
        return frozenset(self.keks)

    def wrap(self, data_key: bytes, context: bytes) -> tuple[int, bytes]:
        version = self.active_version
        nonce = secrets.token_bytes(NONCE_BYTES)
        return version, nonce + self._ciphers[version].encrypt(nonce, data_key, context)

    def unwrap(self, version: int, wrapped: bytes, context: bytes) -> bytes:
        cipher = self._ciphers.get(version)
        if cipher is None:
            raise UnwrapError(f"KEK version {version} is not available (retired or not configured)")
        try:
            return cipher.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise UnwrapError("a data key does not open with its KEK") from None


def _b64key(text: str, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{what} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigError(f"{what} must decode to {KEY_BYTES} bytes")
    return key


def _parse_kek_setting(value: str) -> dict[int, bytes]:
    keks: dict[int, bytes] = {}
    for n, part in enumerate(p for p in value.split(",") if p.strip()):
        version_text, sep, key_text = part.strip().partition(":")
        if not sep:
            if n:
                raise KeyConfigError("OMNIGATE_KEK: give every version as `N:<base64>` when there are several")
            version_text, key_text = "1", part
        if not version_text.isdigit() or int(version_text) < 1:
            raise KeyConfigError("OMNIGATE_KEK: versions are positive whole numbers")
        if int(version_text) in keks:  # which one was meant? the wrong one would open nothing
            raise KeyConfigError(f"OMNIGATE_KEK: version {int(version_text)} is given twice")
        keks[int(version_text)] = _b64key(key_text, f"OMNIGATE_KEK version {version_text}")
    return keks


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeyConfigError(f"cannot read the KEK file {path}: {type(exc).__name__}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keks"), dict):
        raise KeyConfigError(f"the KEK file {path} has no `keks` object")
    return data


def _write_file(path: Path, data: dict[str, Any]) -> None:
    """Atomically, readable by the owner only (a temporary file of its own: mkstemp makes it 0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


@contextmanager
def _changing(path: Path) -> Iterator[None]:
    """One change of the KEK file at a time, across processes: two `rotate-kek` runs at once
    would each add "version N+1" and one of those keys, with every data key it wrapped, be lost."""
    import fcntl  # POSIX; imported here so that merely reading keys needs nothing of it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _file_data(settings: Settings) -> dict[str, Any]:
    path = Path(settings.kek_file)
    if not path.exists():
        if settings.is_production:
            raise KeyConfigError("production needs a KEK: set OMNIGATE_KEK or point OMNIGATE_KEK_FILE at one")
        with _changing(path):
            if not path.exists():  # a process starting beside this one may have made it meanwhile
                _write_file(path, {"keks": {"1": _new_key()}, "blind_index_key": _new_key()})
    if settings.is_production and path.stat().st_mode & 0o077:
        raise KeyConfigError(f"the KEK file {path} is readable by others: chmod 600 it")
    return _read_file(path)


def load_key_ring(settings: Settings) -> LocalKeyRing:
    if settings.kek.strip():
        return LocalKeyRing(_parse_kek_setting(settings.kek), settings.kek_active_version)
    if not settings.kek_file:
        raise KeyConfigError("set OMNIGATE_KEK or OMNIGATE_KEK_FILE")
    data = _file_data(settings)
    try:
        keks = {int(v): _b64key(k, f"KEK version {v}") for v, k in data["keks"].items()}
    except ValueError:
        raise KeyConfigError("KEK file versions are whole numbers") from None
    return LocalKeyRing(keks, settings.kek_active_version)


def load_blind_index_key(settings: Settings) -> bytes:
    """Separate from the KEK: rotating the KEK must not change any blind index."""
    if settings.blind_index_key.strip():
        return _b64key(settings.blind_index_key, "OMNIGATE_BLIND_INDEX_KEY")
    if settings.is_production:
        raise KeyConfigError("production needs OMNIGATE_BLIND_INDEX_KEY")
    if settings.kek.strip():
        # Development only: derived from KEK version 1, which rotation never changes. Once
        # version 1 is retired the key would silently change (every look-up lost, every email
        # free to register again), so that is refused instead.
        first = _parse_kek_setting(settings.kek).get(1)
        if first is None:
            raise KeyConfigError(
                "OMNIGATE_KEK has no version 1 to derive the blind-index key from: set OMNIGATE_BLIND_INDEX_KEY"
            )
        return hmac.new(first, b"omnigate blind index key v1", hashlib.sha256).digest()
    data = _file_data(settings)
    if "blind_index_key" not in data:
        with _changing(Path(settings.kek_file)):
            data = _file_data(settings)
            if "blind_index_key" not in data:
                data["blind_index_key"] = _new_key()
                _write_file(Path(settings.kek_file), data)
    return _b64key(data["blind_index_key"], "the KEK file's blind_index_key")


def add_kek_version(settings: Settings) -> int:
    """Add a new random KEK version to the KEK file (development and file-based deployments)."""
    if settings.kek.strip():
        raise KeyConfigError("the KEK comes from OMNIGATE_KEK: add the new `N:<base64>` version there instead")
    _file_data(settings)  # created first in development
    with _changing(Path(settings.kek_file)):
        data = _file_data(settings)
        version = max(int(v) for v in data["keks"]) + 1
        data["keks"][str(version)] = _new_key()
        _write_file(Path(settings.kek_file), data)
    return version


def retire_kek_versions(settings: Settings, keep: frozenset[int]) -> list[int]:
    """Drop KEK versions no data key uses any more from the KEK file; returns those dropped."""
    if settings.kek.strip():
        return []
    _file_data(settings)
    with _changing(Path(settings.kek_file)):
        data = _file_data(settings)
        dropped = sorted(int(v) for v in data["keks"] if int(v) not in keep)
        if dropped:
            data["keks"] = {v: k for v, k in data["keks"].items() if int(v) in keep}
            _write_file(Path(settings.kek_file), data)
    return dropped
