"""GraphQL over WebSocket (graphql-transport-ws) on /graphql: subscriptions, and any operation.

strawberry's ASGI view speaks the protocol; every operation runs through our `Executor`, as
over HTTP: the same parse cache, validation limits, introspection switch, masked errors,
and the audit of operators' accesses (written before the result is sent, per event for a
subscription). Each operation gets a `Context` of its own (fresh loaders, its own audit).
The principal comes from the `connection_init` payload's `Authorization` (browsers cannot set
WebSocket headers), else from the handshake headers; the channel likewise from `X-Channel`.
A bad token or channel refuses the connection (close 4403), as does an operator's channel named
by someone else (the close reason: `CHANNEL_NOT_ALLOWED: ...`, who may use it); once the token
expires, a subscription ends with UNAUTHENTICATED instead of serving its next event.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

from graphql import ExecutionResult, GraphQLError, OperationType
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult as StrawberryResult

from gateway.auth import AuthenticationError, authenticate
from gateway.channels import CHANNEL_NOT_ALLOWED, channel_refusal
from gateway.graphql_http import HttpProblem, check_params
from gateway.persisted import PersistedQueryError
from gateway.runtime import Runtime
from gateway.telemetry import execute_traced
from schema.authorization import AuditUnavailable, write_audit
from schema.context import Context
from schema.execution import RequestError, current_trace_id

__all__ = ["GraphQLWebSocket"]

logger = logging.getLogger("omnigate.graphql.ws")


@dataclass(slots=True, eq=False)
class SocketContext(Context):
    """The connection's facts: `Context` plus the `connection_init` payload (strawberry fills it in)."""

    connection_params: Any = None
    authorization: str | None = None  # checked again before every operation and event


def _param(params: Any, name: str) -> str | None:
    if not isinstance(params, dict):
        return None
    for key, value in params.items():
        if isinstance(key, str) and key.lower() == name.lower() and isinstance(value, str):
            return value
    return None


class _Refused(Exception):
    """The connection is refused with a reason the client can read (strawberry's rejection says "Forbidden")."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        # a close frame's reason holds 123 bytes at most
        self.reason = f"{code}: {message}".encode()[:123].decode(errors="ignore")


class _Handler(BaseGraphQLTransportWSHandler):
    """Runs each operation with `GraphQLWebSocket.serve_operation` (our executor) instead of strawberry's.

    strawberry's `Operation` keeps no `extensions`, and its `subscribe` handling needs a `query`:
    a persisted query's hash (APQ, trusted documents) is kept here, by operation id, for the run.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._extensions: dict[str, dict[str, Any]] = {}

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except _Refused as refused:  # raised by `on_ws_connect` before strawberry acknowledged anything
            await self.websocket.close(code=4403, reason=refused.reason)

    async def handle_subscribe(self, message: Any) -> None:
        payload = message["payload"]
        extensions = payload.get("extensions") if isinstance(payload, dict) else None
        if isinstance(extensions, dict) and "query" not in payload:  # a hash alone
            message = {**message, "payload": {**payload, "query": None}}
        before = self.operations.get(message["id"])
        await super().handle_subscribe(message)
        started = self.operations.get(message["id"])
        if isinstance(extensions, dict) and started is not None and started is not before:
            self._extensions[started.id] = extensions  # its task has not run yet: it takes them first

    async def cleanup_operation(self, operation_id: str) -> None:
        """A `complete` may cancel an operation before its task ran: its extensions go with it."""
        self._extensions.pop(operation_id, None)
        await super().cleanup_operation(operation_id)

    async def run_operation(self, operation: Operation) -> None:
        extensions = self._extensions.pop(operation.id, None)
        try:
            view = cast("GraphQLWebSocket", self.view)
            await view.serve_operation(operation, cast("SocketContext", self.context), extensions)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except Exception as error:
            # The type and the stack, never the message: it may quote personal data.
            logger.error(
                "WebSocket operation failed: %s\n%s",
                type(error).__name__,
                "".join(traceback.format_tb(error.__traceback__)),
            )
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)


def _unauthenticated() -> GraphQLError:
    return GraphQLError(
        "The token no longer works (expired or signed out): sign in again.", extensions={"code": "UNAUTHENTICATED"}
    )


class GraphQLWebSocket(GraphQL):
    """The WebSocket half of /graphql; HTTP stays with `graphql_http` (our executor)."""

    graphql_transport_ws_handler_class = _Handler

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(
            runtime.executor.schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=runtime.settings.ws_max_operations_per_connection,
        )
        self.runtime = runtime
        self._connections: Counter[str] = Counter()  # open WebSockets per client address, in this process

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A client over `ws_max_connections_per_client` open WebSockets is refused at the handshake (HTTP 403)."""
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        if self._connections[client] >= self.runtime.settings.ws_max_connections_per_client:
            await receive()  # the websocket.connect event
            await send({"type": "websocket.close", "code": 1008})
            return
        self._connections[client] += 1
        try:
            await super().__call__(scope, *_bounded_messages(receive, send, self.runtime.settings.max_body_bytes))
        finally:
            self._connections[client] -= 1
            if not self._connections[client]:
                del self._connections[client]

    async def get_context(self, request: Any, response: Any) -> SocketContext:  # type: ignore[override]
        channel = await self.runtime.channels.get(None)
        if channel is None:
            raise RuntimeError("the default channel must exist")
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
        refusal = channel_refusal(self.runtime.services.policy, principal, channel)
        if refusal is not None:
            raise _Refused(CHANNEL_NOT_ALLOWED, refusal)
        context.channel = channel
        context.principal = principal
        context.authorization = authorization if not principal.is_anonymous else None

    async def _expired(self, connection: SocketContext) -> bool:
        """The connection's token no longer authenticates, as over HTTP: it expired, was signed out
        (sign-out, a password change) or its customer was erased (GDPR Art. 17). It stops at once."""
        if connection.authorization is None:
            return False
        try:
            await authenticate(connection.authorization, self.runtime)
        except AuthenticationError:
            return True
        return False

    async def serve_operation(
        self, operation: Operation, connection: SocketContext, extensions: dict[str, Any] | None = None
    ) -> None:
        """One operation: an `error` message when it cannot run, else its result(s) as `next`."""
        try:
            await self._serve(operation, connection, extensions)
        except AuditUnavailable as failure:  # the result is withheld, as over HTTP
            await operation.send_initial_errors([failure])

    async def _serve(self, operation: Operation, connection: SocketContext, extensions: dict[str, Any] | None) -> None:
        executor, persisted = self.runtime.executor, self.runtime.persisted
        try:
            document, to_register = persisted.resolve(operation.query, extensions)  # trusted-only holds here too
            query, operation_name, variables = check_params(
                {"query": document, "operationName": operation.operation_name, "variables": operation.variables}
            )
            prepared = executor.prepare(query, operation_name)
        except PersistedQueryError as refused:
            await operation.send_initial_errors([refused.error])
            return
        except HttpProblem as problem:
            await operation.send_initial_errors([problem.error])
            return
        except RequestError as failure:
            await operation.send_initial_errors(failure.errors)
            return
        if to_register is not None:
            persisted.register(to_register, query)
        if await self._expired(connection):
            await operation.send_initial_errors([_unauthenticated()])
            return
        context = Context(
            services=self.runtime.services,
            channel=connection.channel,
            principal=connection.principal,
            request=connection.request,
        )
        if prepared.operation_type is not OperationType.SUBSCRIPTION:
            try:
                result = await execute_traced(self.runtime, prepared, variables, context)
            except RequestError as failure:
                await write_audit(context, current_trace_id())
                await operation.send_initial_errors(failure.errors)
                return
            await write_audit(context, current_trace_id())
            await operation.send_next(_for_strawberry(result))
            return
        events = await executor.subscribe(prepared, variables, context)
        if isinstance(events, ExecutionResult):  # refused, or the variables do not fit
            await write_audit(context, current_trace_id())
            await operation.send_initial_errors(events.errors or [])
            return
        try:
            async for result in events:
                if await self._expired(connection):  # the last event: no data, UNAUTHENTICATED; then `complete`
                    context.audit_records.clear()  # nothing of this event is shown
                    await operation.send_next(StrawberryResult(data=None, errors=[_unauthenticated()]))
                    return
                await write_audit(context, current_trace_id())
                await operation.send_next(_for_strawberry(result))
        finally:
            await events.aclose()


TOO_BIG = 1009  # RFC 6455: a message too big to process


def _bounded_messages(receive: Receive, send: Send, limit: int) -> tuple[Receive, Send]:
    """`receive` and `send` for a socket whose messages may be no larger than an HTTP body
    (`max_body_bytes`): a larger one closes it (1009) unread, as a body is refused with 413.
    The server's own limit (uvicorn's 16 MiB) let one message carry 16 times a POST's variables."""
    closed = False

    async def bounded_receive() -> Any:
        nonlocal closed
        message = await receive()
        if message["type"] == "websocket.receive":
            text, data = message.get("text"), message.get("bytes")
            size = len(data) if data is not None else len(text or "")
            if text is not None and size <= limit < 4 * size:  # characters: count the UTF-8 only when it may matter
                size = len(text.encode("utf-8", "surrogatepass"))
            if size > limit:
                closed = True
                await send({"type": "websocket.close", "code": TOO_BIG, "reason": "message too big"})
                return {"type": "websocket.disconnect", "code": TOO_BIG}
        return message

    async def guarded_send(message: Any) -> None:
        if not closed:  # the socket is closed: nothing more goes out
            await send(message)

    return bounded_receive, guarded_send


def _for_strawberry(result: ExecutionResult) -> StrawberryResult:
    """graphql-core's result (what our executor returns) in the shape strawberry's protocol sends."""
    return StrawberryResult(data=result.data, errors=result.errors, extensions=result.extensions)
