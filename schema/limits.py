"""Validation rules that bound what one document may ask for: depth, aliases and cost.

Depth and aliases reuse strawberry's rules (they follow fragments, so a fragment cannot be
used to slip past them). Cost is ours: each field costs 1, multiplied by the page size of
every list above it (`first`, or the list's assumed size), so a small document cannot ask
for millions of objects.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as _depth_rule

__all__ = ["limit_rules", "max_cost_rule"]

ASSUMED_LIST_SIZE = 20


def max_depth_rule(max_depth: int) -> type[ValidationRule]:
    return _depth_rule(max_depth, None, None)


def _page_size(field: FieldNode, max_page_size: int) -> int:
    for argument in field.arguments or ():
        if argument.name.value in {"first", "last"}:
            if isinstance(argument.value, IntValueNode):
                return max(0, min(int(argument.value.value), max_page_size))
            return max_page_size  # a variable: assume the worst it may be
    return 1


def _cost(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    max_page_size: int,
    seen: frozenset[str],
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            children = _cost(selection.selection_set, fragments, max_page_size, seen)
            total += 1 + _page_size(selection, max_page_size) * children
        elif isinstance(selection, InlineFragmentNode):
            total += _cost(selection.selection_set, fragments, max_page_size, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                total += _cost(fragment.selection_set, fragments, max_page_size, seen | {name})
    return total


def max_cost_rule(max_cost: int, max_page_size: int) -> type[ValidationRule]:
    class MaxCost(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            context: ValidationContext = self.context
            fragments = {d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)}
            cost = _cost(node.selection_set, fragments, max_page_size, frozenset())
            if cost > max_cost:
                context.report_error(
                    GraphQLError(
                        f"This query costs {cost}, more than the {max_cost} allowed. Ask for fewer fields or smaller pages.",
                        node,
                        extensions={"code": "QUERY_TOO_COSTLY", "cost": cost, "maxCost": max_cost},
                    )
                )

    return MaxCost


def limit_rules(*, max_depth: int, max_aliases: int, max_cost: int, max_page_size: int) -> list[type[ValidationRule]]:
    return [max_depth_rule(max_depth), max_aliases_rule(max_aliases), max_cost_rule(max_cost, max_page_size)]
