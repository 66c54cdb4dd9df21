"""Carts in GraphQL: `cart(id)`, the cart mutations and `cartUpdated`.

Who may use each cart operation, and who may read or change whose cart, is in
policies/access.toml (`[types.Cart]` for reading, `[changes.Cart]` for changing): the rule for
a change is evaluated by the cart service on the row it has locked, through `_authorizer`, and
the audit of an operator's change commits in that same transaction. Domain errors become
`userErrors` in one place, `_payload`. Prices come from the pricing engine for the request's
channel, every time a cart is shown.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from commerce.cart import service
from commerce.cart.errors import CartError, CartForbidden, CartInputErrors, CartNotFound, CartVersionConflict
from commerce.cart.service import CartRules, LineAdd, LineSet
from commerce.pricing import service as pricing
from commerce.pricing.engine import PricedCart, PricedLine
from core.ids import InvalidGlobalId, from_global_id, int_key, to_global_id
from core.settings import Settings
from policies.principal import Principal
from schema.authorization import permits
from schema.cart_feed import TooManyFollowers
from schema.catalog import ProductVariant
from schema.errors import ClientError, UserError, forbidden, not_found, unauthenticated, user_error, user_errors
from schema.loaders import Loaders
from schema.money import Money
from schema.node import Node, decode_id, decode_int_id, register_node

__all__ = [
    "Cart",
    "CartLine",
    "CartMutation",
    "CartQuery",
    "CartSubscription",
    "cart_authorizer",
    "customer_cart",
    "denied_cart",
]


@strawberry.type
class AppliedDiscount:
    code: str | None
    description: str
    amount: Money


@strawberry.type
class CartLine:
    id: strawberry.ID
    variant_key: strawberry.Private[int]
    quantity: int
    unit_price: Money
    total: Money

    @strawberry.field
    async def variant(self, info: Info) -> ProductVariant:
        found = await info.context.loaders.variants.load(self.variant_key)
        if found is None:
            raise LookupError(f"variant {self.variant_key} of a cart line is not for sale any more")
        return ProductVariant.of(found)


@strawberry.enum
class CartStatus(Enum):
    ACTIVE = "ACTIVE"
    CHECKING_OUT = "CHECKING_OUT"  # an order is being placed from it (payment pending)
    ORDERED = "ORDERED"  # closed by its order: the customer's next cartCreate starts afresh
    MERGED = "MERGED"  # joined a customer's cart at sign-in
    ABANDONED = "ABANDONED"  # its checkout failed after the customer had started another cart


@strawberry.type
class Cart(Node):
    id: strawberry.ID = strawberry.field(
        description="Unguessable: possession of a guest cart's id grants access to it."
    )
    version: int = strawberry.field(description="Bumped on every change; send it back as expectedVersion.")
    discount_codes: list[str]
    updated_at: datetime
    record: strawberry.Private[service.Cart]
    pricing: strawberry.Private[dict[str, asyncio.Future[PricedCart]]] = dataclasses.field(default_factory=dict)

    @strawberry.field(description="ACTIVE while it can change; ORDERED once an order was placed from it.")
    def status(self) -> CartStatus:
        return CartStatus(self.record.status.upper())

    @property
    def customer_key(self) -> int | None:
        """Whose cart this is (None for a guest's): the subject policies/access.toml audits."""
        return self.record.customer_key

    async def priced(self, info: Info) -> PricedCart:
        """Priced once per cart object, and only when a priced field is asked for."""
        if "priced" not in self.pricing:
            self.pricing["priced"] = asyncio.ensure_future(_price(info, self.record))
        return await self.pricing["priced"]

    @strawberry.field
    async def lines(self, info: Info) -> list[CartLine]:
        priced = await self.priced(info)
        return [_line(line, priced.currency) for line in priced.lines]

    @strawberry.field
    async def discounts(self, info: Info) -> list[AppliedDiscount]:
        priced = await self.priced(info)
        return [
            AppliedDiscount(
                code=d.code, description=d.description, amount=Money(amount=d.amount, currency=priced.currency)
            )
            for d in priced.discounts
        ]

    @strawberry.field
    async def subtotal(self, info: Info) -> Money:
        priced = await self.priced(info)
        return Money(amount=priced.subtotal, currency=priced.currency)

    @strawberry.field
    async def total(self, info: Info) -> Money:
        priced = await self.priced(info)
        return Money(amount=priced.total, currency=priced.currency)


@strawberry.type
class CartPayload:
    cart: Cart | None
    user_errors: list[UserError]


@strawberry.input
class CartLineInput:
    variant_id: strawberry.ID
    quantity: int


@strawberry.input
class CartLineUpdateInput:
    line_id: strawberry.ID
    quantity: int


# ---------------------------------------------------------------- helpers


_RULES: dict[int, tuple[Settings, CartRules]] = {}  # by the settings object (hashing its fields costs more)


def _rules(info: Info) -> CartRules:
    settings = info.context.settings
    found = _RULES.get(id(settings))
    if found is None or found[0] is not settings:
        if len(_RULES) > 16:
            _RULES.clear()
        found = _RULES[id(settings)] = (settings, CartRules.of(settings))
    return found[1]


def _for_sale(info: Info) -> service.ForSale:
    """Whether variants are for sale, from the pricing cache (emptied on every catalog change)."""
    services = info.context.services

    def check(variant_ids: Sequence[int]) -> Awaitable[set[int]]:
        return pricing.variants_for_sale(services.engine, variant_ids, services.pricing_cache)

    return check


def _now(info: Info) -> datetime:
    return info.context.services.clock.now()


def _customer_key(principal: Principal) -> int | None:
    return int_key(principal.customer_subject or "")


def _authorizer(info: Info) -> service.Authorize:
    """The policy's `[changes.Cart]` rule, for the service to evaluate on the row it has locked."""

    async def authorize(conn: AsyncConnection, cart: service.Cart) -> None:
        if not await permits(info, "Cart", cart, change=True, conn=conn):
            raise CartForbidden("This cart belongs to someone else.")

    return authorize


def cart_authorizer(info: Info) -> Callable[[service.Cart], Awaitable[None]]:
    """What checkout asks before it uses a cart: the same `[changes.Cart]` rule as every cart
    operation (audited with the request's other accesses)."""

    async def authorize(cart: service.Cart) -> None:
        if not await permits(info, "Cart", cart, change=True):
            raise CartForbidden("This cart belongs to someone else.")

    return authorize


def denied_cart(info: Info) -> Exception:
    return _denied(info)


def _denied(info: Info) -> Exception:
    """Someone else's cart: sign in first (anonymous), or FORBIDDEN; never a word of its content."""
    if info.context.principal.is_anonymous:
        return unauthenticated("This cart belongs to a customer: sign in first.")
    return forbidden("This cart belongs to someone else.")


def _key(global_id: str, type_name: str) -> int:
    """An int key, or 0 (matches nothing) for an undecodable id: reported as "not found" per line."""
    try:
        key = from_global_id(global_id, type_name)[1]
    except InvalidGlobalId:
        return 0
    return int_key(key) or 0


def _line(priced: PricedLine, currency: str) -> CartLine:
    return CartLine(
        id=strawberry.ID(to_global_id("CartLine", priced.key)),
        variant_key=priced.variant_id,
        quantity=priced.quantity,
        unit_price=Money(amount=priced.unit_price, currency=currency),
        total=Money(amount=priced.total, currency=currency),
    )


async def _price(info: Info, cart: service.Cart) -> PricedCart:
    """The cart priced for this request's channel by the pricing engine."""
    channel = info.context.channel
    return await pricing.price_lines(
        info.context.services.engine,
        cart.lines,  # (id, variant id, quantity): what pricing reads as (key, variant id, quantity)
        cart.codes,
        currency=channel.currency,
        channel=channel.code,
        now=_now(info),
        customer_key=cart.customer_key,
        cache=info.context.services.pricing_cache,
        vault=info.context.services.vault,  # personal offers by purchase history (with consent)
    )


def present(cart: service.Cart) -> Cart:
    """The cart as GraphQL shows it; prices are computed when first asked for."""
    return Cart(
        id=strawberry.ID(to_global_id("Cart", cart.id)),
        version=cart.version,
        discount_codes=list(cart.codes),
        updated_at=cart.updated_at,
        record=cart,
    )


async def _load(info: Info, cart_id: str, field: str = "cartId") -> service.Cart:
    """The cart behind a global id (following a merge), if this principal may use it."""
    key = decode_id(cart_id, "Cart", field)
    cart = await service.get_cart(info.context.services.engine, key, now=_now(info), rules=_rules(info))
    if cart is None:
        raise CartNotFound("No such cart (or it expired).", [field])
    if not await permits(info, "Cart", cart):  # the policy's `[types.Cart]` rule: who may read it
        raise CartForbidden("This cart belongs to someone else.")
    return cart


async def _publish(info: Info, cart_ids: Sequence[str]) -> None:
    for cart_id in cart_ids:
        await info.context.services.broadcaster.publish(f"cart:{cart_id}")


async def _payload(info: Info, cart_id: str | None, change: Callable[[], Awaitable[service.Cart]]) -> CartPayload:
    """Run one change and answer with the cart, or with userErrors and the cart as it stands."""
    try:
        cart = await change()
    except CartInputErrors as errors:
        current = await _current(info, cart_id)
        return CartPayload(cart=current, user_errors=user_errors(errors))
    except CartVersionConflict as conflict:
        return CartPayload(cart=await _current(info, cart_id), user_errors=[user_error(conflict)])
    except CartForbidden:
        raise _denied(info) from None
    except CartError as error:
        return CartPayload(cart=None, user_errors=[user_error(error)])
    await _publish(info, [cart.id])
    return CartPayload(cart=present(cart), user_errors=[])


async def _current(info: Info, cart_id: str | None) -> Cart | None:
    if cart_id is None:
        return None
    cart = await service.get_cart(info.context.services.engine, cart_id, now=_now(info), rules=_rules(info))
    return present(cart) if cart else None


def _adds(lines: Sequence[CartLineInput]) -> list[LineAdd]:
    return [LineAdd(_key(line.variant_id, "ProductVariant"), line.quantity) for line in lines]


# ---------------------------------------------------------------- the API


async def customer_cart(info: Info, customer_key: int) -> Cart | None:
    """The customer's active cart (wired as `Customer.cart`; the caller has authorized the customer)."""
    cart = await service.active_cart_of(info.context.services.engine, customer_key)
    return present(cart) if cart else None


async def _readable_cart(info: Info, cart_id: str) -> Cart | None:
    try:
        return present(await _load(info, cart_id, "id"))
    except CartForbidden:
        raise _denied(info) from None
    except CartNotFound:
        return None


@strawberry.type
class CartQuery:
    @strawberry.field
    async def cart(self, info: Info, id: strawberry.ID) -> Cart | None:
        return await _readable_cart(info, id)


@strawberry.type
class CartMutation:
    @strawberry.mutation
    async def cart_create(
        self,
        info: Info,
        lines: list[CartLineInput] | None = [],  # noqa: B006
        customer_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Staff at the till and agents: the customer they serve."),
        ] = None,
    ) -> CartPayload:
        """A new guest cart; for a signed-in customer (or the customer an operator serves), their one
        active cart with these lines added."""
        services = info.context.services
        customer_key = _customer_key(info.context.principal)
        if customer_id is not None:
            named = decode_int_id(customer_id, "Customer", "customerId")
            if info.context.principal.is_anonymous:
                raise unauthenticated("Sign in first.")
            if customer_key is not None and customer_key != named:
                raise forbidden("A customer opens carts for themself only.")
            customer_key = named

        async def change() -> service.Cart:
            return await service.create_cart(
                services.engine,
                customer_key=customer_key,
                lines=_adds(lines or []),
                now=_now(info),
                rules=_rules(info),
                for_sale=_for_sale(info),
            )

        return await _payload(info, None, change)

    @strawberry.mutation
    async def cart_lines_add(
        self, info: Info, cart_id: strawberry.ID, lines: list[CartLineInput], expected_version: int | None = None
    ) -> CartPayload:
        services = info.context.services
        key = decode_id(cart_id, "Cart", "cartId")

        async def change() -> service.Cart:
            return await service.add_lines(
                services.engine,
                key,
                _adds(lines),
                expected_version=expected_version,
                now=_now(info),
                rules=_rules(info),
                authorize=_authorizer(info),
                for_sale=_for_sale(info),
            )

        return await _payload(info, key, change)

    @strawberry.mutation
    async def cart_lines_update(
        self, info: Info, cart_id: strawberry.ID, lines: list[CartLineUpdateInput], expected_version: int | None = None
    ) -> CartPayload:
        services = info.context.services
        key = decode_id(cart_id, "Cart", "cartId")

        async def change() -> service.Cart:
            changes = [LineSet(_key(line.line_id, "CartLine"), line.quantity) for line in lines]
            return await service.update_lines(
                services.engine,
                key,
                changes,
                expected_version=expected_version,
                now=_now(info),
                rules=_rules(info),
                authorize=_authorizer(info),
            )

        return await _payload(info, key, change)

    @strawberry.mutation
    async def cart_lines_remove(
        self, info: Info, cart_id: strawberry.ID, line_ids: list[strawberry.ID], expected_version: int | None = None
    ) -> CartPayload:
        services = info.context.services
        key = decode_id(cart_id, "Cart", "cartId")

        async def change() -> service.Cart:
            keys = [_key(line_id, "CartLine") for line_id in line_ids]
            return await service.remove_lines(
                services.engine,
                key,
                keys,
                expected_version=expected_version,
                now=_now(info),
                rules=_rules(info),
                authorize=_authorizer(info),
            )

        return await _payload(info, key, change)

    @strawberry.mutation
    async def cart_discount_codes_update(
        self, info: Info, cart_id: strawberry.ID, codes: list[str], expected_version: int | None = None
    ) -> CartPayload:
        services = info.context.services
        key = decode_id(cart_id, "Cart", "cartId")

        async def change() -> service.Cart:
            cart = await _load(info, cart_id)
            service.held_codes(codes, _rules(info))  # too many: refused before they are looked up
            problems = await pricing.check_codes(
                services.engine,
                codes,
                channel=info.context.channel.code,
                now=_now(info),
                customer_key=cart.customer_key,
            )
            return await service.set_discount_codes(
                services.engine,
                key,
                codes,
                problems,
                expected_version=expected_version,
                now=_now(info),
                rules=_rules(info),
                authorize=_authorizer(info),
            )

        return await _payload(info, key, change)

    @strawberry.mutation(description="The guest cart joins the signed-in customer's cart (see cart_merge_strategy).")
    async def cart_attach_to_customer(self, info: Info, cart_id: strawberry.ID) -> CartPayload:
        customer_key = _customer_key(info.context.principal)
        if customer_key is None:
            raise unauthenticated("Sign in as a customer to keep this cart.")
        services = info.context.services
        key = decode_id(cart_id, "Cart", "cartId")

        async def check_codes(codes: Sequence[str]) -> list[str | None]:
            return await pricing.check_codes(
                services.engine, codes, channel=info.context.channel.code, now=_now(info), customer_key=customer_key
            )

        try:
            cart, changed = await service.attach_to_customer(
                services.engine,
                key,
                customer_key,
                now=_now(info),
                rules=_rules(info),
                check_codes=check_codes,
            )
        except CartForbidden:
            raise _denied(info) from None
        except CartError as error:
            return CartPayload(cart=None, user_errors=[user_error(error)])
        await _publish(info, changed)
        return CartPayload(cart=present(cart), user_errors=[])


def _reader(info: Info) -> Callable[[str], Awaitable[service.Cart | None]]:
    """How a cart's hub reads it: with nothing of one subscriber's request in it."""
    services, rules = info.context.services, _rules(info)

    async def read(cart_id: str) -> service.Cart | None:
        return await service.get_cart(services.engine, cart_id, now=services.clock.now(), rules=rules)

    return read


@strawberry.type
class CartSubscription:
    @strawberry.subscription(description="The cart now, then again after every change (from any device or replica).")
    async def cart_updated(self, info: Info, cart_id: strawberry.ID) -> AsyncGenerator[Cart, None]:
        services = info.context.services
        key = decode_id(cart_id, "Cart", "cartId")
        channel = info.context.channel
        try:
            async with services.cart_feeds.follow(key, _reader(info)) as hub:
                seen, last = 0, None
                while True:
                    seen, cart = await hub.next(seen)  # one read per change, shared by every subscriber
                    if cart is None:
                        if last is None:
                            raise not_found("No such cart (or it expired).")
                        return  # expired meanwhile
                    if not await permits(info, "Cart", cart):
                        if last is None:
                            raise _denied(info)
                        return  # merged into a cart this principal may not see
                    if (cart.id, cart.version) != last:
                        last = (cart.id, cart.version)
                        # Fresh loaders per event: a long subscription must not serve cached stock or prices.
                        info.context.loaders = Loaders(services.engine, currency=channel.currency, vault=services.vault)
                        shown = present(cart)
                        shown.pricing["priced"] = hub.priced(cart, channel.code, _pricer(info, cart))
                        yield shown
        except TooManyFollowers:
            limit = info.context.settings.ws_max_subscriptions_per_cart
            raise ClientError(
                f"This cart already has {limit} subscribers: close one first.", "TOO_MANY_SUBSCRIPTIONS"
            ) from None


def _pricer(info: Info, cart: service.Cart) -> Callable[[], Awaitable[PricedCart]]:
    return lambda: _price(info, cart)


@register_node("Cart")
async def _cart_node(info: Info, key: str) -> Cart | None:
    return await _readable_cart(info, to_global_id("Cart", key))
