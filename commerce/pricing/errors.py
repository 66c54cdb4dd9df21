"""Pricing errors a client can act on: each names the input field to change."""

from __future__ import annotations

from core.errors import DomainError

__all__ = ["LOYALTY_FIELD", "PointsNotRedeemableHere", "PointsOverShare", "PricingError"]

LOYALTY_FIELD = ("input", "loyaltyPointsToRedeem")


class PricingError(DomainError):
    code = "PRICING_ERROR"


class PointsOverShare(PricingError):
    """More points than the policy lets pay of this order (after promotions)."""

    code = "LOYALTY_POINTS_OVER_SHARE"
    field = LOYALTY_FIELD

    def __init__(self, most: int) -> None:
        super().__init__(f"At most {most} points can pay for this order.")
        self.most = most


class PointsNotRedeemableHere(PricingError):
    code = "LOYALTY_POINTS_NOT_REDEEMABLE"
    field = LOYALTY_FIELD

    def __init__(self, message: str) -> None:
        super().__init__(message)
