"""Everything the gateway builds once at start-up, and closes at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from commerce.cart.service import CartRules
from core.broadcast import create_broadcaster
from core.clock import Clock, SystemClock
from core.db import create_engine, session_factory
from core.settings import Settings
from gateway.channels import ChannelDirectory
from gateway.tokens import TokenService
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
        await self.services.broadcaster.aclose()
        await self.services.engine.dispose()


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    CartRules.of(settings)  # a bad cart setting fails at start-up, not on a customer's request
    engine = create_engine(settings.database_url, echo=settings.database_echo, pool_size=settings.database_pool_size)
    tokens = TokenService(settings, clock)
    services = Services(settings=settings, engine=engine, sessions=session_factory(engine), clock=clock, tokens=tokens,
                        broadcaster=create_broadcaster(engine))
    return Runtime(
        settings=settings,
        services=services,
        executor=Executor(build_schema(), settings),
        channels=ChannelDirectory(engine),
        tokens=tokens,
    )
