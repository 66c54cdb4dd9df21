"""GraphQL subscriptions over WebSocket (graphql-transport-ws) on /graphql.

strawberry's ASGI view speaks the protocol; it runs the same schema object as the HTTP
executor, with our `Context`. The principal comes from the `connection_init` payload's
`Authorization` (browsers cannot set WebSocket headers), else from the handshake headers;
the channel likewise from `X-Channel`. A bad token or channel refuses the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError

from gateway.auth import AuthenticationError, authenticate
from gateway.runtime import Runtime
from schema.context import Context
from schema.execution import mask_errors

__all__ = ["GraphQLWebSocket"]


@dataclass(slots=True, eq=False)
class SocketContext(Context):
    """`Context` plus the `connection_init` payload, which strawberry fills in."""

    connection_params: Any = None


def _param(params: Any, name: str) -> str | None:
    if not isinstance(params, dict):
        return None
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == name.lower() and isinstance(value, str):
            return value
    return None


class _MaskingHandler(BaseGraphQLTransportWSHandler):
    """Unexpected errors in a subscription are masked as over HTTP (`schema.execution.mask_errors`)."""

    async def _send_result_stream(self, operation: Any, result_source: Any) -> None:
        async def masked() -> AsyncIterator[Any]:
            async for result in result_source:
                if isinstance(result, ExecutionResult) and not isinstance(result, PreExecutionError):
                    result.errors = mask_errors(result.errors)
                yield result

        await super()._send_result_stream(operation, masked())


class GraphQLWebSocket(GraphQL):
    """The WebSocket half of /graphql; HTTP stays with `graphql_http` (our executor)."""

    graphql_transport_ws_handler_class = _MaskingHandler

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime.executor.schema, graphql_ide=None, subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,))
        self.runtime = runtime

    async def get_context(self, request: Any, response: Any) -> SocketContext:  # type: ignore[override]
        channel = await self.runtime.channels.get(None)
        assert channel is not None, "the default channel must exist"
        return SocketContext(services=self.runtime.services, channel=channel, request=request)

    async def on_ws_connect(self, context: SocketContext) -> None:  # type: ignore[override]
        websocket: WebSocket = context.request
        params = context.connection_params
        channel_code = _param(params, "X-Channel") or websocket.headers.get("x-channel")
        channel = await self.runtime.channels.get(channel_code)
        if channel is None:
            raise ConnectionRejectionError({"code": "UNKNOWN_CHANNEL"})
        authorization = _param(params, "Authorization") or websocket.headers.get("authorization")
        try:
            principal = await authenticate(authorization, self.runtime)
        except AuthenticationError:
            raise ConnectionRejectionError({"code": "UNAUTHENTICATED"}) from None
        context.channel = channel
        context.principal = principal  # loaders are rebuilt per event by the subscription

        async def credentials_hold() -> bool:  # the same token, checked again (expiry) per event
            try:
                return await authenticate(authorization, self.runtime) == principal
            except AuthenticationError:
                return False

        context.credentials_hold = credentials_hold
