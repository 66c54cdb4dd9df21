"""Order errors, each with a stable `code` and, where it helps, the input `field` path."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from core.errors import DomainError, DomainErrors

__all__ = [
    "CartMerged",
    "CartNotReady",
    "CheckoutInProgress",
    "CheckoutInvalid",
    "DiscountUsageLimitReached",
    "ExchangeAlreadyRefunded",
    "IdempotencyKeyReused",
    "InsufficientStock",
    "InvalidTransition",
    "OrderError",
    "OrderErrorCode",
    "OrderForbidden",
    "OrderInputErrors",
    "OrderNotFound",
    "OrderProblem",
]


class OrderErrorCode(StrEnum):
    """Every code checkout and the order steps report (payments' own are in commerce/payments)."""

    ORDER_ERROR = "ORDER_ERROR"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    CART_NOT_FOUND = "CART_NOT_FOUND"
    CART_EMPTY = "CART_EMPTY"
    CART_CLOSED = "CART_CLOSED"
    CART_VERSION_CONFLICT = "CART_VERSION_CONFLICT"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    IDEMPOTENCY_KEY_INVALID = "IDEMPOTENCY_KEY_INVALID"
    CHECKOUT_IN_PROGRESS = "CHECKOUT_IN_PROGRESS"
    DISCOUNT_CODE_USAGE_LIMIT_REACHED = "DISCOUNT_CODE_USAGE_LIMIT_REACHED"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    ORDER_INPUT_INVALID = "ORDER_INPUT_INVALID"
    FULFILLMENT_METHOD_INVALID = "FULFILLMENT_METHOD_INVALID"
    PAYMENT_METHOD_INVALID = "PAYMENT_METHOD_INVALID"
    PAYMENT_METHOD_NOT_ALLOWED = "PAYMENT_METHOD_NOT_ALLOWED"
    INVALID_POINTS = "INVALID_POINTS"  # loyalty points to redeem below zero
    LOYALTY_SIGN_IN_REQUIRED = "LOYALTY_SIGN_IN_REQUIRED"  # a guest has no points to pay with
    ADDRESS_REQUIRED = "ADDRESS_REQUIRED"
    ADDRESS_NOT_ALLOWED = "ADDRESS_NOT_ALLOWED"
    PICKUP_LOCATION_INVALID = "PICKUP_LOCATION_INVALID"
    IN_STORE_AT_TILL_ONLY = "IN_STORE_AT_TILL_ONLY"
    VARIANT_NOT_AVAILABLE = "VARIANT_NOT_AVAILABLE"
    LOCATION_NOT_FOUND = "LOCATION_NOT_FOUND"
    ORDER_LINE_NOT_FOUND = "ORDER_LINE_NOT_FOUND"
    RETURN_QUANTITY_INVALID = "RETURN_QUANTITY_INVALID"
    RETURN_LINES_REQUIRED = "RETURN_LINES_REQUIRED"
    EXCHANGE_ALREADY_REFUNDED = "EXCHANGE_ALREADY_REFUNDED"  # a retried exchange whose sale failed: paid out
    CUSTOMER_ERASED = "CUSTOMER_ERASED"  # the cart's customer was erased meanwhile
    CART_MERGED = "CART_MERGED"  # a signed-in customer's guest cart joined their own: check that out


class OrderError(DomainError):
    code: str = OrderErrorCode.ORDER_ERROR


class OrderNotFound(OrderError):
    code: str = OrderErrorCode.ORDER_NOT_FOUND


class OrderForbidden(OrderError):
    code: str = OrderErrorCode.FORBIDDEN


class InvalidTransition(OrderError):
    """The order's status does not allow this step; nothing was changed."""

    code: str = OrderErrorCode.INVALID_TRANSITION


class CartNotReady(OrderError):
    """No such cart, it is closed, or it is empty."""

    code: str = OrderErrorCode.CART_NOT_FOUND

    def __init__(self, message: str, code: str = OrderErrorCode.CART_NOT_FOUND) -> None:
        super().__init__(message, ["input", "cartId"])
        self.code = code


class CartMerged(OrderError):
    """A signed-in customer checked out a guest cart while holding a cart of their own: the guest
    cart joined theirs (as `cartAttachToCustomer` does) and no order was placed; `into` is their cart."""

    code: str = OrderErrorCode.CART_MERGED

    def __init__(self, into: str) -> None:
        super().__init__(
            "This cart joined the cart of your account: review that one and check it out.", ["input", "cartId"]
        )
        self.into = into


class IdempotencyKeyReused(OrderError):
    """The key was used for another cart, or for this cart before it changed: use a new key."""

    code: str = OrderErrorCode.IDEMPOTENCY_KEY_REUSED


class CheckoutInProgress(OrderError):
    """A checkout with this key is still waiting for the payment provider: retry shortly."""

    code: str = OrderErrorCode.CHECKOUT_IN_PROGRESS


class DiscountUsageLimitReached(OrderError):
    code: str = OrderErrorCode.DISCOUNT_CODE_USAGE_LIMIT_REACHED


class ExchangeAlreadyRefunded(OrderError):
    """The exchange's sale failed and its return was refunded in full: nothing more is sold on its
    credit. The goods are back and paid out; a new sale needs a new key."""

    code: str = OrderErrorCode.EXCHANGE_ALREADY_REFUNDED

    def __init__(self) -> None:
        super().__init__(
            "This exchange's sale failed and its return was already taken and refunded: start a new sale.",
            ["idempotencyKey"],
        )


class OrderProblem(OrderError):
    """One problem with one input field or line; `code` is set per instance."""

    def __init__(self, code: str, message: str, field: Sequence[str]) -> None:
        super().__init__(message, field)
        self.code = code


class InsufficientStock(OrderProblem):
    def __init__(self, message: str, field: Sequence[str]) -> None:
        super().__init__(OrderErrorCode.INSUFFICIENT_STOCK, message, field)


class OrderInputErrors(DomainErrors, OrderError):
    """Every problem found in the input; nothing was changed."""

    code: str = OrderErrorCode.ORDER_INPUT_INVALID


CheckoutInvalid = OrderInputErrors
