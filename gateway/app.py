"""The ASGI application: GraphQL over HTTP and WebSocket on /graphql, liveness and readiness
checks, and the Prometheus scrape endpoint when it is on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from core.clock import Clock
from core.db import is_database_unavailable, ping
from core.settings import Settings
from gateway.graphql_http import graphql_endpoint
from gateway.graphql_ws import GraphQLWebSocket
from gateway.mail import background_mail
from gateway.pages import page_routes
from gateway.runtime import Runtime, build_runtime

__all__ = ["create_app"]


async def health(request: Request) -> JSONResponse:
    """Liveness: the process serves requests. Says nothing of the database (a restart would not help)."""
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers within OMNIGATE_DATABASE_TIMEOUT_SECONDS; else 503, retry later."""
    runtime: Runtime = request.app.state.runtime
    try:
        await ping(runtime.services.engine, runtime.settings.database_timeout_seconds)
    except Exception as error:
        if not (isinstance(error, TimeoutError) or is_database_unavailable(error)):
            raise
        retry_after = str(runtime.settings.database_retry_after_seconds)
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503, {"Retry-After": retry_after})
    return JSONResponse({"status": "ready", "database": "ok"})


async def metrics(request: Request) -> Response:
    """The metrics in Prometheus' text format (OMNIGATE_METRICS_PROMETHEUS=true)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    runtime: Runtime = request.app.state.runtime
    return Response(runtime.telemetry.metrics.scrape(), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings, clock: Clock | None = None, runtime: Runtime | None = None) -> Starlette:
    runtime = runtime or build_runtime(settings, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        async with background_mail(runtime.services):
            yield
        await runtime.aclose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", GraphQLWebSocket(runtime)),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            *([Route("/metrics", metrics, methods=["GET"])] if runtime.telemetry.metrics.prometheus else []),
            *page_routes(console=settings.console),
        ],
        lifespan=lifespan,
        middleware=[Middleware(runtime.telemetry.asgi)],  # the one SERVER span per request
    )
    app.state.runtime = runtime
    return app
