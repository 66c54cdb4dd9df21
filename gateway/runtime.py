"""Everything the gateway builds once at start-up, and closes at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from core.clock import Clock, SystemClock
from core.db import create_engine, session_factory
from core.settings import Settings
from gateway.channels import ChannelDirectory
from gateway.tokens import TokenService
from schema.compiled import CompiledQueries
from schema.context import Services
from schema.execution import Executor
from schema.root import build_schema

__all__ = ["Runtime", "build_runtime"]


@dataclass(slots=True, eq=False)
class Runtime:
    settings: Settings
    services: Services
    executor: Executor
    channels: ChannelDirectory
    tokens: TokenService

    async def aclose(self) -> None:
        await self.services.engine.dispose()


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url, echo=settings.database_echo, pool_size=settings.database_pool_size)
    tokens = TokenService(settings, clock)
    services = Services(settings=settings, engine=engine, sessions=session_factory(engine), clock=clock, tokens=tokens)
    executor = Executor(build_schema(), settings)
    if settings.compiled_queries:
        executor.compiler = CompiledQueries(executor.graphql_schema, settings.document_cache_size)
    return Runtime(
        settings=settings,
        services=services,
        executor=executor,
        channels=ChannelDirectory(engine),
        tokens=tokens,
    )
