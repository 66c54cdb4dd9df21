"""Every string a client sends, checked once at the edge: one the databases can store, of a sane length.

A NUL byte, a lone surrogate or a string of a megabyte reached PostgreSQL or SQLite through
whichever argument carried it (a category slug, a search, a discount code) and came back as a
masked internal error. Here the whole class is refused as BAD_USER_INPUT before anything runs:
string literals in the document by a validation rule (cached with the document), strings in
the variables by `variable_errors`. Fields keep their own, tighter limits.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule

from core.text import storable

__all__ = ["string_input_rule", "variable_errors"]


def _problem(value: str, max_chars: int) -> str | None:
    if len(value) > max_chars:
        return f"is longer than {max_chars} characters"
    if not storable(value):
        return "holds a NUL character or a lone surrogate, which no text can be stored with"
    return None


def _error(message: str, nodes: Any = None) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": "BAD_USER_INPUT"})


def string_input_rule(max_chars: int) -> type[ValidationRule]:
    class StringInputs(ValidationRule):
        def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
            problem = _problem(node.value, max_chars)
            if problem:
                self.report_error(_error(f"A string argument {problem}.", node))

    return StringInputs


def variable_errors(variables: dict[str, Any] | None, max_chars: int) -> list[GraphQLError]:
    """One error per variable holding a string (at any depth) that `_problem` refuses."""
    errors: list[GraphQLError] = []
    for name, value in (variables or {}).items():
        pending: list[Any] = [value]
        while pending:  # iterative: variables may nest deeper than Python's recursion limit
            item = pending.pop()
            if isinstance(item, str):
                problem = _problem(item, max_chars)
                if problem:
                    errors.append(_error(f"Variable ${name}: a string in it {problem}."))
                    break
            elif isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
    return errors
