"""Compiled execution of queries: the same answers as graphql-core, at a fraction of the cost.

graphql-core re-derives, for every field of every object, what the document asks for; here it
is derived once per (document, operation) into a plan (`plan.py`) and each request only runs
the plan (`run.py`), level by level so DataLoader batching is kept. Resolvers are the schema's
own `GraphQLField.resolve` functions, called exactly as graphql-core calls them.

`Executor` (schema/execution.py) calls `CompiledQueries.try_execute` for queries; None means
"not for me" (an unsupported document, or anything but a single field error going wrong while
running it), and the executor then runs graphql-core, which produces the proper errors.
"""

from __future__ import annotations

import logging
from typing import Any

from cachetools import LRUCache
from graphql import ExecutionResult, GraphQLSchema
from graphql.execution.values import get_variable_values

from schema.compiled.plan import OperationPlan, Planner, Unsupported
from schema.compiled.run import Run

__all__ = ["CompiledQueries"]

logger = logging.getLogger("omnigate.graphql.compiled")

_UNSUPPORTED = object()


class CompiledQueries:
    """Plans cached per operation in a bounded LRU (like the executor's document cache)."""

    def __init__(self, schema: GraphQLSchema, cache_size: int) -> None:
        self.schema = schema
        self.planner = Planner(schema)
        self._plans: LRUCache[int, Any] = LRUCache(cache_size)

    def plan_for(self, prepared: Any) -> OperationPlan | None:
        """The cached plan of `prepared.operation`, or None when the compiled path cannot run it.

        Keyed by the operation node's id; the entry keeps the node alive, and the identity check
        makes sure a recycled id can never return another operation's plan.
        """
        operation = prepared.operation
        entry = self._plans.get(id(operation))
        if entry is not None and entry[0] is operation:
            return entry[1] if entry[1] is not _UNSUPPORTED else None
        try:
            plan: Any = self.planner.plan_operation(prepared.document, operation)
        except Unsupported as reason:
            logger.debug("query not compiled: %s", reason)
            plan = _UNSUPPORTED
        except Exception as error:  # e.g. an argument literal graphql-core will refuse: let it say so
            logger.debug("query not compiled: %s", type(error).__name__)  # never the message: it may quote input
            plan = _UNSUPPORTED
        self._plans[id(operation)] = (operation, plan)
        return plan if plan is not _UNSUPPORTED else None

    async def try_execute(
        self, prepared: Any, variables: dict[str, Any] | None, context: Any
    ) -> ExecutionResult | None:
        """The result, or None to have graphql-core run the operation instead."""
        plan = self.plan_for(prepared)
        if plan is None:
            return None
        coerced = get_variable_values(self.schema, prepared.operation.variable_definitions or (), variables or {})
        if isinstance(coerced, list):  # invalid variables: graphql-core reports them
            return None
        try:
            data, errors = await Run(plan, self.planner, self.schema, coerced, context).execute()
        except Exception as error:
            # The type only: a resolver's message may quote personal data (graphql-core logs the rest).
            logger.debug("compiled query abandoned (%s); graphql-core runs it", type(error).__name__)
            return None
        return ExecutionResult(data=data, errors=errors)
