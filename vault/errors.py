"""The vault's domain errors, each with a stable `code` (messages never hold personal data)."""

from __future__ import annotations

from enum import StrEnum

from core.errors import DomainError
from vault.cipher import DecryptionFailed
from vault.keys import KeyConfigError

__all__ = [
    "DecryptionFailed",
    "DuplicateLookup",
    "KeyConfigError",
    "UnknownPurpose",
    "UnknownSubject",
    "VaultError",
    "VaultErrorCode",
]


class VaultErrorCode(StrEnum):
    """Every code the vault reports."""

    VAULT_ERROR = "VAULT_ERROR"
    DUPLICATE_LOOKUP = "DUPLICATE_LOOKUP"
    UNKNOWN_PURPOSE = "UNKNOWN_PURPOSE"
    UNKNOWN_SUBJECT = "UNKNOWN_SUBJECT"


class VaultError(DomainError):
    code: str = VaultErrorCode.VAULT_ERROR


class DuplicateLookup(VaultError):
    """Another subject already holds this unique value (e.g. the email)."""

    code: str = VaultErrorCode.DUPLICATE_LOOKUP

    def __init__(self, kind: str) -> None:
        super().__init__(f"another person already uses this {kind}")
        self.kind = kind


class UnknownPurpose(VaultError):
    code: str = VaultErrorCode.UNKNOWN_PURPOSE
    field = ("purpose",)

    def __init__(self, purposes: frozenset[str]) -> None:
        super().__init__(f"unknown consent purpose; known purposes: {', '.join(sorted(purposes))}")


class UnknownSubject(VaultError):
    code: str = VaultErrorCode.UNKNOWN_SUBJECT

    def __init__(self) -> None:
        super().__init__("no such data subject, or its data was erased")
