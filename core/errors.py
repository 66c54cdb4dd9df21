"""The one base of every error a client can act on.

Each bounded context raises subclasses carrying a stable `code` and, where it helps, the
input `field` path; `schema/errors.py` turns any of them into `userErrors` in one function.
A `DomainErrors` carries every problem found in one input, so a client can fix them all at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

__all__ = ["DomainError", "DomainErrors"]


class DomainError(Exception):
    """An error the client can act on: `code` is stable, the message is for humans."""

    code: str = "DOMAIN_ERROR"
    field: tuple[str, ...] | None = None

    def __init__(self, message: str, field: Sequence[str] | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = tuple(field)

    def problems(self) -> Iterator[DomainError]:
        """The single problems this error stands for (itself, for a plain error)."""
        yield self


class DomainErrors(DomainError):
    """Several problems found in one input; nothing was changed."""

    code = "INPUT_INVALID"

    def __init__(self, problems: Sequence[DomainError]) -> None:
        super().__init__(str(problems[0]) if problems else "invalid input")
        self._problems = list(problems)

    def problems(self) -> Iterator[DomainError]:
        for problem in self._problems:
            yield from problem.problems()
