"""Compiled execution of queries: the same answers as graphql-core, at a fraction of the cost.

graphql-core re-derives, for every field of every object, what the document asks for; here it
is derived once per (document, operation) into a plan (`plan.py`) and each request only runs
the plan (`run.py`), level by level so DataLoader batching is kept (where every field below a
level is read or batch-resolved, the results below it are built in one pass: `onepass.py`).
Resolvers are the schema's own `GraphQLField.resolve` functions, called exactly as graphql-core
calls them.

`Executor` (schema/execution.py) calls `CompiledQueries.try_execute` for queries; None means
"not for me" (an unsupported document, or something going wrong while running it that field
errors graphql-core would report alike do not cover: run.py's `_fail`), and the executor then
runs graphql-core, which produces the proper errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from cachetools import LRUCache
from graphql import ExecutionResult, GraphQLSchema
from graphql.execution.values import get_variable_values

from schema.compiled.plan import OperationPlan, Planner, Unsupported
from schema.compiled.run import Run

__all__ = ["CompiledQueries"]

logger = logging.getLogger("omnigate.graphql.compiled")

# Why a query went to graphql-core instead (a bounded set: the value of a metric's attribute).
UNSUPPORTED_DOCUMENT = "unsupported_document"  # the plan builder does not handle what it asks for
PLANNING_FAILED = "planning_failed"  # e.g. an argument literal graphql-core will refuse
INVALID_VARIABLES = "invalid_variables"  # graphql-core reports them
EXECUTION_ABANDONED = "execution_abandoned"  # something went wrong while running the plan


# Coerced variables kept per plan for at most this many sets of variable values (a page size,
# a slug: a storefront sends few); the oldest are dropped all at once beyond it.
MAX_VARIABLE_SETS = 64
# ... and only sets whose strings are this short: a key is kept for as long as its plan is.
MAX_KEPT_CHARS = 256
# Floats are not kept: -0.0 == 0.0 in Python, and a key must tell every value it stands for apart.
_SCALARS = (str, int, bool, type(None))
# Coerced values that no resolver can change under another request's feet.
_IMMUTABLE = frozenset({*_SCALARS, float, Decimal})
_ABSENT = object()  # a declared variable the request did not send (not the same as null)


def _scalar_key(declared: tuple[str, ...], variables: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """The declared variables' values as a key, when each is a short JSON scalar; else None (not kept).

    Only the operation's own variables count (graphql-core ignores the others), so a client
    cannot grow the key with variables it makes up. Each value's type is part of the key:
    `true == 1` in Python, but an Int variable sent as `true` must be refused, not answered as
    the `1` a request before sent.
    """
    if not declared:
        return ()
    sent = variables or {}
    key: list[Any] = []
    chars = 0
    for name in declared:
        value = sent.get(name, _ABSENT)
        kind = type(value)
        if kind is str:
            chars += len(value)
            if chars > MAX_KEPT_CHARS:
                return None
        elif kind not in _SCALARS and value is not _ABSENT:
            return None
        key.append((kind, value))
    return tuple(key)


class CompiledQueries:
    """Plans cached per operation in a bounded LRU (like the executor's document cache)."""

    def __init__(self, schema: GraphQLSchema, cache_size: int) -> None:
        self.schema = schema
        self.planner = Planner(schema)
        self._plans: LRUCache[int, Any] = LRUCache(cache_size)
        self.on_fallback: Callable[[str], None] = lambda reason: None  # the gateway counts them

    def plan_for(self, prepared: Any) -> OperationPlan | None:
        """The cached plan of `prepared.operation`, or None when the compiled path cannot run it."""
        plan = self._plan_or_reason(prepared)
        return None if isinstance(plan, str) else plan

    def _plan_or_reason(self, prepared: Any) -> OperationPlan | str:
        """The cached plan of `prepared.operation`, or why the compiled path cannot run it.

        Keyed by the operation node's id; the entry keeps the node alive, and the identity check
        makes sure a recycled id can never return another operation's plan.
        """
        operation = prepared.operation
        entry = self._plans.get(id(operation))
        if entry is not None and entry[0] is operation:
            return entry[1]
        plan: OperationPlan | str
        try:
            plan = self.planner.plan_operation(prepared.document, operation)
        except Unsupported as reason:
            logger.debug("query not compiled: %s", reason)
            plan = UNSUPPORTED_DOCUMENT
        except Exception as error:  # e.g. an argument literal graphql-core will refuse: let it say so
            logger.debug("query not compiled: %s", type(error).__name__)  # never the message: it may quote input
            plan = PLANNING_FAILED
        self._plans[id(operation)] = (operation, plan)
        return plan

    async def try_execute(
        self, prepared: Any, variables: dict[str, Any] | None, context: Any
    ) -> ExecutionResult | None:
        """The result, or None to have graphql-core run the operation instead."""
        plan = self._plan_or_reason(prepared)
        if isinstance(plan, str):
            self.on_fallback(plan)
            return None
        key = _scalar_key(plan.declared, variables)
        known = plan.variables.get(key) if key is not None else None
        if known is None:
            coerced = get_variable_values(self.schema, prepared.operation.variable_definitions or (), variables or {})
            if isinstance(coerced, list):  # invalid variables: graphql-core reports them
                self.on_fallback(INVALID_VARIABLES)
                return None
            known = (coerced, {})
            if key is not None and all(type(v) in _IMMUTABLE for v in coerced.coerced.values()):
                if len(plan.variables) >= MAX_VARIABLE_SETS:
                    plan.variables.clear()
                plan.variables[key] = known
        coerced, arguments = known
        try:
            data, errors = await Run(plan, self.planner, self.schema, coerced, context, arguments).execute()
        except Exception as error:
            # The type only: a resolver's message may quote personal data (graphql-core logs the rest).
            logger.debug("compiled query abandoned (%s); graphql-core runs it", type(error).__name__)
            self.on_fallback(EXECUTION_ABANDONED)
            return None
        return ExecutionResult(data=data, errors=errors)
