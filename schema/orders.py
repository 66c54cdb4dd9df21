"""Orders in GraphQL: checkout, the order steps, `order(id)`, `orders(filter)`, `Customer.orders`.

Who may see an order and run each step is in policies/access.toml (the `Order` type rule and
the conditions `own_order`, `order_store`, `own_store_filter`, `at_own_store`); this module
only shows orders and turns domain errors into `userErrors`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry
from strawberry.types import Info

from commerce.cart.errors import CartForbidden
from commerce.cart.service import CartRules
from commerce.catalog import service as catalog
from commerce.customers.service import Address as AddressValue
from commerce.orders import checkout as checkouts
from commerce.orders import exchange as exchanges
from commerce.orders import records, service
from commerce.orders.errors import CartMerged
from commerce.orders.unit import OrderServices
from commerce.payments.provider import PaymentError
from core.errors import DomainError
from core.ids import InvalidGlobalId, from_global_id, int_key, to_global_id
from schema.authorization import require
from schema.cart import cart_authorizer, denied_cart
from schema.catalog import Channel, Location
from schema.context import Services
from schema.customers import Address, AddressInput, Customer
from schema.errors import UserError, user_errors
from schema.execution import current_trace_id
from schema.money import Money
from schema.node import Node, decode_id, decode_int_id, register_node
from schema.pagination import PageInfo, check_first, decode_cursor, encode_cursor
from vault.audit import AuditEntry

__all__ = [
    "Order",
    "OrderConnection",
    "OrderExchangeMutation",
    "OrderMutation",
    "OrderQuery",
    "Refund",
    "customer_orders",
    "order_services",
    "order_services_of",
]


@strawberry.enum
class FulfillmentMethod(Enum):
    SHIP_TO_ADDRESS = "SHIP_TO_ADDRESS"
    CLICK_AND_COLLECT = "CLICK_AND_COLLECT"
    RESERVE_AND_COLLECT = "RESERVE_AND_COLLECT"
    IN_STORE = "IN_STORE"


@strawberry.enum
class OrderStatus(Enum):
    PLACED = "PLACED"
    RESERVED = "RESERVED"
    READY_FOR_PICKUP = "READY_FOR_PICKUP"
    COMPLETED = "COMPLETED"
    SHIPPED = "SHIPPED"
    CANCELLED = "CANCELLED"
    RETURNED = "RETURNED"
    PARTIALLY_RETURNED = "PARTIALLY_RETURNED"


@strawberry.enum
class PaymentStatus(Enum):
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    DUE_AT_PICKUP = "DUE_AT_PICKUP"
    DECLINED = "DECLINED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"


@strawberry.type
class OrderLine:
    id: strawberry.ID
    sku: str
    name: str = strawberry.field(description="A snapshot: later catalog changes do not alter it.")
    quantity: int
    quantity_returned: int
    unit_price: Money
    total: Money = strawberry.field(description="Gross (VAT included), after discounts.")
    tax_rate: Decimal = strawberry.field(description='e.g. "0.23"')
    tax_amount: Money


@strawberry.type
class Payment:
    method: str
    status: PaymentStatus
    amount: Money
    refunded: Money


@strawberry.type
class Order(Node):
    id: strawberry.ID
    number: str
    status: OrderStatus
    placed_at: datetime
    fulfillment_method: FulfillmentMethod
    reserved_until: datetime | None = strawberry.field(
        description="RESERVE_AND_COLLECT: when the held stock is released."
    )
    loyalty_points_earned: int
    loyalty_points_redeemed: int
    record: strawberry.Private[records.Order]
    store_code: strawberry.Private[str | None]  # the pickup store, or the store that sold it at the till
    from_checkout: strawberry.Private[bool]  # placed (or replayed) by this request's checkoutComplete
    serving_store_code: strawberry.Private[str | None] = None  # the store that just took its return

    @property
    def customer_key(self) -> int | None:
        """Whose order this is (None: a guest's): the subject policies/access.toml checks and audits."""
        return self.record.customer_key

    def _money(self, amount: Decimal) -> Money:
        return Money(amount=amount, currency=self.record.currency)

    @strawberry.field
    async def channel(self, info: Info) -> Channel:
        found = await info.context.loaders.channels_by_code.load(self.record.channel_code)
        if found is None:
            raise LookupError(f"channel {self.record.channel_code!r} of an order no longer exists")
        return Channel.of(found)

    @strawberry.field
    def lines(self) -> list[OrderLine]:
        return [
            OrderLine(
                id=strawberry.ID(to_global_id("OrderLine", line.id)),
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                quantity_returned=line.quantity_returned,
                unit_price=self._money(line.unit_price),
                total=self._money(line.total),
                tax_rate=line.tax_rate,
                tax_amount=self._money(line.tax_amount),
            )
            for line in self.record.lines
        ]

    @strawberry.field
    def subtotal(self) -> Money:
        return self._money(self.record.subtotal)

    @strawberry.field
    def discount_total(self) -> Money:
        return self._money(self.record.discount_total)

    @strawberry.field
    def total(self) -> Money:
        return self._money(self.record.total)

    @strawberry.field
    def tax_total(self) -> Money:
        return self._money(self.record.tax_total)

    @strawberry.field(description="The discount codes the order used.")
    def discount_codes(self) -> list[str]:
        return list(self.record.discount_codes)

    @strawberry.field
    async def pickup_location(self, info: Info) -> Location | None:
        if self.record.pickup_location_id is None:
            return None
        found = await info.context.loaders.locations.load(self.record.pickup_location_id)
        return Location.of(found) if found else None

    @strawberry.field(description="SHIP_TO_ADDRESS only; null once the customer's data was erased.")
    async def shipping_address(self, info: Info) -> Address | None:
        value = await service.shipping_address(order_services(info), self.record)
        return Address.of(AddressValue(**value)) if value else None  # type: ignore[arg-type]

    @strawberry.field(description="Null for a guest order.")
    def customer(self) -> Customer | None:
        return Customer.of(self.record.customer_key) if self.record.customer_key is not None else None

    @strawberry.field
    def payment(self) -> Payment:
        r = self.record
        return Payment(
            method=r.payment_method,
            status=PaymentStatus(r.payment_status),
            amount=self._money(r.total),
            refunded=self._money(r.amount_refunded),
        )


@strawberry.type
class OrderEdge:
    node: Order
    cursor: str


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]
    page_info: PageInfo


@strawberry.type(description="One payment's share of a refund.")
class Refund:
    order_number: str = strawberry.field(description="The order whose payment gets it back.")
    method: str = strawberry.field(description='How that order was paid: "card", "blik", "cash", "cash_on_pickup".')
    amount: Money
    at_till: bool = strawberry.field(
        description="Paid at a till (cash): no provider holds the money, the till hands it out. "
        "Otherwise the payment provider pays it back."
    )

    @classmethod
    def of(cls, share: service.Refund, currency: str) -> Refund:
        return cls(
            order_number=records.order_number(share.order_id),
            method=share.method,
            amount=Money(amount=share.amount, currency=currency),
            at_till=share.at_till,
        )


_REFUNDS = "What this change paid back, by payment (a retried exchange answers with the same again)."
_CASH = (
    "What the till hands out in cash now: the refunds `atTill`, 0.00 when none. Null from steps that "
    "refund nothing (checkout, pickup, ...) and from answers where no goods were taken back."
)


_REPLAYED = (
    "True when this answer restates an exchange already settled for this key (a retry, a request sent "
    "twice, or an exchange `expire-reservations` settled after its attempt died): its `refunds` were "
    "paid and its `cashToHandOut` was due with the answer that settled it, so the till must not hand "
    "that cash out again. Exactly one answer settles an exchange (false); an error stating no refunds "
    "is false too. Cash owed for an exchange the expiry settled is listed in the command's output."
)


def _refunds(shares: Sequence[service.Refund], currency: str) -> tuple[list[Refund], Money]:
    """The `refunds` and `cashToHandOut` of a payload that paid `shares` back."""
    cash = Money(amount=service.cash_to_hand_out(shares, currency), currency=currency)
    return [Refund.of(share, currency) for share in shares], cash


@strawberry.type
class OrderPayload:
    order: Order | None
    user_errors: list[UserError]
    refunds: list[Refund] = strawberry.field(default_factory=list, description=_REFUNDS)
    cash_to_hand_out: Money | None = strawberry.field(default=None, description=_CASH)


@strawberry.input
class PaymentInput:
    method: str = strawberry.field(description='"card", "blik", "cash_on_pickup" (reserve & collect), "cash" (till).')
    token: str | None = strawberry.field(
        default=None, description="The card token or BLIK code; test cards are listed in commerce/payments."
    )


@strawberry.input
class InvoiceInput:
    company_name: str
    tax_id: str
    address: AddressInput


@strawberry.input
class CheckoutInput:
    cart_id: strawberry.ID
    idempotency_key: str = strawberry.field(
        description="A retry with the same key returns the same order, never a second one. After a declined "
        "payment the key keeps answering PAYMENT_DECLINED: pay again with a new key."
    )
    fulfillment_method: FulfillmentMethod
    payment: PaymentInput
    pickup_location_id: strawberry.ID | None = None
    shipping_address: AddressInput | None = None
    loyalty_points_to_redeem: int | None = 0
    invoice: InvoiceInput | None = None


@strawberry.input
class ReturnLineInput:
    order_line_id: strawberry.ID
    quantity: int


@strawberry.type
class OrderExchangePayload:
    returned: Order | None = strawberry.field(description="The original order, with the goods taken back.")
    order: Order | None = strawberry.field(description="The new sale.")
    difference: Money | None = strawberry.field(description="Positive: charged for the new goods; negative: refunded.")
    user_errors: list[UserError]
    refunds: list[Refund] = strawberry.field(default_factory=list, description=_REFUNDS)
    cash_to_hand_out: Money | None = strawberry.field(default=None, description=_CASH)
    replayed: bool = strawberry.field(default=False, description=_REPLAYED)


@strawberry.input
class OrderFilter:
    status: list[OrderStatus] | None = None
    pickup_location_id: strawberry.ID | None = None
    channel: str | None = None


# ---------------------------------------------------------------- helpers


def order_services(info: Info) -> OrderServices:
    return order_services_of(info.context.services)


def order_services_of(s: Services) -> OrderServices:
    """What the orders context is given, from the gateway's services and settings."""
    settings = s.settings
    return OrderServices(
        engine=s.engine,
        sessions=s.sessions,
        vault=s.vault,
        clock=s.clock,
        payments=s.payments,
        cart_rules=CartRules.of(settings),
        reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
        payment_timeout=float(settings.payment_timeout_seconds),
        pending_timeout=timedelta(seconds=settings.checkout_pending_timeout_seconds),
        audit=s.audit,
        pricing_cache=s.pricing_cache,
        pickup_hold=timedelta(days=settings.pickup_hold_days),
    )


async def present(
    info: Info, order: records.Order, *, from_checkout: bool = False, serving_location: int | None = None
) -> Order:
    code = await _code(info, order.pickup_location_id)
    return Order(
        id=strawberry.ID(to_global_id("Order", order.id)),
        number=order.number,
        status=OrderStatus(order.status),
        placed_at=order.placed_at,
        fulfillment_method=FulfillmentMethod(order.fulfillment_method),
        reserved_until=order.reserved_until,
        loyalty_points_earned=order.loyalty_points_earned,
        loyalty_points_redeemed=order.loyalty_points_redeemed,
        record=order,
        store_code=code,
        from_checkout=from_checkout,
        serving_store_code=await _code(info, serving_location),
    )


async def _code(info: Info, location_id: int | None) -> str | None:
    found = await info.context.loaders.locations.load(location_id) if location_id is not None else None
    return found.code if found else None


def _address(value: AddressInput | None) -> AddressValue | None:
    return _address_of(value) if value is not None else None


def _address_of(value: AddressInput) -> AddressValue:
    return AddressValue(
        name=value.name,
        line1=value.line1,
        line2=value.line2,
        postal_code=value.postal_code,
        city=value.city,
        country=value.country,
    )


def _optional_key(global_id: str | None, type_name: str) -> int | None:
    """An int key, or 0 (matches nothing: reported by the service) for an undecodable id."""
    if global_id is None:
        return None
    try:
        return int_key(from_global_id(global_id, type_name)[1]) or 0
    except InvalidGlobalId:
        return 0


async def _till_location(info: Info) -> int | None:
    """The store whose till this request comes from (store channel, a token naming a store)."""
    code = info.context.principal.location
    if code is None or info.context.channel.kind != "STORE":
        return None
    found = [loc for loc in await catalog.list_locations(info.context.services.engine) if loc.code == code]
    return found[0].id if found else None


def _audit(info: Info, operation: str) -> AuditEntry | None:
    """The audit record of this operator's action (roles the policy audits), written by the order
    service in the action's own transaction once it knows whose order it is."""
    context = info.context
    principal = context.principal
    if not context.services.policy.is_audited(principal):
        return None
    return AuditEntry(
        actor=principal.subject or principal.role.value,
        role=principal.role.value,
        channel=context.channel.code,
        operation=f"mutation {operation}",
        fields="Order.status",
        subject="",
        outcome="allowed",
        trace_id=current_trace_id(),
    )


async def _order_step(info: Info, order_id: strawberry.ID, step: Callable[..., Any], operation: str) -> OrderPayload:
    """One step of the order named by `orderId`, by whoever acts, audited as `operation`."""
    key = decode_int_id(order_id, "Order", "orderId")
    return await _payload(
        info, lambda: step(order_services(info), key, actor=_actor(info), audit=_audit(info, operation))
    )


def _actor(info: Info) -> str | None:
    """The operator acting (recorded on the order and its stock movements); customers act for themselves."""
    operator: str | None = info.context.principal.operator
    return operator


def _language(info: Info) -> str | None:
    """The request's Accept-Language, which the emails it causes are written in (as the password reset's)."""
    request = info.context.request
    return request.headers.get("accept-language") if request is not None else None


async def _payload(
    info: Info,
    change: Callable[[], Awaitable[records.Order]],
    *,
    from_checkout: bool = False,
    serving_location: int | None = None,
) -> OrderPayload:
    try:
        order = await change()
    except CartForbidden:
        raise denied_cart(info) from None
    except DomainError as error:
        return OrderPayload(order=None, user_errors=user_errors(error))
    shown = await present(info, order, from_checkout=from_checkout, serving_location=serving_location)
    return OrderPayload(order=shown, user_errors=[])


def _page(orders: list[records.Order], first: int) -> tuple[list[records.Order], bool]:
    return orders[:first], len(orders) > first


async def _connection(info: Info, orders: list[records.Order], first: int, after_id: int | None) -> OrderConnection:
    shown, has_next = _page(orders, first)
    nodes = await asyncio.gather(*(present(info, o) for o in shown))  # one batch of locations
    edges = [OrderEdge(node=node, cursor=encode_cursor("Order", o.id)) for node, o in zip(nodes, shown, strict=True)]
    return OrderConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_next,
            has_previous_page=after_id is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


async def customer_orders(info: Info, customer_key: int, first: int | None, after: str | None) -> OrderConnection:
    """`Customer.orders`: every channel's orders together, newest first (the caller authorized the customer)."""
    limit = check_first(first, info.context.settings.max_page_size)
    after_id = decode_cursor("Order", after)
    found = await service.orders_of_customer(info.context.services.engine, customer_key, first=limit, after_id=after_id)
    return await _connection(info, found, limit, after_id)


# ---------------------------------------------------------------- the API


@strawberry.type
class OrderQuery:
    @strawberry.field(description="An order, if the caller may see it (policies/access.toml, type Order).")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        return await _order_by_key(info, int_key(decode_id(id, "Order")))

    @strawberry.field(description="Newest first. Staff: their store's pickups (filter by their store); agents, admins.")
    async def orders(
        self, info: Info, first: int | None = 20, after: str | None = None, filter: OrderFilter | None = None
    ) -> OrderConnection:
        limit = check_first(first, info.context.settings.max_page_size)
        after_id = decode_cursor("Order", after)
        where = service.OrderFilter()
        if filter is not None:
            location = None
            if filter.pickup_location_id is not None:
                location = decode_int_id(filter.pickup_location_id, "Location", "filter.pickupLocationId")
            where = service.OrderFilter(
                statuses=tuple(s.value for s in filter.status or ()),
                pickup_location_id=location,
                channel=filter.channel,
            )
        found = await service.list_orders(info.context.services.engine, where, first=limit, after_id=after_id)
        return await _connection(info, found, limit, after_id)


@strawberry.type
class OrderMutation:
    @strawberry.mutation(description="Place an order from a cart: stock is held, the payment authorized.")
    async def checkout_complete(self, info: Info, input: CheckoutInput) -> OrderPayload:
        context = info.context
        cart_key = decode_id(input.cart_id, "Cart", "input.cartId")
        invoice = None
        if input.invoice is not None:
            invoice_address = _address_of(input.invoice.address)
            invoice = checkouts.Invoice(input.invoice.company_name, input.invoice.tax_id, invoice_address)
        pickup_key = _optional_key(input.pickup_location_id, "Location")
        # through the request's loader: the order's answer names the same location without reading it again
        pickup = await context.loaders.locations.load(pickup_key) if pickup_key else None
        request = checkouts.CheckoutRequest(
            cart_id=cart_key,
            idempotency_key=input.idempotency_key,
            fulfillment_method=input.fulfillment_method.value,
            payment_method=input.payment.method,
            payment_token=input.payment.token,
            channel_code=context.channel.code,
            currency=context.channel.currency,
            pickup_location_id=pickup_key,
            pickup_location=pickup,
            shipping_address=_address(input.shipping_address),
            invoice=invoice,
            till_location_id=await _till_location(info),
            actor=_actor(info),
            customer_key=int_key(context.principal.customer_subject or ""),
            loyalty_points_to_redeem=input.loyalty_points_to_redeem or 0,
            audit=_audit(info, "checkoutComplete"),
            language=_language(info),
        )

        async def change() -> records.Order:
            try:
                return await checkouts.checkout(order_services(info), request, authorize=cart_authorizer(info))
            except PaymentError:
                raise
            except CartMerged as merged:  # the customer's own cart changed too
                await context.services.broadcaster.publish(f"cart:{merged.into}")
                raise
            finally:  # placed, failed or unchanged: every open device re-reads the cart
                await context.services.broadcaster.publish(f"cart:{cart_key}")

        return await _payload(info, change, from_checkout=True)

    @strawberry.mutation(description="Store staff of the pickup location: the order is packed and waiting.")
    async def order_mark_ready_for_pickup(self, info: Info, order_id: strawberry.ID) -> OrderPayload:
        return await _order_step(info, order_id, service.mark_ready_for_pickup, "orderMarkReadyForPickup")

    @strawberry.mutation(description="Store staff of the pickup location: handed over (and paid, if due at pickup).")
    async def order_confirm_pickup(self, info: Info, order_id: strawberry.ID) -> OrderPayload:
        return await _order_step(info, order_id, service.confirm_pickup, "orderConfirmPickup")

    @strawberry.mutation(description="The warehouse (integration role): the parcel left.")
    async def order_mark_shipped(self, info: Info, order_id: strawberry.ID) -> OrderPayload:
        return await _order_step(info, order_id, service.mark_shipped, "orderMarkShipped")

    @strawberry.mutation(description="Before hand-over or shipping: stock released, payment voided.")
    async def order_cancel(self, info: Info, order_id: strawberry.ID) -> OrderPayload:
        return await _order_step(info, order_id, service.cancel, "orderCancel")

    @strawberry.mutation(description="Goods returned at a store (any store): restocked there and refunded.")
    async def order_return_lines(
        self, info: Info, order_id: strawberry.ID, lines: list[ReturnLineInput], location_id: strawberry.ID
    ) -> OrderPayload:
        key = decode_int_id(order_id, "Order", "orderId")
        location = decode_int_id(location_id, "Location", "locationId")
        returned = [
            service.ReturnLine(_optional_key(line.order_line_id, "OrderLine") or 0, line.quantity) for line in lines
        ]
        try:
            taken = await service.take_return(
                order_services(info),
                key,
                returned,
                location,
                actor=_actor(info),
                audit=_audit(info, "orderReturnLines"),
            )
        except DomainError as error:
            return OrderPayload(order=None, user_errors=user_errors(error))
        refunds, cash = _refunds(taken.refunds, taken.order.currency)
        shown = await present(info, taken.order, serving_location=location)
        return OrderPayload(order=shown, user_errors=[], refunds=refunds, cash_to_hand_out=cash)


@strawberry.type
class OrderExchangeMutation:
    @strawberry.mutation(
        description="Staff at the till: goods of an order come back and the cart is sold in their place, "
        "the difference charged or refunded; both orders join the customer's history."
    )
    async def order_exchange(
        self,
        info: Info,
        order_id: strawberry.ID,
        lines: list[ReturnLineInput],
        cart_id: strawberry.ID,
        idempotency_key: str,
        payment: PaymentInput,
    ) -> OrderExchangePayload:
        context = info.context
        key = decode_int_id(order_id, "Order", "orderId")
        cart_key = decode_id(cart_id, "Cart", "cartId")
        returned = [
            service.ReturnLine(_optional_key(line.order_line_id, "OrderLine") or 0, line.quantity) for line in lines
        ]
        till = await _till_location(info)
        sale = checkouts.CheckoutRequest(
            cart_id=cart_key,
            idempotency_key=idempotency_key,
            fulfillment_method=FulfillmentMethod.IN_STORE.value,
            payment_method=payment.method,
            payment_token=payment.token,
            channel_code=context.channel.code,
            currency=context.channel.currency,
            till_location_id=till,
            actor=_actor(info),
            audit=_audit(info, "orderExchange"),
        )
        try:
            done = await exchanges.exchange(order_services(info), key, returned, sale, authorize=cart_authorizer(info))
        except CartForbidden:
            raise denied_cart(info) from None
        except exchanges.ExchangeFailed as failure:
            shown = await present(info, failure.returned, serving_location=till)
            refunds, cash = _refunds(failure.refunds, failure.returned.currency)
            return OrderExchangePayload(
                returned=shown,
                order=None,
                difference=None,
                user_errors=user_errors(failure),
                refunds=refunds,
                cash_to_hand_out=cash,
                replayed=failure.replayed,
            )
        except DomainError as error:
            return OrderExchangePayload(returned=None, order=None, difference=None, user_errors=user_errors(error))
        finally:
            await context.services.broadcaster.publish(f"cart:{cart_key}")
        refunds, cash = _refunds(done.refunds, done.sale.currency)
        return OrderExchangePayload(
            returned=await present(info, done.returned, serving_location=till),
            order=await present(info, done.sale, from_checkout=True),
            difference=Money(amount=done.difference, currency=done.sale.currency),
            user_errors=[],
            refunds=refunds,
            cash_to_hand_out=cash,
            replayed=done.replayed,
        )


@register_node("Order")
async def _order_node(info: Info, key: str) -> Order | None:
    return await _order_by_key(info, int_key(key))


async def _order_by_key(info: Info, key: int | None) -> Order | None:
    """The order, or None. Access first, at the field itself: whoever may not read an order gets
    the same refusal whether or not it exists, so that order ids (sequential) tell a customer
    nothing about others' orders."""
    found = await service.get_order(info.context.services.engine, key) if key else None
    order = await present(info, found) if found is not None else None
    await require(info, "Order", order or _NO_ORDER)
    return order


@dataclass(frozen=True)
class _NoOrder:
    """What the Order rules read, of an order that does not exist: no customer, no store."""

    customer_key: None = None
    store_code: None = None
    serving_store_code: None = None
    from_checkout: bool = False


_NO_ORDER = _NoOrder()
