"""Everything the gateway builds once at start-up, and closes at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider

from commerce.cart.service import CartRules
from core.broadcast import create_broadcaster
from core.clock import Clock, SystemClock
from core.db import create_engine, session_factory
from core.ratelimit import MemoryBuckets, RedisBuckets
from core.settings import Settings
from gateway.channels import ChannelDirectory
from gateway.privacy import ErasedCustomers, build_requests
from gateway.telemetry import Telemetry
from gateway.tokens import TokenService
from policies.access import load_policy
from policies.limits import load_limits
from policies.loyalty import loyalty_policy
from schema.authorization import authorize
from schema.compiled import CompiledQueries
from schema.context import Services
from schema.execution import Executor
from schema.ratelimits import RateLimiter
from schema.root import build_schema
from vault.audit import AuditLog
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
    erased: ErasedCustomers

    async def aclose(self) -> None:
        await self.erased.aclose()
        await self.services.broadcaster.aclose()
        await self.services.limiter.aclose()
        await self.services.engine.dispose()
        self.telemetry.shutdown()


def build_runtime(
    settings: Settings, clock: Clock | None = None, tracer_provider: TracerProvider | None = None
) -> Runtime:
    """`tracer_provider` is for tests (an in-memory exporter); by default it follows `OTEL_*`."""
    clock = clock or SystemClock()
    telemetry = Telemetry.build(settings, tracer_provider)
    CartRules.of(settings)  # a bad cart setting fails at start-up, not on a customer's request
    loyalty_policy()  # so does a bad policies/loyalty.toml (LoyaltyPolicyError names the key)
    engine = create_engine(settings.database_url, echo=settings.database_echo, pool_size=settings.database_pool_size)
    telemetry.instrument_engine(engine)
    tokens = TokenService(settings, clock)
    vault = Vault.from_settings(settings, engine, clock)
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
        audit=AuditLog(engine, clock),
        tracer=telemetry.tracer,
        broadcaster=broadcaster,
        requests=build_requests(settings, engine, vault, clock, erased),  # retention.toml checked here
        limiter=RateLimiter(
            load_limits(settings.limits_file or None),  # a malformed limits file stops start-up here
            RedisBuckets(settings.redis_url, settings.redis_prefix) if settings.redis_url else MemoryBuckets(),
        ),
    )
    executor = Executor(build_schema(), settings)
    authorize(executor.schema, policy)  # an unknown role, type, field or condition stops start-up here
    telemetry.instrument_schema(executor.graphql_schema)  # outermost: root-field spans cover the policy check
    if settings.compiled_queries:
        executor.compiler = CompiledQueries(executor.graphql_schema, settings.document_cache_size)
    return Runtime(
        settings=settings,
        services=services,
        executor=executor,
        channels=ChannelDirectory(engine),
        tokens=tokens,
        telemetry=telemetry,
        erased=erased,
    )
