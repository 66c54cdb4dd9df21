"""An exchange at the till: the returned goods and the new sale as one operation for the staff.

1. The return is taken on the original order (restocked at this store); its refund is recorded
   but not yet paid out.
2. The new sale is an IN_STORE checkout of the cart, with the refund as credit: only what the new
   goods cost beyond it is charged.
3. What the credit exceeds the new sale by is refunded through the original payment.

Every refund is answered by payment (`Exchange.refunds`): one to a payment taken at a till (cash)
is not the provider's to pay, the till hands it out. Every answer with the key states the same
refunds (the first may be the one lost), but only the attempt that settled the return, on its lock,
answers `replayed` False: the cash is handed out once however often the request was sent. An
attempt that dies (a crash, an unexpected error) leaves the return TAKEN: `expire_reservations`
settles it past the pending timeout, the same way and on the same lock, and reports the cash owed
(a retry after that is replayed too: the job's report is where that cash is told).

Both orders are in the customer's history. Should the sale fail (stock, payment), the return
stands and its whole refund is paid out, so the customer is never left without goods or money.

The idempotency key, with the sale's cart as checkout scopes it, is the sale's and the return's: a
retry finds the return the key took (never a second one) and checkout replays the sale, with the
same credit; the refund due is paid once. A retry after a failed sale is refused
(`EXCHANGE_ALREADY_REFUNDED`): the goods are back and paid out. The same key with another cart is
another exchange, as it is another checkout: it takes a return of its own. Goods an earlier
exchange sold are not netted again: their return pays each of that sale's payments back its share
at once, and the new sale is charged in full.

A retry may replay the return while it is still TAKEN just as the first attempt's sale fails
before leaving an order (stock, a code: the key is free again), and then sell the cart on that
credit. Both decisions are made on the return's locked row, so the credit is spent once: checkout
reserves the sale only while the return is TAKEN, and a failed attempt refunds it only while no
sale of the exchange is PENDING or placed. Whichever commits first wins; the other answers
`EXCHANGE_ALREADY_REFUNDED` (the retry, nothing held or charged) or `CHECKOUT_IN_PROGRESS` (the
failed attempt, nothing refunded: the sale's attempt settles the return).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from commerce.cart import service as carts
from commerce.orders import errors, service
from commerce.orders import records as r
from commerce.orders.checkout import CheckoutRequest, checkout
from commerce.orders.unit import OrderServices
from core.errors import DomainError

__all__ = ["Exchange", "ExchangeFailed", "exchange"]

logger = logging.getLogger("omnigate.orders.exchange")


@dataclass(frozen=True, slots=True)
class Exchange:
    returned: r.Order
    sale: r.Order
    difference: Decimal  # positive: charged for the new goods; negative: refunded
    refunds: tuple[service.Refund, ...] = ()  # what was paid back, by payment (cash: by the till)
    replayed: bool = False  # restated: another attempt (or the expiry's sweep) settled it, cash and all


class ExchangeFailed(DomainError):
    """The return was taken and refunded in full (`refunds`, by payment), but the new sale did not go through."""

    def __init__(
        self,
        returned: r.Order,
        cause: DomainError,
        refunds: tuple[service.Refund, ...] = (),
        *,
        replayed: bool = False,
    ) -> None:
        super().__init__(str(cause), cause.field)
        self.code = cause.code
        self.returned = returned
        self.cause = cause
        self.refunds = refunds
        self.replayed = replayed  # as `Exchange.replayed`

    def problems(self) -> Iterator[DomainError]:
        yield from self.cause.problems()


async def exchange(
    services: OrderServices,
    order_id: int,
    lines: Sequence[service.ReturnLine],
    sale: CheckoutRequest,
    *,
    authorize: Callable[[carts.Cart], Awaitable[None]],
) -> Exchange:
    """`sale` is an IN_STORE checkout at the till's store, where the goods come back too."""
    if sale.till_location_id is None:
        raise DomainError("Exchanges are made at a store's till.", ["input", "cartId"])
    taken = await service.take_return(
        services,
        order_id,
        lines,
        sale.till_location_id,
        actor=sale.actor,
        audit=sale.audit,
        exchange=service.ExchangeSale(sale.cart_id, sale.idempotency_key),  # checkout's key is per cart: so is this one
    )
    returned = taken.order
    # this return's own refund, never another till's meanwhile; none for goods an earlier exchange
    # sold on credit: their return paid each of its payments back at once, the new sale pays in full
    credit = service.exchange_credit(taken.refund, taken.netted)
    if taken.exchange_status == r.EXCHANGE_REFUNDED:
        raise ExchangeFailed(returned, errors.ExchangeAlreadyRefunded(), _refunds(taken, credit), replayed=True)
    key = service.ExchangeSale(sale.cart_id, sale.idempotency_key)
    funded = replace(sale, credit=credit, credit_from=order_id if credit else None, exchange_return=taken.return_id)
    try:
        placed = await checkout(services, funded, authorize=authorize)
    except errors.CheckoutInProgress:
        raise  # an earlier attempt is still paying: the return stays taken, for it or a later retry
    except DomainError as failure:
        closed = await service.settle_exchange(services, returned, taken.return_id, r.EXCHANGE_REFUNDED, credit, key)
        if closed.status == r.EXCHANGE_REFUNDED:
            refunds = _refunds(taken, credit)
            raise ExchangeFailed(returned, failure, refunds, replayed=not closed.closed) from None
        if closed.status == r.EXCHANGE_TAKEN:  # a racing retry's sale holds the credit: it settles the return
            raise _selling_elsewhere() from None
        raise  # an earlier attempt placed the sale: nothing is refunded for this one's failure
    excess = service.sold_excess(credit, placed.total)
    settled = await service.settle_exchange(services, returned, taken.return_id, r.EXCHANGE_SOLD, excess, key)
    if settled.status == r.EXCHANGE_REFUNDED:  # cannot be (a sale is reserved only on a TAKEN return): said loudly
        logger.error("exchange return %d was refunded, yet order %d was sold on its credit", taken.return_id, placed.id)
    difference = placed.total - credit
    return Exchange(returned, placed, difference, _refunds(taken, excess), replayed=not settled.closed)


def _refunds(taken: service.TakenReturn, settled: Decimal) -> tuple[service.Refund, ...]:
    """What the exchange paid back, by payment: the return's shares paid at once (goods an earlier
    exchange sold), then what its settlement paid the original order's payment. A retry answers
    with the same: the settlement was paid once, by whichever attempt closed the return."""
    order = taken.order
    return taken.refunds + ((service.Refund(order.id, order.payment_method, settled),) if settled else ())


def _selling_elsewhere() -> DomainError:
    return errors.CheckoutInProgress(
        "Another attempt with this key is selling the cart on this exchange's credit: retry shortly.",
        ["idempotencyKey"],
    )
