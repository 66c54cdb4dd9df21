"""The ASGI application: GraphQL over HTTP and WebSocket on /graphql, a health check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from core.clock import Clock
from core.settings import Settings
from gateway.graphql_http import graphql_endpoint
from gateway.graphql_ws import GraphQLWebSocket
from gateway.mail import background_mail
from gateway.pages import page_routes
from gateway.runtime import Runtime, build_runtime

__all__ = ["create_app"]


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings, clock: Clock | None = None, runtime: Runtime | None = None) -> Starlette:
    runtime = runtime or build_runtime(settings, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.services.broadcaster.start()
        async with background_mail(runtime.services):
            yield
        await runtime.aclose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", GraphQLWebSocket(runtime)),
            Route("/health", health, methods=["GET"]),
            *page_routes(console=settings.console),
        ],
        lifespan=lifespan,
        middleware=[Middleware(runtime.telemetry.asgi)],  # the one SERVER span per request
    )
    app.state.runtime = runtime
    return app
