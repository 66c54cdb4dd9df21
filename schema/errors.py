"""Errors the client can act on carry a stable `extensions.code`; everything else is masked.

Domain code raises its own typed errors with a `code`; this module is the one place that
turns them into GraphQL errors (queries) or `userErrors` (mutation payloads).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError

from core.errors import DomainError

__all__ = [
    "ClientError",
    "UserError",
    "bad_input",
    "forbidden",
    "not_found",
    "unauthenticated",
    "user_error",
    "user_errors",
]


class ClientError(GraphQLError):
    """A GraphQL error that is shown to the client as it is (never masked)."""

    def __init__(self, message: str, code: str, **extensions: Any) -> None:
        super().__init__(message, extensions={"code": code, **extensions})
        self.code = code


def bad_input(message: str, field: Sequence[str] | None = None) -> ClientError:
    return ClientError(message, "BAD_USER_INPUT", **({"field": list(field)} if field else {}))


def forbidden(message: str = "You may not do this.") -> ClientError:
    return ClientError(message, "FORBIDDEN")


def unauthenticated(message: str = "Sign in first.") -> ClientError:
    return ClientError(message, "UNAUTHENTICATED")


def not_found(message: str) -> ClientError:
    return ClientError(message, "NOT_FOUND")


@strawberry.type(description="A problem the client can act on. `code` is stable; `message` is for humans.")
class UserError:
    code: str
    field: list[str] | None
    message: str


def user_error(error: DomainError, field: Sequence[str] | None = None) -> UserError:
    """One domain error as a `userErrors` entry."""
    path = field if field is not None else error.field
    return UserError(code=error.code, field=list(path) if path else None, message=str(error))


def user_errors(error: DomainError) -> list[UserError]:
    """Every problem a domain error stands for, as `userErrors`: the one mapping for all contexts."""
    return [user_error(problem) for problem in error.problems()]
