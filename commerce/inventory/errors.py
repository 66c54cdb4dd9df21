"""Inventory errors, each with a stable `code` and the input `field` path it concerns."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from core.errors import DomainError

__all__ = ["CountProblem", "InventoryError", "InventoryErrorCode"]


class InventoryErrorCode(StrEnum):
    """Every code a stock count (stockSync, stock import) reports."""

    INVENTORY_ERROR = "INVENTORY_ERROR"
    SKU_NOT_FOUND = "SKU_NOT_FOUND"
    LOCATION_NOT_FOUND = "LOCATION_NOT_FOUND"
    INVALID_QUANTITY = "INVALID_QUANTITY"  # a negative count
    BELOW_RESERVED = "BELOW_RESERVED"  # fewer on hand than orders hold reserved there
    DUPLICATE_COUNT = "DUPLICATE_COUNT"  # the same SKU and location twice in one call: the first counts
    TOO_MANY_COUNTS = "TOO_MANY_COUNTS"
    MISSING_VALUE = "MISSING_VALUE"  # a CSV row without a SKU or location code (stock import)


class InventoryError(DomainError):
    code: str = InventoryErrorCode.INVENTORY_ERROR


class CountProblem(InventoryError):
    """One stock count that was not applied; `code` is set per instance."""

    def __init__(self, code: InventoryErrorCode, message: str, field: Sequence[str]) -> None:
        super().__init__(message, field)
        self.code = code
