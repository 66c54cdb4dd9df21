"""The ciphertext format: every field value sealed with its subject's data key and its place.

    0x01 | data-key version (4 bytes, big-endian) | nonce (12) | AES-256-GCM ciphertext + tag

The associated data names the table, column and subject the value belongs to, so a value
copied to another row, column or person no longer opens. `0x00 | UTF-8` is the plaintext
form written only when `vault_encryption` is off (the benchmark's baseline, never production).
"""

from __future__ import annotations

import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ERASED",
    "DecryptionFailed",
    "Erased",
    "field_context",
    "is_plain",
    "key_version_of",
    "open_plain",
    "open_sealed",
    "seal",
    "seal_plain",
]

ENCRYPTED = 0x01
PLAIN = 0x00
_HEADER = struct.Struct(">BI")
NONCE_BYTES = 12


class Erased:
    """What a shredded subject's data reads as: a value, not an exception."""

    _instance: Erased | None = None

    def __new__(cls) -> Erased:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ERASED"

    def __bool__(self) -> bool:
        return False


ERASED = Erased()


class DecryptionFailed(Exception):
    """The ciphertext does not open where it is: tampered with, or copied from elsewhere."""

    code = "VAULT_DECRYPTION_FAILED"


def field_context(table: str, column: str, subject: str) -> bytes:
    return f"omnigate/field|{table}|{column}|{subject}".encode()


def seal(aead: AESGCM, key_version: int, context: bytes, value: str) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return _HEADER.pack(ENCRYPTED, key_version) + nonce + aead.encrypt(nonce, value.encode(), context)


def key_version_of(blob: bytes) -> int:
    if len(blob) < _HEADER.size + NONCE_BYTES + 16 or blob[0] != ENCRYPTED:
        raise DecryptionFailed("not a vault ciphertext")
    version: int = _HEADER.unpack_from(blob)[1]
    return version


def open_sealed(aead: AESGCM, context: bytes, blob: bytes) -> str:
    start = _HEADER.size
    try:
        return aead.decrypt(blob[start : start + NONCE_BYTES], blob[start + NONCE_BYTES :], context).decode()
    except InvalidTag:
        raise DecryptionFailed("a ciphertext does not open where it is stored") from None


def seal_plain(value: str) -> bytes:
    return bytes([PLAIN]) + value.encode()


def is_plain(blob: bytes) -> bool:
    return bool(blob) and blob[0] == PLAIN


def open_plain(blob: bytes) -> str:
    return blob[1:].decode()
