"""Everything the gateway builds once at start-up, and closes at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider

from commerce.cart.service import CartRules
from commerce.pricing.cache import PricingCache
from core.broadcast import create_broadcaster
from core.clock import Clock, SystemClock
from core.db import create_engine, session_factory
from core.ratelimit import MemoryBuckets, RedisBuckets
from core.settings import Settings
from gateway import caching
from gateway.admission import Admission, admission_limit
from gateway.caching import CacheHints, InProcessResponseCache, RedisResponseCache, ResponseCache, load_cache_hints
from gateway.channels import ChannelDirectory
from gateway.outage import OutageLog
from gateway.persisted import PersistedDocuments
from gateway.privacy import ErasedCustomers, build_requests
from gateway.telemetry import Telemetry
from gateway.tokens import TokenService
from policies.access import load_policy
from policies.limits import load_limits
from policies.loyalty import loyalty_policy
from schema.authorization import authorize
from schema.compiled import CompiledQueries
from schema.compiled.selfcheck import check as compiled_self_check
from schema.context import Services
from schema.execution import Executor
from schema.ratelimits import RateLimiter
from schema.root import build_schema
from vault.audit import AuditLog
from vault.audit_checkpoints import CheckpointWriter
from vault.keys import load_audit_key
from vault.service import Vault

__all__ = ["Runtime", "build_runtime"]


@dataclass(slots=True, eq=False)
class Runtime:
    settings: Settings
    services: Services
    executor: Executor
    channels: ChannelDirectory
    tokens: TokenService
    telemetry: Telemetry
    persisted: PersistedDocuments
    cache_hints: CacheHints
    erased: ErasedCustomers
    checkpoints: CheckpointWriter  # signed heads of the audit chain, outside the database
    outage: OutageLog  # a database outage logged once per interval, with a count
    admission: Admission  # how many GraphQL requests run at once
    response_cache: ResponseCache | None = None
    # bumped by every catalog or stock change: an answer read before one is not stored after it
    cache_generation: int = 0
    _watches: list[asyncio.Task[None]] | None = None

    def watch_changes(self) -> None:
        """Empty the caches whenever the broadcast says what they hold changed (from the first request)."""
        if self._watches is not None:
            return
        broadcaster = self.services.broadcaster
        self._watches = [
            asyncio.ensure_future(caching.watch(broadcaster, topic, self.on_change))
            for topic in (caching.CATALOG_TOPIC, caching.STOCK_TOPIC, caching.PRICING_TOPIC)
        ]

    def on_change(self, topic: str) -> Awaitable[None] | None:
        if topic in (caching.CATALOG_TOPIC, caching.PRICING_TOPIC):
            self.services.pricing_cache.clear()
        if topic in (caching.CATALOG_TOPIC, caching.STOCK_TOPIC):
            self.services.product_counts.clear()
        cache = self.response_cache
        if topic in (caching.CATALOG_TOPIC, caching.STOCK_TOPIC) and cache is not None:
            self.cache_generation += 1
            if isinstance(cache, InProcessResponseCache):
                cache.forget_all()  # at once: the next request must not be answered from it
                return None
            return cache.clear()
        return None

    async def start(self) -> None:
        """What runs beside the requests: the broadcaster's listener, the audit checkpoints."""
        await self.services.broadcaster.start()
        self.services.signed_in.start()  # hears sign-outs from the first request on
        self.checkpoints.start()

    async def aclose(self) -> None:
        await self.checkpoints.aclose()
        await self.erased.aclose()
        await self.services.signed_in.aclose()
        for task in self._watches or ():
            task.cancel()
        if self.response_cache is not None:
            await self.response_cache.aclose()
        await self.services.broadcaster.aclose()
        await self.services.limiter.aclose()
        await self.services.engine.dispose()
        self.telemetry.shutdown()


def build_runtime(
    settings: Settings, clock: Clock | None = None, tracer_provider: TracerProvider | None = None
) -> Runtime:
    """`tracer_provider` is for tests (an in-memory exporter); by default it follows `OTEL_*`."""
    clock = clock or SystemClock()
    admission = Admission(admission_limit(settings.max_concurrent_requests, settings.database_url))  # checked first
    telemetry = Telemetry.build(settings, tracer_provider)
    CartRules.of(settings)  # a bad cart setting fails at start-up, not on a customer's request
    loyalty_policy()  # so does a bad policies/loyalty.toml (LoyaltyPolicyError names the key)
    engine = create_engine(settings.database_url, echo=settings.database_echo, pool_size=settings.database_pool_size)
    telemetry.instrument_engine(engine)
    tokens = TokenService(settings, clock)
    vault = Vault.from_settings(settings, engine, clock)
    audit_key = load_audit_key(settings)
    audit = AuditLog(engine, clock, audit_key)
    policy = load_policy(settings.policy_file or None)
    broadcaster = create_broadcaster(engine)
    erased = ErasedCustomers(engine, broadcaster, settings.erased_check_ttl_seconds)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        clock=clock,
        tokens=tokens,
        vault=vault,
        policy=policy,
        audit=audit,
        tracer=telemetry.tracer,
        broadcaster=broadcaster,
        pricing_cache=PricingCache(),
        requests=build_requests(settings, engine, vault, clock, audit, erased),  # retention.toml checked here
        limiter=RateLimiter(
            load_limits(settings.limits_file or None),  # a malformed limits file stops start-up here
            RedisBuckets(settings.redis_url, settings.redis_prefix) if settings.redis_url else MemoryBuckets(),
        ),
    )
    executor = Executor(build_schema(), settings)
    authorize(executor.schema, policy)  # an unknown role, type, field or condition stops start-up here
    telemetry.instrument_schema(executor.graphql_schema)  # outermost: root-field spans cover the policy check
    if settings.compiled_queries and compiled_self_check(executor.graphql_schema):
        executor.compiler = CompiledQueries(executor.graphql_schema, settings.document_cache_size)
        executor.compiler.on_fallback = telemetry.metrics.record_fallback
    response_cache: ResponseCache | None = None
    if settings.response_cache:
        response_cache = (
            RedisResponseCache(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else InProcessResponseCache()
        )
    runtime = Runtime(
        settings=settings,
        services=services,
        executor=executor,
        channels=ChannelDirectory(engine),
        tokens=tokens,
        telemetry=telemetry,
        persisted=PersistedDocuments.from_settings(settings),
        cache_hints=load_cache_hints(executor.graphql_schema, settings.cache_policy_file or None),
        response_cache=response_cache,
        erased=erased,
        checkpoints=CheckpointWriter(
            engine,
            audit_key,
            Path(settings.audit_checkpoint_file),
            settings.audit_checkpoint_interval_seconds,
            clock,
        ),
        outage=OutageLog(settings.database_retry_after_seconds),
        admission=admission,
    )
    caching.announce_writes(engine, services.broadcaster, runtime.on_change)
    return runtime
