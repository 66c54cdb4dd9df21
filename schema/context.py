"""What every resolver gets as `info.context`: app-wide services plus this request's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from opentelemetry.trace import NoOpTracer, Tracer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from commerce.catalog.entities import Channel
from commerce.payments.provider import PaymentProvider
from commerce.payments.test_provider import TestPaymentProvider
from core.broadcast import Broadcaster, LocalBroadcaster
from core.clock import Clock
from core.ratelimit import MemoryBuckets
from core.settings import Settings
from policies.access import AccessPolicy
from policies.limits import load_limits
from policies.principal import ANONYMOUS, Principal
from schema.loaders import Loaders
from schema.ratelimits import RateLimiter
from vault.audit import AuditLog
from vault.requests.service import DataSubjectRequests
from vault.service import Vault

__all__ = ["Context", "Services"]


class Token(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def expires_at(self) -> datetime: ...


class Tokens(Protocol):
    """Issues signed access tokens (implemented in `gateway.tokens`)."""

    def issue(self, principal: Principal, ttl: timedelta, generation: int = 0) -> Token: ...

    def verify_session(self, token: str) -> tuple[Principal, Any]: ...  # (bearer, TokenSession | None)


@dataclass(slots=True, eq=False)
class Services:
    """Built once by `gateway` at start-up and shared by every request."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    tokens: Tokens
    vault: Vault
    policy: AccessPolicy  # policies/access.toml, checked against the schema at start-up
    audit: AuditLog  # who accessed whose data (written by schema.authorization)
    tracer: Tracer = field(default_factory=NoOpTracer)  # the runtime's: for a span of one's own
    broadcaster: Broadcaster = field(default_factory=LocalBroadcaster)  # "cart X changed", across replicas
    payments: PaymentProvider = field(default_factory=TestPaymentProvider)  # card and BLIK (test: see its module)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(load_limits(), MemoryBuckets()))
    requests: DataSubjectRequests | None = None  # data-subject requests over every registered source


@dataclass(slots=True, eq=False)
class Context:
    services: Services
    channel: Channel
    principal: Principal = ANONYMOUS
    request: Any = None
    loaders: Loaders = field(init=False)
    # audited accesses seen while executing: (operation, type, subject, outcome) -> fields
    # customers this request created: their registrant may read them (condition `created_in_request`)
    created_subjects: set[str] = field(init=False, default_factory=set)
    audit_records: dict[tuple[str, str, str, str], set[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services.engine, currency=self.channel.currency, vault=self.services.vault)

    @property
    def settings(self) -> Settings:
        return self.services.settings
