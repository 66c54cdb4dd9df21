"""Loyalty in the API: `Customer.loyalty`, the till's `customerByLoyaltyCard`, agents' `loyaltyAdjust`.

Who may read an account or its entries is in policies/access.toml (`[types.LoyaltyAccount]`,
`[types.LoyaltyTransaction]`: the customer, staff at the till, agents, the DPO, admins), so
every read by an operator is audited with the customer's key as the subject.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from commerce.customers import service as customers
from commerce.loyalty import errors as loyalty_errors
from commerce.loyalty import service as loyalty
from core.db import writer
from core.ids import to_global_id
from schema.authorization import record_change
from schema.errors import UserError, bad_input, user_error
from schema.node import Node, decode_int_id
from schema.pagination import PageInfo, check_first, decode_cursor, encode_cursor
from vault.cipher import ERASED

if TYPE_CHECKING:
    from schema.customers import Customer

__all__ = [
    "LoyaltyAccount",
    "LoyaltyAccountPayload",
    "LoyaltyMutation",
    "LoyaltyQuery",
    "LoyaltyTier",
    "LoyaltyTransaction",
    "LoyaltyTransactionKind",
    "loyalty_account",
]

ERASED_CARD = "[erased]"  # as every personal field of an erased customer reads


@strawberry.enum
class LoyaltyTier(Enum):
    BRONZE = "BRONZE"
    SILVER = "SILVER"
    GOLD = "GOLD"


@strawberry.enum(
    description="EARN: an order fulfilled. REDEEM: points paid an order. REVERSE: a return took earned "
    "points back (negative), or a cancelled order or declined payment gave redeemed points back (positive). "
    "EXPIRE: points past their date. ADJUST: an agent's goodwill or correction."
)
class LoyaltyTransactionKind(Enum):
    EARN = "EARN"
    REDEEM = "REDEEM"
    REVERSE = "REVERSE"
    EXPIRE = "EXPIRE"
    ADJUST = "ADJUST"


@strawberry.type
class LoyaltyTransaction(Node):
    id: strawberry.ID
    customer_key: strawberry.Private[int]
    kind: LoyaltyTransactionKind
    points: int = strawberry.field(description="Signed: what the balance moved by.")
    reason: str
    created_at: datetime
    order_id: strawberry.ID | None
    channel: str | None = strawberry.field(description="The code of the channel of the order, if any.")
    shortfall: int = strawberry.field(
        description="A return's points the balance could not cover (already spent): recorded, not hidden."
    )

    @classmethod
    def of(cls, e: loyalty.Entry) -> LoyaltyTransaction:
        return cls(
            id=strawberry.ID(to_global_id("LoyaltyTransaction", e.id)),
            customer_key=e.customer_key,
            kind=LoyaltyTransactionKind(e.kind),
            points=e.points,
            reason=e.reason,
            created_at=e.created_at,
            order_id=strawberry.ID(to_global_id("Order", e.order_key)) if e.order_key else None,
            channel=e.channel,
            shortfall=e.shortfall,
        )


@strawberry.type
class LoyaltyTransactionEdge:
    node: LoyaltyTransaction
    cursor: str


@strawberry.type
class LoyaltyTransactionConnection:
    edges: list[LoyaltyTransactionEdge]
    page_info: PageInfo


@strawberry.type(description="One account per customer, the same in every channel.")
class LoyaltyAccount:
    customer_key: strawberry.Private[int]
    subject: strawberry.Private[str]
    balance: int
    tier: LoyaltyTier
    points_to_next_tier: int | None = strawberry.field(description="Null at the top tier.")
    points_earned_in_window: int = strawberry.field(
        description="Points earned in the tier window (policies/loyalty.toml), net of returns: what sets the tier."
    )

    @strawberry.field(description="Printed on the card the till scans; issued on first use, looked up by blind index.")
    async def card_number(self, info: Info) -> str:
        services = info.context.services
        number = await loyalty.card_number(
            services.engine, services.vault, self.customer_key, self.subject, services.clock.now()
        )
        return ERASED_CARD if number is ERASED else str(number)

    @strawberry.field(description="Newest first.")
    async def transactions(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> LoyaltyTransactionConnection:
        limit = check_first(first, info.context.settings.max_page_size)
        before = decode_cursor("LoyaltyTransaction", after)
        entries, has_next = await loyalty.transactions_page(
            info.context.services.engine, self.customer_key, first=limit, before_id=before
        )
        edges = [
            LoyaltyTransactionEdge(node=LoyaltyTransaction.of(e), cursor=encode_cursor("LoyaltyTransaction", e.id))
            for e in entries
        ]
        return LoyaltyTransactionConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=before is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


async def loyalty_account(info: Info, customer_key: int, subject: str) -> LoyaltyAccount:
    """The account as the API shows it (an account with no entries yet reads balance 0, BRONZE)."""
    standing = await loyalty.standing(info.context.services.engine, customer_key, info.context.services.clock.now())
    return LoyaltyAccount(
        customer_key=customer_key,
        subject=subject,
        balance=standing.balance,
        tier=LoyaltyTier(standing.tier.name),
        points_to_next_tier=standing.points_to_next_tier,
        points_earned_in_window=standing.earned_in_window,
    )


@strawberry.type
class LoyaltyAccountPayload:
    loyalty: LoyaltyAccount | None
    user_errors: list[UserError]


async def _subject(info: Info, customer_key: int) -> str | None:
    return (await customers.subjects_by_ids(info.context.services.engine, [customer_key])).get(customer_key)


@strawberry.type
class LoyaltyQuery:
    @strawberry.field(description="Staff at the till and agents: the customer holding this loyalty card.")
    async def customer_by_loyalty_card(
        self, info: Info, card_number: str
    ) -> Annotated[Customer, strawberry.lazy("schema.customers")] | None:
        from schema.customers import Customer

        if len(card_number) > 64:
            raise bad_input("Not a card number.", ["cardNumber"])
        services = info.context.services
        key = await loyalty.find_by_card(services.engine, services.vault, card_number)
        return Customer.of(key) if key is not None else None


@strawberry.type
class LoyaltyMutation:
    @strawberry.mutation(description="Agents and admins: goodwill (+) or a correction (-), with a reason; audited.")
    async def loyalty_adjust(
        self, info: Info, customer_id: strawberry.ID, points: int, reason: str
    ) -> LoyaltyAccountPayload:
        key = decode_int_id(customer_id, "Customer", "customerId")
        subject = await _subject(info, key)
        if subject is None:
            return LoyaltyAccountPayload(
                loyalty=None, user_errors=[user_error(loyalty_errors.UnknownLoyaltyCustomer())]
            )
        principal = info.context.principal
        services = info.context.services
        try:
            async with writer(services.engine).begin() as conn:
                await loyalty.adjust(
                    conn,
                    key,
                    points,
                    reason,
                    f"{principal.role.value}:{principal.subject or principal.role.value}",
                    services.clock.now(),
                )
                await record_change(info, conn, str(key))  # the change and its audit record, together
        except loyalty_errors.LoyaltyError as problem:
            return LoyaltyAccountPayload(loyalty=None, user_errors=[user_error(problem)])
        return LoyaltyAccountPayload(loyalty=await loyalty_account(info, key, subject), user_errors=[])
