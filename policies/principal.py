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

    @property
    def customer_subject(self) -> str | None:
        """The signed-in customer's key (as the token carries it); None for anyone else.

        Code outside `policies` asks this instead of naming a role.
        """
        return self.subject if self.role is Role.CUSTOMER else None

    @property
    def operator(self) -> str | None:
        """The operator's (or system's) name when someone other than a customer acts; None for a
        customer or an anonymous caller. Code outside `policies` asks this instead of naming a role."""
        return None if self.role in (Role.ANONYMOUS, Role.CUSTOMER) else self.subject

    @classmethod
    def customer(cls, key: str) -> Principal:
        """A signed-in customer (for issuing their token)."""
        return cls(Role.CUSTOMER, subject=key)


ANONYMOUS = Principal(Role.ANONYMOUS)
