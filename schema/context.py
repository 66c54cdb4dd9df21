"""What every resolver gets as `info.context`: app-wide services plus this request's facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from opentelemetry.trace import NoOpTracer, Tracer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from commerce.catalog.counts import CountCache
from commerce.catalog.entities import Channel
from commerce.customers.sessions import SignedIn
from commerce.payments.provider import PaymentProvider
from commerce.payments.test_provider import TestPaymentProvider
from commerce.pricing.cache import PricingCache
from core.broadcast import Broadcaster, LocalBroadcaster
from core.clock import Clock
from core.db import Connectable, ReadScope
from core.ratelimit import MemoryBuckets
from core.settings import Settings
from policies.access import AccessPolicy
from policies.limits import load_limits
from policies.principal import ANONYMOUS, Principal
from schema.cart_feed import CartFeeds
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
    pricing_cache: PricingCache = field(default_factory=PricingCache)  # emptied on change (gateway.runtime)
    product_counts: CountCache = field(default_factory=CountCache)  # totalCount per filter, emptied likewise
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(load_limits(), MemoryBuckets()))
    requests: DataSubjectRequests | None = None  # data-subject requests over every registered source
    cart_feeds: CartFeeds | None = None  # `cartUpdated`'s one reader per followed cart (built with the broadcaster)
    signed_in: SignedIn = field(init=False)  # whether a customer token still signs in, kept a short while

    def __post_init__(self) -> None:
        if self.cart_feeds is None:
            self.cart_feeds = CartFeeds(self.broadcaster, self.settings.ws_max_subscriptions_per_cart)
        self.signed_in = SignedIn(self.engine, self.broadcaster, self.settings.session_check_ttl_seconds)


@dataclass(slots=True, eq=False)
class Context:
    services: Services
    channel: Channel
    principal: Principal = ANONYMOUS
    request: Any = None
    read_only: bool = False  # a query: its catalog reads share one connection and transaction (`reads`)
    reads: Connectable = field(init=False)
    loaders: Loaders = field(init=False)
    # audited accesses seen while executing: (operation, type, subject, outcome) -> fields
    # customers this request created: their registrant may read them (condition `created_in_request`)
    created_subjects: set[str] = field(init=False, default_factory=set)
    audit_records: dict[tuple[str, str, str, str], set[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        engine = self.services.engine
        self.reads = ReadScope(engine) if self.read_only else engine
        self.loaders = Loaders(engine, currency=self.channel.currency, vault=self.services.vault, reads=self.reads)

    async def aclose(self) -> None:
        """Return the request's read connection to the pool (after execution, whatever happened)."""
        if isinstance(self.reads, ReadScope):
            await self.reads.aclose()

    @property
    def settings(self) -> Settings:
        return self.services.settings
