"""GraphQL over HTTP (the GraphQL-over-HTTP spec): media types, status codes, GET for queries only.

`application/graphql-response+json` is answered when the client accepts it: then a request
that cannot run (unparsable, invalid, unknown channel) is a 4xx. With `application/json`
(legacy clients) well-formed requests get 200 and the errors in the body. A refusal of who
asks is a 4xx whatever the client accepts: a bad token 401, an operator's channel named by
someone else 403 (`CHANNEL_NOT_ALLOWED`, before anything runs or any cached answer is served).
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from core.db import is_database_unavailable
from gateway import caching
from gateway.auth import AuthenticationError, authenticate
from gateway.channels import CHANNEL_NOT_ALLOWED, channel_refusal
from gateway.pages import graphiql_page
from gateway.persisted import PersistedQueryError
from gateway.runtime import Runtime
from gateway.telemetry import execute_traced, record_refused
from schema.authorization import AuditUnavailable, write_audit
from schema.context import Context
from schema.execution import SERVICE_UNAVAILABLE, RequestError, current_trace_id, unavailable_error
from schema.ratelimits import RATE_LIMITED

__all__ = ["HttpProblem", "check_params", "graphql_endpoint"]

logger = logging.getLogger("omnigate.http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
HTTP_UNAVAILABLE = 503


@lru_cache(maxsize=64)
def _negotiate(accept: str) -> str | None:
    """The response media type, or None when the client accepts neither.

    `application/graphql-response+json` wherever it is listed (the spec's preference), else
    `application/json` (also for `*/*`); a type given `q=0` is one the client refuses.
    Remembered per Accept value, as a client sends the same each time (a few: bounded, clients choose it).
    """
    if not accept:
        return JSON
    accepted = set()
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        if not any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params):
            accepted.add(media)
    if GRAPHQL_RESPONSE in accepted:
        return GRAPHQL_RESPONSE
    return JSON if accepted & {JSON, "application/*", "*/*"} else None


# GET and HEAD carry the request in the URL and may only run queries. Starlette answers HEAD on
# every GET route, so HEAD must be held to GET's rules, or a body sent with it would run a mutation.
URL_METHODS = frozenset({"GET", "HEAD"})


def _error_body(errors: list[GraphQLError]) -> dict[str, Any]:
    return {"errors": [e.formatted for e in errors]}


def _respond(
    body: dict[str, Any], media_type: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """`private, no-store` unless `headers` say otherwise: an error or a personal answer is never
    kept by a shared cache (a CDN keeping PERSISTED_QUERY_NOT_FOUND would defeat APQ over GET)."""
    kept = {"Cache-Control": caching.NO_STORE, **(headers or {})}
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=kept)


def _request_error(errors: list[GraphQLError], media_type: str) -> Response:
    """A well-formed request that cannot run: 400, or 200 for legacy `application/json` clients."""
    return _respond(_error_body(errors), media_type, 400 if media_type == GRAPHQL_RESPONSE else 200)


def _http_problem(problem: HttpProblem, media_type: str) -> Response:
    """Not a GraphQL-over-HTTP request at all (bad JSON, wrong types): 4xx whatever the client accepts."""
    return _respond(_error_body([problem.error]), media_type, problem.status)


async def _read_body(request: Request, headers: _Headers, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is larger than `limit` (declared or streamed).

    Read off `receive` as `Request.stream()` reads it (a disconnect raises ClientDisconnect),
    without an async generator resumed three times for a one-message body. Nothing else reads
    the body of a GraphQL request.
    """
    declared = headers.get(b"content-length")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HttpProblem(413, f"The body is larger than {limit} bytes.", "PAYLOAD_TOO_LARGE")
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HttpProblem(413, f"The body is larger than {limit} bytes.", "PAYLOAD_TOO_LARGE")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    return b"".join(chunks)


async def _read_params(request: Request, headers: _Headers, body: bytes | HttpProblem | None) -> dict[str, Any]:
    """The request's parameters: from the URL, or from the POST `body` read (or refused) beforehand."""
    if request.method in URL_METHODS:
        params: dict[str, Any] = dict(request.query_params)
        for name in ("variables", "extensions"):
            if name in params:
                try:
                    params[name] = orjson.loads(params[name]) if params[name] else None
                except orjson.JSONDecodeError:
                    raise HttpProblem(400, f"`{name}` must be a JSON object.") from None
        return params
    content_type = headers.get(b"content-type").split(";")[0].strip().lower()
    if content_type not in (JSON, GRAPHQL_RESPONSE):
        raise HttpProblem(415, "POST a JSON body with Content-Type: application/json.")
    if isinstance(body, HttpProblem):
        raise body
    try:
        params = orjson.loads(body or b"")
    except orjson.JSONDecodeError:  # also undecodable UTF-8
        raise HttpProblem(400, "The body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise HttpProblem(400, "The body must be a JSON object with `query`.")
    return params


class _Headers:
    """The request's headers by name, each the first of its name as Starlette's `Headers.get`
    answers: one dict for the six an answer reads, where `Headers.get` scans the list per lookup
    and raises (and catches) a KeyError for each header that is missing, as most are."""

    __slots__ = ("_by_name",)

    def __init__(self, raw: Any) -> None:
        self._by_name: dict[bytes, bytes] = dict(reversed(raw if isinstance(raw, list) else list(raw)))

    def get(self, name: bytes) -> str:
        """The header `name` (lower case), or "" when it was not sent."""
        value = self._by_name.get(name)
        return "" if value is None else value.decode("latin-1")

    def optional(self, name: bytes) -> str | None:
        value = self._by_name.get(name)
        return None if value is None else value.decode("latin-1")


class HttpProblem(Exception):
    """The request is not a well-formed GraphQL request (its `error` says why; `status` for HTTP)."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.status = status
        self.error = GraphQLError(message, extensions={"code": code})


def check_params(params: dict[str, Any]) -> tuple[str, str | None, dict[str, Any] | None]:
    """`query`, `operationName` and `variables` of a request, each of its proper JSON type (else HttpProblem)."""
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        raise HttpProblem(400, "`query` must be a non-empty string.")
    operation_name = params.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise HttpProblem(400, "`operationName` must be a string.")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise HttpProblem(400, "`variables` must be a JSON object.")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise HttpProblem(400, "`extensions` must be a JSON object.")
    return query, operation_name, variables


def _is_mutation(query: str, operation_name: str | None, max_tokens: int) -> bool:
    """Whether the operation to run is a mutation, judged from the parse alone (for GET's 405)."""
    try:
        document = parse(query, max_tokens=max_tokens, no_location=True)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [op for op in operations if op.name and op.name.value == operation_name]
    return len(operations) == 1 and operations[0].operation is OperationType.MUTATION


def _get_refused(media_type: str) -> Response:
    error = GraphQLError(
        "Only queries may be sent with GET; POST mutations.", extensions={"code": "METHOD_NOT_ALLOWED"}
    )
    return _respond(_error_body([error]), media_type, 405, headers={"Allow": "POST"})


def _throttled(error: GraphQLError) -> bool:
    return (error.extensions or {}).get("code") == RATE_LIMITED


class _GraphQLEndpoint:
    """The /graphql route's ASGI app: each request answered by `_answer`.

    An ASGI app rather than a `func(request)` endpoint: Starlette runs those through
    `request_response`, which builds two closures a request and wraps them in a second
    exception-handler layer, the very handlers `ExceptionMiddleware` around the router already
    applies (an HTTPException raised here still becomes its response there).
    """

    __name__ = "graphql_endpoint"  # the route's name, as when this was a function

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        runtime: Runtime = request.app.state.runtime
        headers = _Headers(scope["headers"])
        body: bytes | HttpProblem | None = None
        if request.method not in URL_METHODS:
            # Read before taking a slot: a client uploading slowly (or not at all) would hold one
            # idle, and with the 2 slots of SQLite two such clients stalled every request.
            try:
                body = await _read_body(request, headers, runtime.settings.max_body_bytes)
            except HttpProblem as problem:
                body = problem  # answered in turn, in the media type the client accepts
            except ClientDisconnect:
                return
        async with runtime.admission.slot():
            try:
                response = await _answer(request, runtime, headers, body)
            except ClientDisconnect:
                return  # the client left (often while queued for a slot): nobody to answer, nothing to log
            await response(scope, receive, send)


graphql_endpoint = _GraphQLEndpoint()


async def _answer(request: Request, runtime: Runtime, headers: _Headers, body: bytes | HttpProblem | None) -> Response:
    """A GraphQL request; 503 with Retry-After (SERVICE_UNAVAILABLE, retryable) while the database is away."""
    runtime.watch_changes()
    try:
        response = await _graphql(request, runtime, headers, body)
    except Exception as error:
        if not is_database_unavailable(error):
            raise
        return _unavailable(
            runtime, [unavailable_error(current_trace_id())], _negotiate(request.headers.get("accept", ""))
        )
    if response.status_code != HTTP_UNAVAILABLE:
        runtime.outage.answered()
    return response


def _unavailable(runtime: Runtime, errors: list[GraphQLError], media_type: str | None, data: Any = None) -> Response:
    """Retry later: the status, the header and the error code all say so; the outage is counted, not traced back."""
    runtime.outage.refused()
    runtime.telemetry.metrics.record_database_unavailable()
    body: dict[str, Any] = {"errors": [e.formatted for e in errors]}
    if data is not None:
        body["data"] = data
    retry_after = {"Retry-After": str(runtime.settings.database_retry_after_seconds)}
    return _respond(body, media_type or JSON, HTTP_UNAVAILABLE, headers=retry_after)


async def _graphql(
    request: Request, runtime: Runtime, headers: _Headers, upload: bytes | HttpProblem | None
) -> Response:
    settings = runtime.settings
    accept = headers.get(b"accept")
    in_url = request.query_params
    if request.method in URL_METHODS and "query" not in in_url and "extensions" not in in_url:
        if settings.graphiql and "text/html" in accept:
            return graphiql_page()
        return Response(
            "GraphQL: POST a JSON body, or GET with ?query=",
            status_code=400,
            media_type="text/plain",
            headers={"Cache-Control": caching.NO_STORE},
        )
    media_type = _negotiate(accept)
    if media_type is None:
        return Response(
            "Accept application/graphql-response+json or application/json.",
            status_code=406,
            headers={"Cache-Control": caching.NO_STORE},
        )
    try:
        params = await _read_params(request, headers, upload)
        extensions = params.get("extensions")
        params["query"], to_register = runtime.persisted.resolve(
            params.get("query"), extensions if isinstance(extensions, dict) else None
        )
        query, operation_name, variables = check_params(params)
    except HttpProblem as problem:
        return _http_problem(problem, media_type)
    except PersistedQueryError as refused:
        return _request_error([refused.error], media_type)
    try:
        prepared = runtime.executor.prepare(query, operation_name)
    except RequestError as failure:
        if request.method in URL_METHODS and _is_mutation(query, operation_name, settings.max_tokens):
            return _get_refused(media_type)  # the spec decides GET by the operation type, valid or not
        record_refused(runtime.telemetry, failure.errors)
        return _request_error(failure.errors, media_type)
    if to_register is not None:
        runtime.persisted.register(to_register, query)

    if request.method in URL_METHODS and prepared.operation_type is not OperationType.QUERY:
        return _get_refused(media_type)
    if prepared.operation_type is OperationType.SUBSCRIPTION:
        error = GraphQLError(
            "Subscriptions run over WebSocket (graphql-transport-ws).", extensions={"code": "BAD_REQUEST"}
        )
        return _request_error([error], media_type)

    channel = await runtime.channels.get(headers.optional(b"x-channel"))
    if channel is None:
        error = GraphQLError(
            f"Unknown channel {headers.get(b'x-channel')[:40]!r}: send X-Channel with one of the `channels` codes.",
            extensions={"code": "UNKNOWN_CHANNEL"},
        )
        return _request_error([error], media_type)
    authorization = headers.optional(b"authorization")
    try:
        principal = await authenticate(authorization, runtime)
    except AuthenticationError as exc:
        error = GraphQLError(str(exc), extensions={"code": "UNAUTHENTICATED"})
        return _respond(_error_body([error]), media_type, 401, headers={"WWW-Authenticate": "Bearer"})
    refusal = channel_refusal(runtime.services.policy, principal, channel)
    if refusal is not None:  # the channel decides prices, codes and the order's channel: checked first
        return _respond(_error_body([GraphQLError(refusal, extensions={"code": CHANNEL_NOT_ALLOWED})]), media_type, 403)
    max_age = 0
    if authorization is None and prepared.operation_type is OperationType.QUERY:
        max_age = runtime.cache_hints.max_age(prepared.document)
    cache_key = None
    generation = runtime.cache_generation  # a change heard from now on: the answer may predate it
    if max_age and runtime.response_cache is not None:
        cache_key = caching.cache_key(query, operation_name, variables, channel.code, media_type)
        hit = await runtime.response_cache.get(cache_key)
        if hit is not None:
            return _public(hit.body, hit.etag, hit.media_type, hit.age_left(), headers)

    # A query that met a pooled connection the database had dropped (a restart, a cut network)
    # runs once more: the pool has replaced its connections by then, and reading twice is safe.
    # A mutation is never repeated here.
    is_query = prepared.operation_type is OperationType.QUERY
    for attempt in range(2 if is_query else 1):
        context = Context(
            services=runtime.services, channel=channel, principal=principal, request=request, read_only=is_query
        )
        try:
            try:
                result: ExecutionResult = await execute_traced(runtime, prepared, variables, context)
            except RequestError as failure:
                return _request_error(failure.errors, media_type)
            finally:
                await context.aclose()
                if context.audit_records:  # else write_audit has nothing to append
                    await write_audit(context, current_trace_id())
        except AuditUnavailable as failure:  # its own code says the result was withheld, whatever the cause
            return _respond(_error_body([failure]), media_type, 500)
        unavailable = any((e.extensions or {}).get("code") == SERVICE_UNAVAILABLE for e in result.errors or ())
        if not unavailable:
            break
        if attempt or not is_query:
            return _unavailable(runtime, result.errors or [], media_type, result.data)
    body: dict[str, Any] = {}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    body["data"] = result.data
    waits = [int((e.extensions or {}).get("retryAfter", 1)) for e in result.errors or () if _throttled(e)]
    if waits:  # the client must slow down: say so in HTTP too, for proxies and retry logic
        return _respond(body, media_type, 429, headers={"Retry-After": str(max(waits))})
    if not max_age or result.errors:
        return _respond(body, media_type)
    content = orjson.dumps(body)
    etag = caching.etag_of(content, media_type)
    if cache_key is not None and runtime.response_cache is not None and runtime.cache_generation == generation:
        entry = caching.CachedResponse(content, etag, media_type, time.time() + max_age)
        try:
            await runtime.response_cache.put(cache_key, entry)
            if runtime.cache_generation != generation:  # a change heard while Redis stored it
                await runtime.response_cache.discard(cache_key)
        except Exception as error:  # Redis away: answer uncached
            logger.warning("could not store a response: %s", type(error).__name__)
    return _public(content, etag, media_type, max_age, headers)


def _public(content: bytes, etag: str, media_type: str, max_age: int, headers: _Headers) -> Response:
    """A public answer, or 304 when the client already holds this very one (If-None-Match)."""
    answer = [(b"cache-control", b"public, max-age=%d" % max_age), (b"etag", etag.encode("latin-1")), _VARY]
    if caching.etag_matches(headers.get(b"if-none-match"), etag):
        response = Response(status_code=304)
    else:
        response = Response(content, media_type=media_type)
    response.raw_headers[:0] = answer  # before Content-Length and Content-Type, as a headers= mapping puts them
    return response


_VARY = (b"vary", b"Accept, X-Channel, Authorization")
