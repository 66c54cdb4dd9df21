"""Cart errors, each with a stable `code` and, where it helps, the input `field` path."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from core.errors import DomainError, DomainErrors

__all__ = [
    "CartCustomerErased",
    "CartError",
    "CartErrorCode",
    "CartForbidden",
    "CartInputErrors",
    "CartNotFound",
    "CartVersionConflict",
    "LineProblem",
]


class CartErrorCode(StrEnum):
    """Every code a cart operation reports (discount codes' own problems are pricing's `CodeProblem`)."""

    CART_ERROR = "CART_ERROR"
    CART_NOT_FOUND = "CART_NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    CART_VERSION_CONFLICT = "CART_VERSION_CONFLICT"
    CART_INPUT_INVALID = "CART_INPUT_INVALID"
    CART_LINE_NOT_FOUND = "CART_LINE_NOT_FOUND"
    VARIANT_NOT_FOUND = "VARIANT_NOT_FOUND"
    QUANTITY_OUT_OF_RANGE = "QUANTITY_OUT_OF_RANGE"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    TOO_MANY_LINES = "TOO_MANY_LINES"
    TOO_MANY_DISCOUNT_CODES = "TOO_MANY_DISCOUNT_CODES"
    CUSTOMER_ERASED = "CUSTOMER_ERASED"


class CartError(DomainError):
    code: str = CartErrorCode.CART_ERROR


class CartNotFound(CartError):
    code: str = CartErrorCode.CART_NOT_FOUND


class CartForbidden(CartError):
    code: str = CartErrorCode.FORBIDDEN


class CartCustomerErased(CartError):
    """The customer was erased (GDPR Art. 17): no new cart is recorded about them."""

    code: str = CartErrorCode.CUSTOMER_ERASED

    def __init__(self) -> None:
        super().__init__("This customer's data was erased: serve them as a guest.", ["customerId"])


class CartVersionConflict(CartError):
    """The cart changed since the client read it: nothing was applied."""

    code: str = CartErrorCode.CART_VERSION_CONFLICT


class LineProblem(CartError):
    """One problem with one input line; `code` is set per instance."""

    def __init__(self, code: str, message: str, field: Sequence[str]) -> None:  # a CartErrorCode or CodeProblem
        super().__init__(message, field)
        self.code = code


class CartInputErrors(DomainErrors, CartError):
    """Every problem found in the input; the cart was left as it was."""

    code: str = CartErrorCode.CART_INPUT_INVALID
