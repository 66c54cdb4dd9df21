"""Validation rules that bound what one document may ask for: depth, aliases and cost.

One walk measures all three per operation. A fragment is measured once and its measure
reused at every spread (memoized), so a "fragment bomb" (fragments spreading the next one
twice, forty deep: 2^40 fields in a few hundred bytes) costs linear time to refuse. The
strawberry rules this replaces (0.341.2) walk every spread again, which is exponential in
that document, and its depth rule raises KeyError (a 500) on a spread of an unknown fragment.

- depth: as strawberry counted it (a leaf is 0, each selection set below a field adds 1);
  introspection fields (`__schema`, `__type`) do not count, so GraphiQL's query passes;
  graphql-core's own MaxIntrospectionDepthRule stops `fields { type { fields { ...` instead.
- introspection costs 1 per field whatever the schema's size, so the schema is read once: a
  second response key for `__schema` (`schema_keys`) or an alias inside it is refused
  (`schema_aliases` counts every alias on or in it): thirty aliased copies of the standard
  introspection query in one kilobyte made 3 MB of answer and six seconds of CPU. One alias on
  `__schema` is one read (`{ schema: __schema { queryType { name } } }`, a client's check that
  it reaches a GraphQL server); same-named fields merge, so each field in it runs once.
- aliases: every aliased field, as many times as its fragment is spread.
- cost: each field costs 1, plus its children times how many the field may return: its page
  size (`first` or `last`; the maximum page size when it is a variable; the argument's default
  when it is left out, as the resolver then serves a default page), `ASSUMED_LIST_SIZE`
  for any other list (variants, stock levels), 1 for an object and for a connection's
  `edges` (already counted by its `first`). A small document cannot ask for millions of objects.
Numbers stop growing at `CAP`, which is above any limit, to keep the arithmetic small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    get_nullable_type,
    is_list_type,
)

__all__ = ["Measure", "limit_rules", "measure_operation"]

CAP = 10**12
ASSUMED_LIST_SIZE = 5  # a product has a few variants, a variant a few stock levels


@dataclass(frozen=True, slots=True)
class Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    schema_aliases: int = 0  # on `__schema` or inside it
    schema_inner_aliases: int = 0  # inside it: each one more copy of what it names
    schema_keys: frozenset[str] = frozenset()  # the response keys `__schema` is read under


PAGE_ARGUMENTS = ("first", "last")


def _page_size(field: FieldNode, definition: GraphQLField | None, max_page_size: int) -> int | None:
    for argument in field.arguments or ():
        if argument.name.value in PAGE_ARGUMENTS:
            if isinstance(argument.value, IntValueNode):
                return max(0, min(int(argument.value.value), max_page_size))
            return max_page_size  # a variable: assume the worst it may be
    for name in PAGE_ARGUMENTS:  # left out: the resolver serves its default page, not one object
        declared = definition.args.get(name) if definition is not None else None
        if declared is not None:
            default = declared.default_value
            if isinstance(default, int) and not isinstance(default, bool):
                return max(0, min(default, max_page_size))
            return max_page_size
    return None


def _field(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    fields = getattr(parent, "fields", None)
    return fields.get(name) if fields else None


class _Measurer:
    def __init__(
        self, schema: GraphQLSchema | None, fragments: dict[str, FragmentDefinitionNode], max_page_size: int
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.max_page_size = max_page_size
        self.memo: dict[tuple[str, bool], Measure] = {}
        self.in_progress: set[str] = set()

    def _named(self, name: str | None) -> GraphQLNamedType | None:
        return self.schema.get_type(name) if self.schema is not None and name else None

    def _multiplier(self, field: FieldNode, definition: GraphQLField | None, introspection: bool) -> int:
        page = _page_size(field, definition, self.max_page_size)
        if page is not None:
            return page
        field_type = definition.type if definition is not None else None
        if introspection or field.name.value == "edges" or field_type is None:
            return 1  # introspection is bounded by its own rule; `edges` by the connection's `first`
        return ASSUMED_LIST_SIZE if is_list_type(get_nullable_type(field_type)) else 1

    def selection_set(
        self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType | None, in_introspection: bool = False
    ) -> Measure:
        depth = aliases = cost = schema_aliases = schema_inner = 0
        schema_keys: set[str] = set()
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                introspection = in_introspection or selection.name.value.startswith("__")
                definition = _field(parent, selection.name.value)
                child_parent = get_named_type(definition.type) if definition is not None else None
                child = self.selection_set(selection.selection_set, child_parent, introspection)
                if selection.selection_set is not None and not introspection:
                    depth = max(depth, 1 + child.depth)
                aliases += (1 if selection.alias else 0) + child.aliases
                cost += 1 + self._multiplier(selection, definition, introspection) * child.cost
                if selection.name.value == "__schema":  # every alias on it or below it
                    schema_aliases += (1 if selection.alias else 0) + child.aliases
                    schema_inner += child.aliases
                    schema_keys.add((selection.alias or selection.name).value)
                else:
                    schema_aliases += child.schema_aliases
                    schema_inner += child.schema_inner_aliases
                    schema_keys.update(child.schema_keys)
            else:
                if isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition.name.value if selection.type_condition else None
                    inner = self.selection_set(
                        selection.selection_set, self._named(condition) or parent, in_introspection
                    )
                elif isinstance(selection, FragmentSpreadNode):
                    inner = self.fragment(selection.name.value, in_introspection)
                else:
                    inner = Measure()
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                cost += inner.cost
                schema_aliases += inner.schema_aliases
                schema_inner += inner.schema_inner_aliases
                schema_keys.update(inner.schema_keys)
        return Measure(
            min(depth, CAP),
            min(aliases, CAP),
            min(cost, CAP),
            min(schema_aliases, CAP),
            min(schema_inner, CAP),
            frozenset(schema_keys),
        )

    def fragment(self, name: str, in_introspection: bool) -> Measure:
        key = (name, in_introspection)
        known = self.memo.get(key)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.in_progress:
            return Measure()  # unknown or cyclic: graphql-core's own rules report it
        self.in_progress.add(name)
        parent = self._named(definition.type_condition.name.value)
        measured = self.selection_set(definition.selection_set, parent, in_introspection)
        self.in_progress.discard(name)
        self.memo[key] = measured
        return measured


def measure_operation(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    max_page_size: int,
) -> Measure:
    root = schema.get_root_type(operation.operation)
    return _Measurer(schema, fragments, max_page_size).selection_set(operation.selection_set, root)


def limit_rules(*, max_depth: int, max_aliases: int, max_cost: int, max_page_size: int) -> list[type[ValidationRule]]:
    class Limits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.measurer = _Measurer(
                context.schema,
                {d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)},
                max_page_size,
            )

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            root = self.context.schema.get_root_type(node.operation)
            measure = self.measurer.selection_set(node.selection_set, root)
            name = node.name.value if node.name else "anonymous"
            if measure.depth > max_depth:
                self._refuse(
                    f"'{name}' is nested {measure.depth} deep, more than the {max_depth} allowed.",
                    node,
                    "QUERY_TOO_DEEP",
                    depth=measure.depth,
                    maxDepth=max_depth,
                )
            if measure.aliases > max_aliases:
                self._refuse(
                    f"'{name}' uses {measure.aliases} aliases, more than the {max_aliases} allowed.",
                    node,
                    "TOO_MANY_ALIASES",
                    aliases=measure.aliases,
                    maxAliases=max_aliases,
                )
            if measure.cost > max_cost:
                self._refuse(
                    f"This query costs {measure.cost}, more than the {max_cost} allowed. "
                    "Ask for fewer fields or smaller pages.",
                    node,
                    "QUERY_TOO_COSTLY",
                    cost=measure.cost,
                    maxCost=max_cost,
                )

            if len(measure.schema_keys) > 1 or measure.schema_inner_aliases:
                self._refuse(
                    f"'{name}' reads the whole schema more than once: `__schema` is read under one name, "
                    "and the fields in it take no aliases.",
                    node,
                    "QUERY_TOO_COSTLY",
                    schemaAliases=measure.schema_aliases,
                )

        def _refuse(self, message: str, node: OperationDefinitionNode, code: str, **extensions: int) -> None:
            self.context.report_error(GraphQLError(message, node, extensions={"code": code, **extensions}))

    return [Limits]
