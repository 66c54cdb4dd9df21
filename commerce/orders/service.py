"""What happens to an order after checkout: the state machine, returns, expiry, and reading.

    PLACED (ship) ------------------------------> SHIPPED ----\
    PLACED (collect) | RESERVED -> READY_FOR_PICKUP -> COMPLETED -+-> PARTIALLY_RETURNED -> RETURNED
    PLACED | RESERVED | READY_FOR_PICKUP -> CANCELLED            (IN_STORE sales start COMPLETED)

A step the order's status (or fulfillment method) does not allow is `INVALID_TRANSITION` and
changes nothing. Each step is one unit of work on the locked order row: the status, the stock
movements and the outbox event commit together. Payment calls (capture, void, refund) are
recorded in that unit of work and made after the commit, never inside it; one the provider
does not take is retried (`commerce.payments.calls`). Checkout itself is in `checkout.py`.

Hooks for other contexts (loyalty, data-subject requests): `mark_shipped`/`confirm_pickup` are
where an order is fulfilled, `cancel` and `expire_reservations` where it is given up,
`return_lines` where goods come back; `checkout.checkout` is where a cart is priced and paid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from commerce.catalog import service as catalog
from commerce.inventory import stock
from commerce.orders import errors, mail, points
from commerce.orders import records as r
from commerce.orders.checkout import PROVIDER_METHODS, TILL_METHODS, fail_pending
from commerce.orders.events import order_event
from commerce.orders.models import OrderLineRow, OrderReturnRow, OrderRow
from commerce.orders.unit import OrderServices, audit_action, unit_of_work
from commerce.payments import calls
from commerce.payments.calls import CallAction
from commerce.pricing import usage
from commerce.pricing.money import quantize
from core.errors import DomainError
from vault.audit import AuditEntry
from vault.service import ERASED, Sealed

__all__ = [
    "ExchangeSale",
    "OrderFilter",
    "Refund",
    "ReturnLine",
    "Settlement",
    "TakenReturn",
    "cancel",
    "cash_to_hand_out",
    "confirm_pickup",
    "exchange_credit",
    "expire_reservations",
    "get_order",
    "list_orders",
    "mark_ready_for_pickup",
    "mark_shipped",
    "order_location",
    "orders_of_customer",
    "return_lines",
    "settle_exchange",
    "shipping_address",
    "sold_excess",
    "take_return",
]

logger = logging.getLogger("omnigate.orders")


@dataclass(frozen=True, slots=True)
class ReturnLine:
    line_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Refund:
    """One payment's share of a refund, and the order that payment paid. A payment taken at the till
    (cash) is in no provider's hands: its share is handed out by the till, which must be told how much."""

    order_id: int
    method: str
    amount: Decimal

    @property
    def at_till(self) -> bool:
        return self.method in TILL_METHODS


def cash_to_hand_out(refunds: Sequence[Refund], currency: str) -> Decimal:
    """What the till hands out for `refunds`: the shares of payments taken at a till (exact sums of
    recorded amounts; quantized only to show the currency's minor unit, 0.00 when none)."""
    return quantize(sum((share.amount for share in refunds if share.at_till), Decimal(0)), currency)


@dataclass(frozen=True, slots=True)
class TakenReturn:
    """A return as taken: the order after it, and what this very return refunds (decided under the
    order's lock, so a return another till takes meanwhile is never counted in), in all and by
    payment (`refunds`: none while an exchange's refund is netted)."""

    order: r.Order
    refund: Decimal
    return_id: int
    exchange_status: str | None = None  # an exchange's: how the return the key took stands
    netted: bool = False  # its refund is left to the caller, to net against a new sale
    refunds: tuple[Refund, ...] = ()


class _KeyTaken(Exception):
    """A racing attempt with the exchange's key committed its return first."""


@dataclass(frozen=True, slots=True)
class _Step:
    """One transition: the statuses it starts from, the methods it applies to, where it leads."""

    name: str
    sources: tuple[str, ...]
    methods: tuple[str, ...]
    target: str


READY = _Step("ready_for_pickup", (r.PLACED, r.RESERVED), r.COLLECT, r.READY_FOR_PICKUP)
PICKUP = _Step("picked_up", (r.READY_FOR_PICKUP,), r.COLLECT, r.COMPLETED)
SHIP = _Step("shipped", (r.PLACED,), (r.SHIP_TO_ADDRESS,), r.SHIPPED)
CANCEL = _Step("cancelled", (r.PLACED, r.RESERVED, r.READY_FOR_PICKUP), r.FULFILLMENT_METHODS, r.CANCELLED)
EXPIRE = _Step("expired", (r.RESERVED, r.READY_FOR_PICKUP), (r.RESERVE_AND_COLLECT,), r.CANCELLED)
RETURNABLE = (r.COMPLETED, r.SHIPPED, r.PARTIALLY_RETURNED)


async def _locked(session: AsyncSession, order_id: int) -> tuple[OrderRow, list[r.OrderLine]]:
    row = (
        await session.execute(select(OrderRow).where(OrderRow.id == order_id).with_for_update())
    ).scalar_one_or_none()
    if row is None or row.status not in r.VISIBLE:
        raise errors.OrderNotFound("No such order.", ["orderId"])
    return row, (await r.lines_of(session, [order_id]))[order_id]


def _check(step: _Step, row: OrderRow) -> None:
    if row.status not in step.sources or row.fulfillment_method not in step.methods:
        raise errors.InvalidTransition(
            f"A {row.fulfillment_method} order that is {row.status} cannot be {step.name.replace('_', ' ')}.",
            ["orderId"],
        )


async def _event(
    session: AsyncSession, row: OrderRow, lines: Sequence[r.OrderLine], event: str, **extra: object
) -> None:
    await order_event(
        session,
        order_id=row.id,
        event_type=f"order.{event}",
        status=row.status,
        fulfillment_method=row.fulfillment_method,
        pickup_location_id=row.pickup_location_id,
        channel=row.channel_code,
        total=Decimal(row.total),
        currency=row.currency,
        lines=[(ln.sku, ln.variant_id, ln.location_id, ln.quantity) for ln in lines],
        extra=dict(extra),
    )


async def _step(
    services: OrderServices,
    order_id: int,
    step: _Step,
    actor: str | None,
    *,
    stock_change: str | None,
    audit: AuditEntry | None = None,
) -> tuple[r.Order, int | None]:
    """Run `step` on the locked order: `stock_change` "consume" (goods leave) or "release" (held
    stock let go). Returns the order and the payment call it made due (a capture or a void)."""
    now = services.clock.now()
    async with unit_of_work(services) as session:
        row, lines = await _locked(session, order_id)
        _check(step, row)
        why = stock.Movement(f"order.{step.name}", str(order_id), actor)
        for line in sorted(lines, key=lambda ln: (ln.location_id, ln.variant_id)):
            if stock_change == "consume":
                await stock.consume(session, line.location_id, line.variant_id, line.quantity, why)
            elif stock_change == "release":
                await stock.release(session, line.location_id, line.variant_id, line.quantity, why)
        due: CallAction | None = None
        if step.target in (r.COMPLETED, r.SHIPPED) and row.payment_status in (r.AUTHORIZED, r.DUE_AT_PICKUP):
            due = CallAction.CAPTURE if row.payment_status == r.AUTHORIZED else None
            row.payment_status = r.CAPTURED  # cash on pickup: paid at the till as the goods are handed over
        if step.target in (r.COMPLETED, r.SHIPPED):
            await points.earn(session, row, now)  # fulfilled: points earned, once per order
        elif step.target == r.CANCELLED:
            # stock (above), then promotion counters, then the loyalty account: the order checkout locks them in
            await usage.release(
                session, row.promotion_ids or [], customer_key=row.customer_key, order_ref=r.order_number(order_id)
            )
            await points.give_back(session, row, now, f"order {step.name}")  # a cancelled order earns nothing
            due = CallAction.VOID if row.payment_status == r.AUTHORIZED else None
            row.payment_status = r.VOIDED
        row.status = step.target
        row.updated_at = now
        await _event(session, row, lines, step.name)
        if step.target == r.READY_FOR_PICKUP:  # the customer is told, with the step or not at all
            await mail.ready_for_pickup(await session.connection(), services, row, now)
        await audit_action(services, session, audit, row.customer_key)
        amount = Decimal(row.total) if due == CallAction.CAPTURE else None
        call = await _due(session, row.id, row.payment_reference, due, amount, now)
    return r.to_order(row, lines), call


async def _due(
    session: AsyncSession,
    order_id: int,
    reference: str | None,
    action: CallAction | None,
    amount: Decimal | None,
    now: datetime,
) -> int | None:
    """Record the payment call a step makes due, in its unit of work (none for cash: paid at the till)."""
    if action is None or reference is None or (action == CallAction.REFUND and not amount):
        return None
    return await calls.record(session, order_id=order_id, action=action, reference=reference, amount=amount, now=now)


async def _pay(services: OrderServices, call: int | None) -> None:
    """Make the call a committed change made due; one the provider refuses waits for `payments retry`."""
    if call is not None:
        await calls.make(services.engine, services.payments, services.clock, call)


async def mark_ready_for_pickup(
    services: OrderServices, order_id: int, *, actor: str | None, audit: AuditEntry | None = None
) -> r.Order:
    order, _ = await _step(services, order_id, READY, actor, stock_change=None, audit=audit)
    return order


async def confirm_pickup(
    services: OrderServices, order_id: int, *, actor: str | None, audit: AuditEntry | None = None
) -> r.Order:
    """Handed over at the store: stock leaves, the payment is captured (cash on pickup: paid now)."""
    order, call = await _step(services, order_id, PICKUP, actor, stock_change="consume", audit=audit)
    await _pay(services, call)
    return order


async def mark_shipped(
    services: OrderServices, order_id: int, *, actor: str | None, audit: AuditEntry | None = None
) -> r.Order:
    order, call = await _step(services, order_id, SHIP, actor, stock_change="consume", audit=audit)
    await _pay(services, call)
    return order


async def cancel(
    services: OrderServices, order_id: int, *, actor: str | None, audit: AuditEntry | None = None
) -> r.Order:
    """Before hand-over or shipping: held stock is released, the authorization voided."""
    order, call = await _step(services, order_id, CANCEL, actor, stock_change="release", audit=audit)
    await _pay(services, call)
    return order


def _refund_for(line: r.OrderLine, quantity: int, currency: str) -> Decimal:
    """What `quantity` more returned units of the line refund: the line's share for all its units
    returned so far, rounded once, less what was refunded before. Each return's share rounded on its
    own could add up to more than the line cost (a last refund below zero); cumulative, the refunds
    never do, none is negative, and the whole line refunds exactly what was paid for it."""
    owed = quantize(line.total * (line.quantity_returned + quantity) / line.quantity, currency)
    return max(owed - line.amount_refunded, Decimal(0))


async def return_lines(
    services: OrderServices,
    order_id: int,
    lines: Sequence[ReturnLine],
    location_id: int,
    *,
    actor: str | None,
    audit: AuditEntry | None = None,
) -> r.Order:
    """Goods come back at `location_id` (any store): restocked there, refunded, order updated."""
    taken = await take_return(services, order_id, lines, location_id, actor=actor, audit=audit)
    return taken.order


async def take_return(
    services: OrderServices,
    order_id: int,
    lines: Sequence[ReturnLine],
    location_id: int,
    *,
    actor: str | None,
    audit: AuditEntry | None = None,
    exchange: ExchangeSale | None = None,
) -> TakenReturn:
    """`return_lines`, answering with this return's refund too. `exchange` (an exchange's sale: its
    cart and key) takes the return once per key: a retry is answered with the return the key took, so
    its goods are never restocked nor refunded twice. A key that took a return of another order, or
    that already names an order of the cart (a sale comes after its return, so that is another
    checkout's), is IDEMPOTENCY_KEY_REUSED before anything is taken: replaying that sale, paid
    already, would swallow this return's refund. An exchange's refund is recorded but not paid
    (`netted`: the caller nets it against the new sale), unless the order was itself bought on an
    exchange's credit: then each of its payments is paid back its share at once (`_refund_routes`)."""
    if (await catalog.locations_by_ids(services.engine, [location_id])).get(location_id) is None:
        raise errors.OrderProblem(errors.OrderErrorCode.LOCATION_NOT_FOUND, "No such location.", ["locationId"])
    take = partial(_take, services, order_id, lines, location_id, actor, audit, exchange)
    try:
        return await take()
    except _KeyTaken:  # the unique key refused a second return: the racing attempt's is committed now
        return await take()


async def _take(
    services: OrderServices,
    order_id: int,
    lines: Sequence[ReturnLine],
    location_id: int,
    actor: str | None,
    audit: AuditEntry | None,
    exchange: ExchangeSale | None,
) -> TakenReturn:
    now = services.clock.now()
    exchange_key = exchange.key if exchange is not None else None
    async with unit_of_work(services) as session:
        row, current = await _locked(session, order_id)
        netted = exchange is not None and _netted(row)
        if exchange is not None:
            found = select(OrderReturnRow).where(OrderReturnRow.exchange_key == exchange_key)
            earlier = (await session.execute(found)).scalar_one_or_none()
            if earlier is not None and earlier.order_id == order_id:
                return await _replayed(session, row, earlier, lines, r.to_order(row, current), netted)
            if earlier is not None or await _sale_of(session, exchange, live_only=False):
                raise errors.IdempotencyKeyReused(
                    "This idempotency key was used with this cart for another order or sale: use a new key.",
                    ["idempotencyKey"],
                )
        if row.status not in RETURNABLE:
            raise errors.InvalidTransition(f"A {row.status} order cannot be returned.", ["orderId"])
        by_id = {line.id: line for line in current}
        problems: list[DomainError] = []
        wanted: dict[int, int] = {}
        for i, item in enumerate(lines):
            line = by_id.get(item.line_id)
            if line is None:
                problems.append(
                    errors.OrderProblem(
                        errors.OrderErrorCode.ORDER_LINE_NOT_FOUND,
                        "No such line in this order.",
                        ["lines", str(i), "orderLineId"],
                    )
                )
                continue
            total = wanted.get(line.id, 0) + item.quantity
            if item.quantity < 1 or line.quantity_returned + total > line.quantity:
                left = line.quantity - line.quantity_returned
                problems.append(
                    errors.OrderProblem(
                        errors.OrderErrorCode.RETURN_QUANTITY_INVALID,
                        f"Between 1 and {left} can be returned.",
                        ["lines", str(i), "quantity"],
                    )
                )
                continue
            wanted[line.id] = total
        if not lines:
            problems.append(
                errors.OrderProblem(errors.OrderErrorCode.RETURN_LINES_REQUIRED, "Name the lines returned.", ["lines"])
            )
        if problems:
            raise errors.OrderInputErrors(problems)
        why = stock.Movement("order.returned", str(order_id), actor)
        # back on the shelf in variant order: the one order every unit of work locks a store's rows in
        for line in sorted(current, key=lambda ln: ln.variant_id):
            if wanted.get(line.id):
                await stock.restock(session, location_id, line.variant_id, wanted[line.id], why)
        refund = Decimal(0)
        updated = []
        for line in current:
            quantity = wanted.get(line.id, 0)
            if quantity:
                line_refund = _refund_for(line, quantity, row.currency)
                refund += line_refund
                line = _returned(line, quantity, line_refund)
                await session.execute(
                    update(OrderLineRow)
                    .where(OrderLineRow.id == line.id)
                    .values(quantity_returned=line.quantity_returned, amount_refunded=line.amount_refunded)
                )
            updated.append(line)
        all_back = all(line.quantity_returned == line.quantity for line in updated)
        row.status = r.RETURNED if all_back else r.PARTIALLY_RETURNED
        paid = row.payment_status in (r.CAPTURED, r.PARTIALLY_REFUNDED)
        refunded_before = Decimal(row.amount_refunded)
        row.amount_refunded = refunded_before + refund
        if paid:
            row.payment_status = r.REFUNDED if row.amount_refunded >= Decimal(row.total) else r.PARTIALLY_REFUNDED
        row.updated_at = now
        returned = OrderReturnRow(
            order_id=order_id,
            location_id=location_id,
            lines=[[k, v] for k, v in sorted(wanted.items())],
            refund=refund,
            actor=actor,
            created_at=now,
            exchange_key=exchange_key,
            exchange_status=r.EXCHANGE_TAKEN if exchange_key is not None else None,
        )
        session.add(returned)
        try:
            await session.flush()
        except IntegrityError:
            if exchange_key is None:
                raise
            raise _KeyTaken() from None
        await points.reverse(session, row, str(returned.id), now, whole=all_back)  # the returned share it earned
        if all_back:
            await points.give_back(session, row, now, "order returned")
        await _event(session, row, updated, "returned", returnLocationId=location_id, refund=refund)
        await audit_action(services, session, audit, row.customer_key)
        routes = await _refund_routes(session, row, refunded_before, refund) if paid and not netted else []
        due = [
            await _due(session, row.id, reference, CallAction.REFUND, share.amount, now) for reference, share in routes
        ]
    for call in due:
        await _pay(services, call)
    refunds = _shares(routes)
    return TakenReturn(r.to_order(row, updated), refund, returned.id, returned.exchange_status, netted, refunds)


async def _refund_routes(
    session: AsyncSession, row: OrderRow, refunded_before: Decimal, refund: Decimal
) -> list[tuple[str | None, Refund]]:
    """Where a return's refund is paid, by payment reference (None: taken at a till, no provider's):
    the order's own payment; for an exchange's sale, what its own payment was charged first, the
    rest (the credit's share) to the payment of the order the credit's goods were bought in. No
    payment ever gets back more than it was charged."""
    credit = Decimal(row.exchange_credit or 0)
    if not credit or row.credit_order_id is None:
        return [(row.payment_reference, Refund(row.id, row.payment_method, refund))]
    charged = Decimal(row.total) - credit
    own = max(Decimal(0), min(refund, charged - min(refunded_before, charged)))
    found = select(OrderRow.payment_reference, OrderRow.payment_method).where(OrderRow.id == row.credit_order_id)
    original = (await session.execute(found)).one_or_none()
    reference, method = original if original is not None else (None, "unknown")  # deleted past its retention
    return [
        (row.payment_reference, Refund(row.id, row.payment_method, own)),
        (reference, Refund(row.credit_order_id, method, refund - own)),
    ]


def _shares(routes: Sequence[tuple[str | None, Refund]]) -> tuple[Refund, ...]:
    return tuple(share for _, share in routes if share.amount)


async def _restated(session: AsyncSession, row: OrderRow, earlier: OrderReturnRow) -> tuple[Refund, ...]:
    """The shares a return paid at once, worked out again for a retry of its exchange, on what the
    order's returns before it had refunded, as they were then (its returns are taken in turn under
    its lock, so in the order of their ids)."""
    if row.payment_status not in (r.CAPTURED, r.PARTIALLY_REFUNDED, r.REFUNDED):
        return ()
    before = select(OrderReturnRow.refund).where(OrderReturnRow.order_id == row.id, OrderReturnRow.id < earlier.id)
    refunded_before = sum((Decimal(x) for x in (await session.execute(before)).scalars()), Decimal(0))
    return _shares(await _refund_routes(session, row, refunded_before, Decimal(earlier.refund)))


async def _replayed(
    session: AsyncSession,
    row: OrderRow,
    earlier: OrderReturnRow,
    lines: Sequence[ReturnLine],
    order: r.Order,
    netted: bool,
) -> TakenReturn:
    """The return an exchange's key took, for a retry asking for the same lines; its refunds stated
    again (none while netted: the exchange states its settlement itself)."""
    asked: dict[int, int] = {}
    for item in lines:
        asked[item.line_id] = asked.get(item.line_id, 0) + item.quantity
    if [[k, v] for k, v in sorted(asked.items())] != earlier.lines:
        raise errors.IdempotencyKeyReused(
            "This idempotency key took a return of other lines: use a new key.", ["idempotencyKey"]
        )
    refunds = () if netted else await _restated(session, row, earlier)
    return TakenReturn(order, Decimal(earlier.refund), earlier.id, earlier.exchange_status, netted, refunds)


@dataclass(frozen=True, slots=True)
class ExchangeSale:
    """Which checkout is an exchange's sale: its cart and idempotency key (the key is per cart)."""

    cart_id: str
    idempotency_key: str

    @property
    def key(self) -> str:
        """The return's `exchange_key` (a cart id is URL-safe base64: it holds no colon)."""
        return f"{self.cart_id}:{self.idempotency_key}"

    @classmethod
    def of(cls, key: str) -> ExchangeSale:
        cart_id, _, idempotency_key = key.partition(":")
        return cls(cart_id, idempotency_key)


@dataclass(frozen=True, slots=True)
class Settlement:
    """How an exchange's return stands after an attempt to settle it, and whether that attempt closed
    it: only the one that closed it paid its refund, so only its answer hands the cash out."""

    status: str
    closed: bool = False


def _netted(row: OrderRow) -> bool:
    """Whether an exchange of this order nets its return's refund against the new sale: not when the
    order was itself sold on an exchange's credit (each of its payments is paid back at once)."""
    return not row.exchange_credit


def exchange_credit(refund: Decimal, netted: bool) -> Decimal:
    """What an exchange's return credits its sale with (and refunds in full should the sale fail)."""
    return refund if netted else Decimal(0)


def sold_excess(credit: Decimal, sale_total: Decimal) -> Decimal:
    """What a sold exchange pays back: the credit the new goods did not use."""
    return max(credit - sale_total, Decimal(0))


async def settle_exchange(
    services: OrderServices, order: r.Order, return_id: int, outcome: str, refund: Decimal, sale: ExchangeSale
) -> Settlement:
    """Close an exchange's TAKEN return as `outcome` (SOLD or REFUNDED) and pay `refund` back, in one
    unit of work on the return's locked row, and only once: of attempts racing with one key (and
    `expire_reservations`' sweep), only the one that closes it pays. Answers how the return stands
    after: another's outcome when that one closed it, or TAKEN when a refund was refused because a
    sale of the exchange is PENDING or placed (a racing retry reserved it on this very credit, as
    checkout's `_hold_exchange` allows only while the return is TAKEN: the return is left to that
    attempt to settle)."""
    now = services.clock.now()
    async with unit_of_work(services) as session:
        locked = select(OrderReturnRow.exchange_status).where(OrderReturnRow.id == return_id).with_for_update()
        status = str((await session.execute(locked)).scalar_one())
        if status != r.EXCHANGE_TAKEN:
            return Settlement(status)
        if outcome == r.EXCHANGE_REFUNDED and await _sale_live(session, sale):
            return Settlement(r.EXCHANGE_TAKEN)
        await session.execute(
            update(OrderReturnRow).where(OrderReturnRow.id == return_id).values(exchange_status=outcome)
        )
        call = await _due(session, order.id, order.payment_reference, CallAction.REFUND, refund, now)
    await _pay(services, call)
    return Settlement(outcome, closed=True)


async def _sale_live(session: AsyncSession, sale: ExchangeSale) -> bool:
    """Whether the exchange's sale is PENDING or placed. Read after the return's row lock, so on
    PostgreSQL it sees a sale whose reservation committed while this waited for that lock."""
    return await _sale_of(session, sale, live_only=True)


async def _sale_of(session: AsyncSession, sale: ExchangeSale, *, live_only: bool) -> bool:
    """Whether an order of the exchange's cart and key exists (`live_only`: PENDING or placed)."""
    found = select(OrderRow.id).where(
        OrderRow.cart_id == sale.cart_id, OrderRow.idempotency_key == sale.idempotency_key
    )
    if live_only:
        found = found.where(OrderRow.status != r.FAILED)
    return (await session.execute(found.limit(1))).first() is not None


async def _sale_state(session: AsyncSession, sale: ExchangeSale) -> tuple[str, Decimal] | None:
    """The status and total of the exchange's sale; None when it left no order."""
    found = select(OrderRow.status, OrderRow.total).where(
        OrderRow.cart_id == sale.cart_id, OrderRow.idempotency_key == sale.idempotency_key
    )
    row = (await session.execute(found.order_by(OrderRow.id.desc()).limit(1))).first()
    return (str(row[0]), Decimal(row[1])) if row is not None else None


def _returned(line: r.OrderLine, quantity: int, refund: Decimal) -> r.OrderLine:
    from dataclasses import replace

    return replace(
        line, quantity_returned=line.quantity_returned + quantity, amount_refunded=line.amount_refunded + refund
    )


# ---------------------------------------------------------------- expiry


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    reservations_released: int
    checkouts_failed: int
    exchanges_refunded: int = 0  # abandoned with no sale: the return's credit paid back in full
    exchanges_sold: int = 0  # abandoned after the sale was placed: closed, any unused credit paid back
    cash_owed: tuple[Refund, ...] = ()  # what those owe payments taken at a till: no till was told


async def expire_reservations(services: OrderServices) -> ExpiryReport:
    """Release reserve & collect orders past `reservedUntil`, fail checkouts stuck PENDING (a crash
    between reserving and confirming), then settle exchanges abandoned with their return TAKEN (a
    crash or an unexpected error after taking it: see `_settle_abandoned_exchanges`). Idempotent,
    safe on every replica at once: each is changed in its own unit of work, on its locked row, only
    if still due."""
    now = services.clock.now()
    async with AsyncSession(services.engine) as session:  # reads: not the writer's connection
        overdue = list(
            (
                await session.execute(
                    select(OrderRow.id).where(
                        OrderRow.fulfillment_method == r.RESERVE_AND_COLLECT,
                        OrderRow.status.in_(EXPIRE.sources),
                        OrderRow.reserved_until <= now,
                    )
                )
            ).scalars()
        )
        stuck = list(
            (
                await session.execute(
                    select(OrderRow.id, OrderRow.payment_method).where(
                        OrderRow.status == r.PENDING, OrderRow.placed_at <= now - services.pending_timeout
                    )
                )
            ).all()
        )
    released = 0
    for order_id in overdue:
        try:
            _, call = await _step(services, order_id, EXPIRE, "expire-reservations", stock_change="release")
        except (errors.InvalidTransition, errors.OrderNotFound):
            continue  # collected, cancelled or expired meanwhile (another replica)
        await _pay(services, call)
        released += 1
    failed = 0
    for order_id, method in stuck:
        # what the checkout may have authorized, by the order number it was requested under (the
        # provider's reference is written only at confirmation): voided by a recorded call
        void = r.order_number(order_id) if method in PROVIDER_METHODS else None
        if await fail_pending(services, order_id, r.VOIDED, "order.checkout_abandoned", void=void):
            failed += 1
    settled = await _settle_abandoned_exchanges(services, now)  # after the failing: an exchange's sale among them
    return ExpiryReport(released, failed, settled.refunded, settled.sold, settled.cash_owed)


@dataclass(frozen=True, slots=True)
class _Abandoned:
    """An exchange's return left TAKEN, as read before settling it: what its attempt's answer would
    have stated and paid."""

    order: r.Order
    return_id: int
    sale: ExchangeSale
    credit: Decimal
    paid_at_take: tuple[Refund, ...]  # shares the return paid at once (not netted), restated


@dataclass(frozen=True, slots=True)
class _Swept:
    refunded: int = 0
    sold: int = 0
    cash_owed: tuple[Refund, ...] = ()


async def _settle_abandoned_exchanges(services: OrderServices, now: datetime) -> _Swept:
    """An exchange whose attempt died after taking the return (a crash, an unexpected error) leaves it
    TAKEN, its credit owed, and only a retry with its key would settle it. Past the pending timeout
    (its sale, if PENDING, was failed just before), each is settled as its attempt would have been:
    REFUNDED in full when its sale is missing or FAILED, SOLD with the unused credit paid back when
    the sale was placed; one still PENDING is left. Through `settle_exchange`, on the return's locked
    row: a retry or a late sale racing this never has the credit paid twice, nor a sold one refunded.
    What is owed to payments taken at a till is answered (and logged): no till was told to hand it out."""
    swept = _Swept()
    for due in await _abandoned(services, now - services.pending_timeout):
        async with AsyncSession(services.engine) as session:
            state = await _sale_state(session, due.sale)
        if state is not None and state[0] == r.PENDING:
            continue  # its attempt is still paying, or a later run fails it
        if state is None or state[0] == r.FAILED:
            outcome, amount = r.EXCHANGE_REFUNDED, due.credit
        else:  # placed: a sale never fails once placed, so this holds under the lock too
            outcome, amount = r.EXCHANGE_SOLD, sold_excess(due.credit, state[1])
        settlement = await settle_exchange(services, due.order, due.return_id, outcome, amount, due.sale)
        if settlement.closed:
            swept = _swept(swept, due, outcome, amount)
    return swept


async def _abandoned(services: OrderServices, before: datetime) -> list[_Abandoned]:
    """Exchanges' returns TAKEN before `before`, with their orders (read on a plain connection)."""
    taken = (
        select(OrderReturnRow, OrderRow)
        .join(OrderRow, OrderRow.id == OrderReturnRow.order_id)
        .where(OrderReturnRow.exchange_status == r.EXCHANGE_TAKEN, OrderReturnRow.created_at <= before)
        .order_by(OrderReturnRow.id)
    )
    found = []
    async with AsyncSession(services.engine) as session:
        for returned, row in (await session.execute(taken)).all():
            netted = _netted(row)
            found.append(
                _Abandoned(
                    r.to_order(row, ()),
                    returned.id,
                    ExchangeSale.of(str(returned.exchange_key)),
                    exchange_credit(Decimal(returned.refund), netted),
                    () if netted else await _restated(session, row, returned),
                )
            )
    return found


def _swept(swept: _Swept, due: _Abandoned, outcome: str, amount: Decimal) -> _Swept:
    """The tally with one more exchange closed, and the cash it owes at a till (logged for a person)."""
    order = due.order
    settled = (Refund(order.id, order.payment_method, amount),) if amount else ()
    owed = tuple(share for share in due.paid_at_take + settled if share.at_till)
    for share in owed:
        logger.warning(
            "exchange return %d closed %s by expire-reservations: %s in cash is owed to the customer of %s",
            due.return_id,
            outcome,
            share.amount,
            r.order_number(share.order_id),
        )
    refunded, sold = swept.refunded, swept.sold
    if outcome == r.EXCHANGE_REFUNDED:
        refunded += 1
    else:
        sold += 1
    return _Swept(refunded, sold, swept.cash_owed + owed)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class OrderFilter:
    statuses: tuple[str, ...] = ()
    pickup_location_id: int | None = None
    channel: str | None = None
    customer_key: int | None = None


async def get_order(engine: AsyncEngine, order_id: int) -> r.Order | None:
    return (await r.orders_by_ids(engine, [order_id])).get(order_id)


async def order_location(engine: AsyncEngine, order_id: int) -> tuple[int | None, int | None] | None:
    """(customer key, pickup or selling store id) of a visible order: what access rules look at."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(OrderRow.customer_key, OrderRow.pickup_location_id).where(
                    OrderRow.id == order_id, OrderRow.status.in_(r.VISIBLE)
                )
            )
        ).first()
    return (row[0], row[1]) if row else None


async def list_orders(engine: AsyncEngine, where: OrderFilter, *, first: int, after_id: int | None) -> list[r.Order]:
    """Newest first (web, mobile, store and call-center orders together); `first + 1` are read so
    the caller can tell whether there is a next page."""
    statuses = [s for s in where.statuses if s in r.VISIBLE] if where.statuses else list(r.VISIBLE)
    stmt = select(OrderRow.id).where(OrderRow.status.in_(statuses))
    if where.pickup_location_id is not None:
        stmt = stmt.where(OrderRow.pickup_location_id == where.pickup_location_id)
    if where.channel is not None:
        stmt = stmt.where(OrderRow.channel_code == where.channel)
    if where.customer_key is not None:
        stmt = stmt.where(OrderRow.customer_key == where.customer_key)
    if after_id is not None:
        stmt = stmt.where(OrderRow.id < after_id)
    async with engine.connect() as conn:
        ids = list((await conn.execute(stmt.order_by(OrderRow.id.desc()).limit(first + 1))).scalars())
    found = await r.orders_by_ids(engine, ids)
    return [found[i] for i in ids if i in found]


async def orders_of_customer(
    engine: AsyncEngine, customer_key: int, *, first: int, after_id: int | None
) -> list[r.Order]:
    return await list_orders(engine, OrderFilter(customer_key=customer_key), first=first, after_id=after_id)


async def shipping_address(services: OrderServices, order: r.Order) -> dict[str, str | None] | None:
    """The sealed shipping address, opened by the vault; None when there is none or it was erased."""
    if order.shipping_address_sealed is None or order.subject_id is None:
        return None
    [value] = await services.vault.decrypt_many(
        [Sealed(order.subject_id, "orders", "shipping_address", order.shipping_address_sealed)]
    )
    if value is ERASED or value is None:
        return None
    import json

    loaded: dict[str, str | None] = json.loads(str(value))
    return loaded
