"""The vault's domain errors, each with a stable `code` (messages never hold personal data)."""

from __future__ import annotations

from core.errors import DomainError
from vault.cipher import DecryptionFailed
from vault.keys import KeyConfigError

__all__ = ["DecryptionFailed", "DuplicateLookup", "KeyConfigError", "UnknownPurpose", "UnknownSubject", "VaultError"]


class VaultError(DomainError):
    code = "VAULT_ERROR"


class DuplicateLookup(VaultError):
    """Another subject already holds this unique value (e.g. the email)."""

    code = "DUPLICATE_LOOKUP"

    def __init__(self, kind: str) -> None:
        super().__init__(f"another person already uses this {kind}")
        self.kind = kind


class UnknownPurpose(VaultError):
    code = "UNKNOWN_PURPOSE"
    field = ("purpose",)

    def __init__(self, purposes: frozenset[str]) -> None:
        super().__init__(f"unknown consent purpose; known purposes: {', '.join(sorted(purposes))}")


class UnknownSubject(VaultError):
    code = "UNKNOWN_SUBJECT"

    def __init__(self) -> None:
        super().__init__("no such data subject, or its data was erased")
