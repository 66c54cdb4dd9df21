"""Who is asking: a role, the subject behind it and, for store staff, their store."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ANONYMOUS", "Principal", "Role"]


class Role(StrEnum):
    ANONYMOUS = "anonymous"
    CUSTOMER = "customer"
    STAFF = "staff"
    AGENT = "agent"
    DPO = "dpo"
    ADMIN = "admin"
    INTEGRATION = "integration"  # a warehouse or ERP system: its own operations, never customer data


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    subject: str | None = None  # a customer's key for customers; an operator's name otherwise
    location: str | None = None  # a store's code, for store staff

    @property
    def is_anonymous(self) -> bool:
        return self.role is Role.ANONYMOUS


ANONYMOUS = Principal(Role.ANONYMOUS)
