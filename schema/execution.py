"""Parse, validate and execute one GraphQL request, with bounded caches and masked errors.

The HTTP and WebSocket transports in `gateway` call `Executor`; nothing here knows HTTP.
Parsing and validation are cached per document text in LRU caches of a fixed size (an
unbounded cache is a memory DoS); unexpected errors are replaced by a masked error that
carries the trace id, and the detail goes to the log.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import strawberry
from cachetools import LRUCache
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
    subscribe,
    validate,
)
from opentelemetry import trace

from core.db import is_database_unavailable
from core.settings import Settings
from schema.inputs import string_input_rule, variable_errors
from schema.limits import limit_rules

__all__ = [
    "SERVICE_UNAVAILABLE",
    "Executor",
    "PreparedOperation",
    "RequestError",
    "current_trace_id",
    "mask_errors",
    "record_exception_type",
    "unavailable_error",
]

logger = logging.getLogger("omnigate.graphql")


class RequestError(Exception):
    """The request cannot be executed at all (no `data`): parse, validation or operation errors."""

    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__(errors[0].message if errors else "invalid request")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class PreparedOperation:
    document: DocumentNode
    operation: OperationDefinitionNode
    operation_type: OperationType

    @property
    def name(self) -> str | None:
        return self.operation.name.value if self.operation.name else None


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.trace_id else uuid.uuid4().hex


def _with_code(error: GraphQLError, code: str) -> GraphQLError:
    if not (error.extensions or {}).get("code"):
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


def record_exception_type(error: BaseException, span: trace.Span | None = None) -> None:
    """The exception's type and frames on the (current) span, never its message: it may quote input."""
    span = span or trace.get_current_span()
    if span.is_recording():
        span.add_event(
            "exception",
            {
                "exception.type": f"{type(error).__module__}.{type(error).__qualname__}",
                "exception.stacktrace": "".join(traceback.format_tb(error.__traceback__)),
            },
        )


SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


def unavailable_error(trace_id: str, located: GraphQLError | None = None) -> GraphQLError:
    """The database cannot be reached: nobody's mistake, and retrying later will work."""
    return GraphQLError(
        "The service is temporarily unavailable: retry shortly.",
        nodes=located.nodes if located else None,
        path=located.path if located else None,
        extensions={"code": SERVICE_UNAVAILABLE, "retryable": True, "traceId": trace_id},
    )


def mask_errors(errors: list[GraphQLError] | None) -> list[GraphQLError] | None:
    """Errors we raised on purpose pass through; the database being unreachable becomes
    SERVICE_UNAVAILABLE (retryable); anything else becomes INTERNAL_SERVER_ERROR."""
    if not errors:
        return errors
    masked: list[GraphQLError] = []
    for error in errors:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            masked.append(_with_code(error, "BAD_USER_INPUT"))
            continue
        trace_id = current_trace_id()
        if is_database_unavailable(original):  # not a bug: no stack; the gateway logs the outage
            masked.append(unavailable_error(trace_id, error))
            continue
        # The type and the stack, never the message: it may quote input (an email, a name).
        logger.error(
            "unexpected %s (trace %s) at %s\n%s",
            type(original).__name__,
            trace_id,
            error.path,
            "".join(traceback.format_tb(original.__traceback__)),
        )
        record_exception_type(original)
        masked.append(
            GraphQLError(
                f"Internal server error. Quote trace id {trace_id} when reporting it.",
                nodes=error.nodes,
                path=error.path,
                extensions={"code": "INTERNAL_SERVER_ERROR", "traceId": trace_id},
            )
        )
    return masked


class Executor:
    """One per schema and settings; safe to share between requests."""

    def __init__(self, schema: strawberry.Schema, settings: Settings) -> None:
        self.schema = schema
        self.graphql_schema = schema._schema
        self.settings = settings
        self.rules = [
            *specified_rules,
            *limit_rules(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_cost=settings.max_query_cost,
                max_page_size=settings.max_page_size,
            ),
            string_input_rule(settings.max_string_chars),
        ]
        # Without introspection, "Did you mean 'customerAccessLog'?" would still map the schema out
        # one guess at a time: then errors suggest nothing (validation, variables, arguments).
        self.hide_suggestions = not settings.introspection
        if not settings.introspection:
            from graphql.validation import NoSchemaIntrospectionCustomRule

            self.rules.append(NoSchemaIntrospectionCustomRule)
        # parsed and validated documents (or why they were refused), bounded: strawberry's own caches are not
        self._documents: LRUCache[str, Any] = LRUCache(settings.document_cache_size)
        self.compiler: Any = None  # set by gateway when compiled queries are on

    @property
    def cached_documents(self) -> int:
        """How many documents (or their refusals) the bounded cache holds now."""
        return len(self._documents)

    def parse_and_validate(self, query: str) -> DocumentNode:
        """The validated document for `query`, from the cache when seen before."""
        return self._validated(query).document

    def _validated(self, query: str) -> _Validated:
        if len(query) > self.settings.max_query_chars:  # never cached: the caches would pin it
            raise RequestError(
                [
                    GraphQLError(
                        f"The document is longer than {self.settings.max_query_chars} characters.",
                        extensions={"code": "QUERY_TOO_LARGE"},
                    )
                ]
            )
        cached = self._documents.get(query)
        if cached is not None:
            if isinstance(cached, RequestError):
                raise cached
            return cached
        try:
            document = parse(query, max_tokens=self.settings.max_tokens, no_location=False)
        except GraphQLSyntaxError as error:
            failure = RequestError([_with_code(error, "GRAPHQL_PARSE_FAILED")])
            self._documents[query] = failure
            raise failure from None
        errors = validate(
            self.graphql_schema, document, self.rules, max_errors=20, hide_suggestions=self.hide_suggestions
        )
        if errors:
            failure = RequestError([_with_code(e, "GRAPHQL_VALIDATION_FAILED") for e in errors])
            self._documents[query] = failure
            raise failure
        validated = _Validated(document)
        self._documents[query] = validated
        return validated

    def prepare(self, query: str, operation_name: str | None) -> PreparedOperation:
        """The operation to run, the same (immutable) object each time the document and name recur."""
        validated = self._validated(query)
        prepared = validated.operations.get(operation_name)
        if prepared is None:
            prepared = _select(validated.document, operation_name)
            validated.operations[operation_name] = prepared  # only names the document has: bounded by it
        return prepared

    def check_variables(self, variables: dict[str, Any] | None) -> None:
        """Refuse, before anything runs, a variable no database could take (see schema/inputs.py)."""
        errors = variable_errors(variables, self.settings.max_string_chars)
        if errors:
            raise RequestError(errors)

    async def execute(
        self, prepared: PreparedOperation, variables: dict[str, Any] | None, context: Any
    ) -> ExecutionResult:
        self.check_variables(variables)
        if self.compiler is not None and prepared.operation_type is OperationType.QUERY:
            noted = _audit_records(context)
            result = await self.compiler.try_execute(prepared, variables, context)
            if result is not None:
                result.errors = mask_errors(result.errors)
                return result
            if noted is not None:  # graphql-core answers: the accesses it makes are the ones audited
                context.audit_records.clear()
                context.audit_records.update(noted)
        result = execute(
            self.graphql_schema,
            prepared.document,
            root_value=None,
            context_value=context,
            variable_values=variables,
            operation_name=prepared.name,
            hide_suggestions=self.hide_suggestions,
        )
        if hasattr(result, "__await__"):
            result = await result
        if result.errors and result.data is None and _is_variable_error(result.errors):
            raise RequestError([_with_code(e, "BAD_USER_INPUT") for e in result.errors])
        result.errors = mask_errors(result.errors)
        return result

    async def subscribe(
        self, prepared: PreparedOperation, variables: dict[str, Any] | None, context: Any
    ) -> AsyncGenerator[ExecutionResult, None] | ExecutionResult:
        """The subscription's events (errors masked), or one result when it cannot start (refused, bad variables)."""
        errors = variable_errors(variables, self.settings.max_string_chars)
        if errors:
            return ExecutionResult(data=None, errors=errors)
        started = subscribe(
            self.graphql_schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=prepared.name,
            hide_suggestions=self.hide_suggestions,
        )
        if hasattr(started, "__await__"):
            started = await started  # type: ignore[misc]
        if isinstance(started, ExecutionResult):
            started.errors = mask_errors(started.errors)
            return started
        return _masked(started)


def _audit_records(context: Any) -> dict[Any, set[str]] | None:
    """A copy of the accesses the request has noted so far (schema/authorization.py), if it notes any.

    An abandoned compiled attempt may have tried fields graphql-core never reaches (a sibling of a
    refused non-null field, which graphql-core stops at): its notes are dropped with its answer.
    """
    records = getattr(context, "audit_records", None)
    return None if records is None else {key: set(fields) for key, fields in records.items()}


async def _masked(events: AsyncIterator[ExecutionResult]) -> AsyncGenerator[ExecutionResult, None]:
    """Each event with its errors masked; an error raised by the source stream ends it as a last event."""
    try:
        async for result in events:
            result.errors = mask_errors(result.errors)
            yield result
    except Exception as error:
        located = error if isinstance(error, GraphQLError) else GraphQLError(type(error).__name__, original_error=error)
        yield ExecutionResult(data=None, errors=mask_errors([located]))
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


@dataclass(slots=True)
class _Validated:
    """A document that passed validation, and its operations as `prepare` picked them by name
    (the operation list was filtered and searched, and a PreparedOperation built, each request)."""

    document: DocumentNode
    operations: dict[str | None, PreparedOperation] = field(default_factory=dict)


def _select(document: DocumentNode, operation_name: str | None) -> PreparedOperation:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        if len(operations) != 1:
            raise RequestError([_op_error("Several operations in the document: name one in `operationName`.")])
        operation = operations[0]
    else:
        named = next((op for op in operations if op.name and op.name.value == operation_name), None)
        if named is None:
            raise RequestError([_op_error(f"No operation named {operation_name!r} in the document.")])
        operation = named
    return PreparedOperation(document, operation, operation.operation)


def _op_error(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "OPERATION_RESOLUTION_FAILURE"})


def _is_variable_error(errors: list[GraphQLError]) -> bool:
    """No data and no error on a field: the variables could not be coerced, nothing ran.

    (A scalar's own GraphQLError is kept as `original_error` there, so only a non-GraphQL
    original means something unexpected happened.)
    """
    return all(
        e.path is None and (e.original_error is None or isinstance(e.original_error, GraphQLError)) for e in errors
    )
