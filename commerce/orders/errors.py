"""Order errors, each with a stable `code` and, where it helps, the input `field` path."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import DomainError, DomainErrors

__all__ = [
    "CartNotReady",
    "CheckoutInProgress",
    "CheckoutInvalid",
    "DiscountUsageLimitReached",
    "IdempotencyKeyReused",
    "InsufficientStock",
    "InvalidTransition",
    "OrderError",
    "OrderForbidden",
    "OrderInputErrors",
    "OrderNotFound",
    "OrderProblem",
]


class OrderError(DomainError):
    code = "ORDER_ERROR"


class OrderNotFound(OrderError):
    code = "ORDER_NOT_FOUND"


class OrderForbidden(OrderError):
    code = "FORBIDDEN"


class InvalidTransition(OrderError):
    """The order's status does not allow this step; nothing was changed."""

    code = "INVALID_TRANSITION"


class CartNotReady(OrderError):
    """No such cart, it is closed, or it is empty."""

    code = "CART_NOT_FOUND"

    def __init__(self, message: str, code: str = "CART_NOT_FOUND") -> None:
        super().__init__(message, ["input", "cartId"])
        self.code = code


class IdempotencyKeyReused(OrderError):
    """The key was used for another cart, or for this cart before it changed: use a new key."""

    code = "IDEMPOTENCY_KEY_REUSED"


class CheckoutInProgress(OrderError):
    """A checkout with this key is still waiting for the payment provider: retry shortly."""

    code = "CHECKOUT_IN_PROGRESS"


class DiscountUsageLimitReached(OrderError):
    code = "DISCOUNT_CODE_USAGE_LIMIT_REACHED"


class OrderProblem(OrderError):
    """One problem with one input field or line; `code` is set per instance."""

    def __init__(self, code: str, message: str, field: Sequence[str]) -> None:
        super().__init__(message, field)
        self.code = code


class InsufficientStock(OrderProblem):
    def __init__(self, message: str, field: Sequence[str]) -> None:
        super().__init__("INSUFFICIENT_STOCK", message, field)


class OrderInputErrors(DomainErrors, OrderError):
    """Every problem found in the input; nothing was changed."""

    code = "ORDER_INPUT_INVALID"


CheckoutInvalid = OrderInputErrors
