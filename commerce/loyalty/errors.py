"""Loyalty errors with stable codes; each names the input field a client can fix."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import DomainError

__all__ = [
    "CustomerErased",
    "InsufficientPoints",
    "InvalidPoints",
    "LoyaltyError",
    "ReasonRequired",
    "UnknownLoyaltyCustomer",
]


class LoyaltyError(DomainError):
    code = "LOYALTY_ERROR"


class InsufficientPoints(LoyaltyError):
    code = "INSUFFICIENT_POINTS"

    def __init__(self, balance: int, wanted: int, field: Sequence[str] = ("points",)) -> None:
        super().__init__(f"Only {balance} points are available; {wanted} were asked for.", field)
        self.balance = balance
        self.wanted = wanted


class InvalidPoints(LoyaltyError):
    code = "INVALID_POINTS"

    def __init__(self, message: str, field: Sequence[str] = ("points",)) -> None:
        super().__init__(message, field)


class ReasonRequired(LoyaltyError):
    code = "REASON_REQUIRED"
    field = ("reason",)

    def __init__(self) -> None:
        super().__init__("Give a reason (1 to 200 characters): it is kept in the customer's points history.")


class UnknownLoyaltyCustomer(LoyaltyError):
    code = "NOT_FOUND"
    field = ("customerId",)

    def __init__(self) -> None:
        super().__init__("No such customer.")


class CustomerErased(LoyaltyError):
    """The customer was erased (GDPR Art. 17): no new points or reasons are recorded about them."""

    code = "CUSTOMER_ERASED"
    field = ("customerId",)

    def __init__(self) -> None:
        super().__init__("This customer's data was erased: they have no loyalty account any more.")
