"""Cart errors, each with a stable `code` and, where it helps, the input `field` path."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import DomainError, DomainErrors

__all__ = [
    "CartError",
    "CartForbidden",
    "CartInputErrors",
    "CartNotFound",
    "CartVersionConflict",
    "LineProblem",
]


class CartError(DomainError):
    code = "CART_ERROR"


class CartNotFound(CartError):
    code = "CART_NOT_FOUND"


class CartForbidden(CartError):
    code = "FORBIDDEN"


class CartVersionConflict(CartError):
    """The cart changed since the client read it: nothing was applied."""

    code = "CART_VERSION_CONFLICT"


class LineProblem(CartError):
    """One problem with one input line; `code` is set per instance."""

    def __init__(self, code: str, message: str, field: Sequence[str]) -> None:
        super().__init__(message, field)
        self.code = code


class CartInputErrors(DomainErrors, CartError):
    """Every problem found in the input; the cart was left as it was."""

    code = "CART_INPUT_INVALID"
