"""Inventory errors, each with a stable `code` and the input `field` path it concerns."""

from __future__ import annotations

from collections.abc import Sequence

from core.errors import DomainError

__all__ = ["CountProblem", "InventoryError"]


class InventoryError(DomainError):
    code = "INVENTORY_ERROR"


class CountProblem(InventoryError):
    """One stock count that was not applied; `code` is set per instance:

    SKU_NOT_FOUND, LOCATION_NOT_FOUND, INVALID_QUANTITY (a negative count), BELOW_RESERVED
    (fewer on hand than orders hold reserved there), DUPLICATE_COUNT (the same SKU and
    location twice in one sync: the first one counts), TOO_MANY_COUNTS.
    """

    def __init__(self, code: str, message: str, field: Sequence[str]) -> None:
        super().__init__(message, field)
        self.code = code
