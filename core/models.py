"""Where every context's tables are registered, so Alembic and the tests see all of them."""

from __future__ import annotations

import importlib

__all__ = ["MODEL_MODULES", "import_all_models"]

# One line per bounded context that owns tables.
MODEL_MODULES = [
    "commerce.catalog.models",
    "commerce.inventory.models",
    "commerce.pricing.models",
    "vault.models",
    "commerce.customers.models",
    "vault.audit_models",
    "commerce.pricing.promotion_models",
    "commerce.cart.models",
]


def import_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
