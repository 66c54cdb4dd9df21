"""The composition root of data-subject requests: which contexts hold personal data (the
registered sources, in erasure order), the request service, and the check that refuses an
erased customer's tokens at once.

A new context holding personal data adds its source to `personal_data_sources`;
tests/test_personal_references.py fails until every table with a `customer_key` or
`subject_id` column is covered by one.
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.cart.privacy import CartSource
from commerce.cart.service import CartRules
from commerce.customers import service as customers
from commerce.customers.account_privacy import AccountSecuritySource
from commerce.customers.privacy import CustomerSource
from commerce.loyalty.privacy import LoyaltySource
from commerce.notifications.privacy import EmailOutboxSource
from commerce.orders.privacy import OrderSource
from commerce.pricing.privacy import PersonalOfferSource, PromotionUsageSource
from commerce.recommendations.privacy import RecommendationInputSource
from core.broadcast import Broadcaster, ForgetOnMessage
from core.clock import Clock
from core.settings import Settings
from policies.retention import RetentionPolicy, load_retention_policy, retention_policy
from vault.audit import AuditLog
from vault.requests.ledger import ErasureLedger
from vault.requests.service import DataSubjectRequests
from vault.requests.sources import DataSubject, SourceContext, SourceRegistry
from vault.requests.vault_sources import AccessLogSource, ConsentSource, KeySource, RequestSource
from vault.service import Vault

__all__ = ["ERASED_TOPIC", "ErasedCustomers", "build_requests", "load_retention", "personal_data_sources"]

ERASED_TOPIC = "vault.subject-erased"


def personal_data_sources(settings: Settings | None = None) -> SourceRegistry:
    """Every context's personal-data source, in erasure order: the data first, then the profile
    (its key shredded), then what is kept as proof (consents, access log, the requests)."""
    settings = settings or Settings()
    return SourceRegistry(
        [
            CartSource(CartRules.of(settings)),
            PromotionUsageSource(),
            OrderSource(),
            LoyaltySource(),
            RecommendationInputSource(),
            PersonalOfferSource(),
            AccountSecuritySource(),
            EmailOutboxSource(),
            CustomerSource(),
            KeySource(),
            ConsentSource(),
            AccessLogSource(),
            RequestSource(),
        ]
    )


def load_retention(settings: Settings) -> RetentionPolicy:
    return load_retention_policy(settings.retention_file) if settings.retention_file else retention_policy()


class ErasedCustomers:
    """Whether a customer token's customer was erased, answered from a short cache.

    An erasure clears this replica's cache at once and broadcasts to every other replica
    (LISTEN/NOTIFY on PostgreSQL), which clear theirs; `ttl` bounds how long a replica that
    missed the message (or a separate process, e.g. the CLI on SQLite) may answer from memory.
    """

    def __init__(self, engine: AsyncEngine, broadcaster: Broadcaster, ttl: float) -> None:
        self._engine = engine
        self._broadcaster = broadcaster
        self._ttl = ttl
        self._known: dict[int, tuple[bool, float]] = {}
        self._epoch = 0  # moves on every forget: a read that raced with an erasure is not kept
        self._listener = ForgetOnMessage(broadcaster, ERASED_TOPIC, self.forget)

    async def is_erased(self, customer_key: int) -> bool:
        self._listener.listen()
        cached = self._known.get(customer_key)
        now = time.monotonic()
        if cached is not None and (cached[0] or now - cached[1] < self._ttl):
            return cached[0]
        epoch = self._epoch
        erased = customer_key in await customers.erased_among(self._engine, [customer_key])
        if epoch == self._epoch:
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[customer_key] = (erased, now)
        return erased

    def forget(self) -> None:
        self._epoch += 1
        self._known.clear()

    async def erased(self, subject: DataSubject) -> None:
        """Called by the request service after an erasure: here now, elsewhere by broadcast."""
        self.forget()
        await self._broadcaster.publish(ERASED_TOPIC, str(subject.customer_key))

    async def aclose(self) -> None:
        await self._listener.aclose()


def build_requests(
    settings: Settings,
    engine: AsyncEngine,
    vault: Vault,
    clock: Clock,
    audit: AuditLog,
    erased: ErasedCustomers | None = None,
) -> DataSubjectRequests:
    """The request service over every registered source; the retention policy checked against them.
    `audit` is the access log the retention job prunes (the caller's own, under its key)."""
    retention = load_retention(settings)
    registry = personal_data_sources(settings)
    registry.validate(retention)
    return DataSubjectRequests(
        SourceContext(
            engine=engine,
            vault=vault,
            clock=clock,
            retention=retention,
            audit=audit,
        ),
        registry,
        ErasureLedger(settings.erasure_ledger_file),
        on_erased=erased.erased if erased is not None else None,
    )
