"""The protocol every context holding personal data implements, and the registry of them.

A source exports what it holds about one person (JSON-ready values), erases or anonymises it,
and says which retention categories (`policies/retention.toml`) its data falls under and which
tables it covers: a test checks that every table with a `customer_key` or `subject_id` column
is covered by some registered source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import Clock
from policies.retention import RetentionPolicy
from vault.audit import AuditLog
from vault.service import Vault

__all__ = [
    "BatchErasingSource",
    "DataSubject",
    "ExpiringSource",
    "ExpiryRefused",
    "PersonalDataSource",
    "Retained",
    "SourceContext",
    "SourceRegistry",
    "erase_all",
]


@dataclass(frozen=True, slots=True)
class DataSubject:
    """One person: the vault's opaque subject id and the key the commerce contexts know them by."""

    subject_id: str
    customer_key: int


@dataclass(frozen=True, slots=True)
class Retained:
    """What an erasure kept, and why (GDPR Art. 17(3)): never personal data itself."""

    category: str
    reason: str
    legal_basis: str
    until: datetime

    def as_json(self) -> dict[str, str]:
        return {
            "category": self.category,
            "reason": self.reason,
            "legalBasis": self.legal_basis,
            "until": self.until.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source may use: the database, the vault (keys stay inside it), time, the policy, and
    the audit chain (whose retention needs its key, which stays inside it too)."""

    engine: AsyncEngine
    vault: Vault
    clock: Clock
    retention: RetentionPolicy
    audit: AuditLog

    def retained(self, category: str, since: datetime | None = None) -> Retained:
        """The `retained` entry for `category`, its period counted from `since` (default: now)."""
        found = self.retention.category(category)
        if found.period is None:
            raise ValueError(f"category {category!r} has no retention period")
        return Retained(category, found.reason, found.retained_basis, found.period.until(since or self.clock.now()))


class PersonalDataSource(Protocol):
    """One context's personal data about a person. Every method is idempotent."""

    name: str  # the section of the export document, e.g. "profile"
    tables: tuple[str, ...]  # the tables whose personal references it exports and erases

    def describe(self) -> tuple[str, ...]:
        """The retention categories (policies/retention.toml) of what this source holds."""
        ...

    async def export(self, ctx: SourceContext, subject: DataSubject) -> Any:
        """Everything held about `subject`, decrypted, as JSON-ready values."""
        ...

    async def erase(self, ctx: SourceContext, subject: DataSubject) -> list[Retained]:
        """Erase or anonymise `subject`'s data; what must be kept is returned with its reason."""
        ...


class ExpiryRefused(RuntimeError):
    """A source would not delete what outlived its period, and says why (the retention job goes on
    with the other sources, then reports it)."""

    def __init__(self, category: str, reason: str) -> None:
        super().__init__(f"{category}: {reason}")
        self.category = category
        self.reason = reason


class ExpiringSource(PersonalDataSource, Protocol):
    """A source whose records outlive their purpose in the normal course (the retention job)."""

    async def expire(self, ctx: SourceContext, *, dry_run: bool) -> dict[str, int]:
        """Delete (or, with `dry_run`, only count) what has outlived its period: category -> count;
        `ExpiryRefused` when it must not be deleted."""
        ...


class BatchErasingSource(PersonalDataSource, Protocol):
    """A source that erases many people in a few set-based statements (a batch erasure)."""

    async def erase_many(self, ctx: SourceContext, subjects: Sequence[DataSubject]) -> dict[str, list[Retained]]:
        """`erase` for each subject; what was retained, by subject id."""
        ...


async def erase_all(
    source: PersonalDataSource, ctx: SourceContext, subjects: Sequence[DataSubject]
) -> dict[str, list[Retained]]:
    """Erase `subjects` from `source`: in one batch where the source can, else one by one."""
    many = getattr(source, "erase_many", None)
    if callable(many):
        found: dict[str, list[Retained]] = await many(ctx, subjects)
        return found
    return {s.subject_id: await source.erase(ctx, s) for s in subjects}


class SourceRegistry:
    """The sources the composition root registered, in erasure order."""

    def __init__(self, sources: Iterable[PersonalDataSource] = ()) -> None:
        self._sources: list[PersonalDataSource] = []
        for source in sources:
            self.register(source)

    def register(self, source: PersonalDataSource) -> None:
        if any(s.name == source.name for s in self._sources):
            raise ValueError(f"a personal-data source named {source.name!r} is already registered")
        self._sources.append(source)

    @property
    def sources(self) -> Sequence[PersonalDataSource]:
        return tuple(self._sources)

    def expiring(self) -> list[ExpiringSource]:
        return [s for s in self._sources if callable(getattr(s, "expire", None))]  # type: ignore[misc]

    def covered_tables(self) -> set[str]:
        return {table for source in self._sources for table in source.tables}

    def categories(self) -> set[str]:
        return {category for source in self._sources for category in source.describe()}

    def validate(self, retention: RetentionPolicy) -> None:
        """Start-up check: every category a source names is in the retention policy."""
        retention.require(self.categories())
