"""What the DPO reads besides the requests: the retention rules an erasure follows, and who
accessed one person's data (from the audit log). Both serve the console's erasure and history views."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from schema.node import decode_int_id
from schema.pagination import check_first
from vault.audit import accesses_to

__all__ = ["PrivacyConsoleQuery"]


@strawberry.type(description="What happens to one category of personal data on erasure, and why (retention.toml).")
class RetentionRule:
    category: str
    description: str
    on_erasure: str = strawberry.field(description="erase, anonymise or retain")
    retained_for: str = strawberry.field(description="How long it is kept in the normal course, in words.")
    legal_basis: str
    reason: str = strawberry.field(description="Why it is kept after an erasure (empty when it is not).")


@strawberry.type(description="One recorded access to a person's data: who, through which channel, what, the outcome.")
class DataAccess:
    recorded_at: datetime
    actor: str
    role: str
    channel: str
    operation: str
    outcome: str


@strawberry.type
class PrivacyConsoleQuery:
    @strawberry.field(description="The DPO: every category of personal data and what an erasure does with it.")
    def retention_rules(self, info: Info) -> list[RetentionRule]:
        requests = info.context.services.requests
        if requests is None:
            raise RuntimeError("data-subject requests are not configured")
        return [
            RetentionRule(
                category=name,
                description=c.description,
                on_erasure=c.on_erasure,
                retained_for=c.retention,
                legal_basis=c.retained_basis if c.retained else c.legal_basis,
                reason=c.reason,
            )
            for name, c in requests.ctx.retention.categories.items()
        ]

    @strawberry.field(description="The DPO: the latest accesses to one customer's data, newest first (audit log).")
    async def customer_access_log(self, info: Info, customer_id: strawberry.ID, first: int = 50) -> list[DataAccess]:
        limit = check_first(first, info.context.settings.max_page_size)
        found = await accesses_to(
            info.context.services.engine, str(decode_int_id(customer_id, "Customer", "customerId")), limit=limit
        )
        return [
            DataAccess(
                recorded_at=a.recorded_at,
                actor=a.actor,
                role=a.role,
                channel=a.channel,
                operation=a.operation,
                outcome=a.outcome,
            )
            for a in found
        ]
