"""What the loyalty context does: earn, redeem (hold and release), reverse, adjust, expire, read.

Every change runs inside the caller's unit of work (a connection or session already in a
transaction), so the points move with the order change that caused them or not at all.
Each change first locks the customer's account row (created on first use), then checks its
`ref` (the step's idempotency key, unique in the ledger), then moves the balance. A debit is
also a conditional update (`balance >= n`): two checkouts can never spend the same points.

Ledger kinds: EARN (an order fulfilled), REDEEM (points held by a checkout), REVERSE (a
return takes earned points back, negative; a released hold gives redeemed points back,
positive), EXPIRE (lots past their date), ADJUST (an agent's goodwill or correction).
Points arrive in lots that expire `expiry_months` after they arrived; debits draw on the
lots that expire first, and a released hold puts back exactly what it drew.
"""

from __future__ import annotations

import calendar
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from commerce.customers import service as customers
from commerce.loyalty import errors
from commerce.loyalty.models import TABLE, LoyaltyAccountRow, LoyaltyLot, LoyaltyLotDraw, LoyaltyTransactionRow
from core.db import writer
from policies.loyalty import LoyaltyPolicy, Tier, loyalty_policy
from vault.blind import normalise_card
from vault.cipher import ERASED, Erased
from vault.errors import DuplicateLookup, UnknownSubject
from vault.service import Sealed, Vault

__all__ = [
    "CARD_LENGTH",
    "MAX_ADJUSTMENT",
    "Entry",
    "Reversal",
    "Standing",
    "add_months",
    "adjust",
    "balances_by_ids",
    "card_is_valid",
    "card_number",
    "earn_for_order",
    "expire_points",
    "find_by_card",
    "hold_for_checkout",
    "ledger_sum",
    "luhn_check_digit",
    "new_card_number",
    "order_points",
    "release_hold",
    "reverse_for_return",
    "standing",
    "tier_of",
    "transactions_page",
]

CARD_LENGTH = 16
MAX_ADJUSTMENT = 1_000_000
REASON_MAX = 200
CARD_KIND = "loyalty_card"  # the vault's blind-index kind

Db = AsyncConnection | AsyncSession


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    customer_key: int
    kind: str
    points: int
    reason: str
    order_key: str | None
    channel: str | None
    created_at: datetime
    shortfall: int


@dataclass(frozen=True, slots=True)
class Standing:
    balance: int
    tier: Tier
    earned_in_window: int
    points_to_next_tier: int | None  # None at the top tier


@dataclass(frozen=True, slots=True)
class Reversal:
    points: int  # taken from the balance
    shortfall: int  # owed by the return but not in the balance: recorded, not hidden


# ---------------------------------------------------------------- card numbers
def luhn_check_digit(body: str) -> str:
    """The Luhn digit that makes `body + digit` pass: catches every single mistyped digit."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled: these sit at odd positions from the right once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def card_is_valid(number: str) -> bool:
    digits = normalise_card(number)
    return len(digits) == CARD_LENGTH and luhn_check_digit(digits[:-1]) == digits[-1]


def new_card_number(prefix: str) -> str:
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(CARD_LENGTH - 1 - len(prefix)))
    return body + luhn_check_digit(body)


# ---------------------------------------------------------------- time
def add_months(at: datetime, months: int) -> datetime:
    """The same day `months` later (or earlier), clamped to the month's end (31 Jan + 1 -> 28/29 Feb)."""
    month_index = at.month - 1 + months
    year, month = at.year + month_index // 12, month_index % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


# ---------------------------------------------------------------- plumbing
async def _conn(db: Db) -> AsyncConnection:
    return await db.connection() if isinstance(db, AsyncSession) else db


async def _lock_account(conn: AsyncConnection, customer_key: int, at: datetime) -> int:
    """Lock the customer's account row (creating it on first use); its balance."""
    stmt = select(LoyaltyAccountRow.balance).where(LoyaltyAccountRow.customer_key == customer_key).with_for_update()
    balance = (await conn.execute(stmt)).scalar_one_or_none()
    if balance is not None:
        return int(balance)
    try:
        async with conn.begin_nested():
            await conn.execute(insert(LoyaltyAccountRow).values(customer_key=customer_key, balance=0, created_at=at))
    except IntegrityError:
        pass  # another transaction opened it meanwhile: lock theirs
    return int((await conn.execute(stmt)).scalar_one())


async def _existing(conn: AsyncConnection, ref: str) -> tuple[int, int] | None:
    row = (
        await conn.execute(
            select(LoyaltyTransactionRow.id, LoyaltyTransactionRow.points).where(LoyaltyTransactionRow.ref == ref)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def _append(
    conn: AsyncConnection,
    customer_key: int,
    kind: str,
    points: int,
    *,
    reason: str,
    actor: str,
    at: datetime,
    order_key: str | None = None,
    channel: str | None = None,
    ref: str | None = None,
    tier_points: int = 0,
    shortfall: int = 0,
) -> int:
    result = await conn.execute(
        insert(LoyaltyTransactionRow)
        .values(
            customer_key=customer_key,
            kind=kind,
            points=points,
            tier_points=tier_points,
            shortfall=shortfall,
            reason=reason[:REASON_MAX],
            actor=actor[:100],
            order_key=order_key,
            channel=channel,
            ref=ref,
            created_at=at,
        )
        .returning(LoyaltyTransactionRow.id)
    )
    return int(result.scalar_one())


async def _credit(
    conn: AsyncConnection, customer_key: int, transaction_id: int, points: int, expires_at: datetime
) -> None:
    await conn.execute(
        insert(LoyaltyLot).values(
            customer_key=customer_key,
            transaction_id=transaction_id,
            expires_at=expires_at,
            points=points,
            remaining=points,
        )
    )
    await conn.execute(
        update(LoyaltyAccountRow)
        .where(LoyaltyAccountRow.customer_key == customer_key)
        .values(balance=LoyaltyAccountRow.balance + points)
    )


async def _debit(conn: AsyncConnection, customer_key: int, points: int) -> bool:
    """Take `points` from the balance only if it holds them (the conditional update is the guard)."""
    result = await conn.execute(
        update(LoyaltyAccountRow)
        .where(LoyaltyAccountRow.customer_key == customer_key, LoyaltyAccountRow.balance >= points)
        .values(balance=LoyaltyAccountRow.balance - points)
    )
    return result.rowcount == 1


async def _draw(conn: AsyncConnection, customer_key: int, transaction_id: int, points: int) -> None:
    """Take `points` from the lots that expire first, recording what came from which lot."""
    lots = (
        await conn.execute(
            select(LoyaltyLot.id, LoyaltyLot.remaining)
            .where(LoyaltyLot.customer_key == customer_key, LoyaltyLot.remaining > 0)
            .order_by(LoyaltyLot.expires_at, LoyaltyLot.id)
        )
    ).all()
    left = points
    for lot_id, remaining in lots:
        if left == 0:
            break
        take = min(left, remaining)
        await conn.execute(update(LoyaltyLot).where(LoyaltyLot.id == lot_id).values(remaining=remaining - take))
        await conn.execute(insert(LoyaltyLotDraw).values(transaction_id=transaction_id, lot_id=lot_id, points=take))
        left -= take
    if left:  # the balance said the points were there: the lots must agree
        raise RuntimeError("loyalty lots do not cover the balance")


async def _window_points(conn: AsyncConnection, customer_key: int, at: datetime, policy: LoyaltyPolicy) -> int:
    """Points earned in the window, net of what returns took back of those very orders: a return
    counts while the order it takes back from does (by the order's EARN date, not the return's), so a
    late return never lowers the tier for a year after its order's points left the window."""
    since = add_months(at, -policy.tier_window_months)
    t = LoyaltyTransactionRow
    earned_in_window = select(t.order_key).where(
        t.customer_key == customer_key, t.kind == "EARN", t.created_at > since, t.created_at <= at
    )
    stmt = select(func.coalesce(func.sum(t.tier_points), 0)).where(
        t.customer_key == customer_key,
        t.created_at <= at,
        or_(
            and_(t.kind == "EARN", t.created_at > since),
            and_(t.kind == "REVERSE", t.order_key.in_(earned_in_window)),
        ),
    )
    return max(0, int((await conn.execute(stmt)).scalar_one()))


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not 1 <= len(reason) <= REASON_MAX or any(ord(ch) < 32 for ch in reason):
        raise errors.ReasonRequired()
    return reason


# ---------------------------------------------------------------- changes (inside the caller's transaction)
async def earn_for_order(
    db: Db,
    customer_key: int,
    order_key: str,
    channel: str,
    eligible_amount: Decimal,
    at: datetime,
    *,
    policy: LoyaltyPolicy | None = None,
) -> int:
    """Points for a fulfilled order, once per order (the ledger's unique `ref`); what was earned.

    `eligible_amount` is what was paid in money, in the policy's currency: the part paid with
    points earns nothing. A channel that does not earn, or nothing to pay, earns 0 and records nothing.
    """
    policy = policy or loyalty_policy()
    if not policy.earns_in(channel) or eligible_amount <= 0:
        return 0
    conn = await _conn(db)
    ref = f"earn:{order_key}"
    await _lock_account(conn, customer_key, at)
    done = await _existing(conn, ref)
    if done is not None:
        return done[1]
    tier = policy.tier_for(await _window_points(conn, customer_key, at, policy))
    points = int((eligible_amount * policy.points_per_unit * tier.multiplier).to_integral_value(ROUND_FLOOR))
    if points <= 0:
        return 0
    transaction_id = await _append(
        conn,
        customer_key,
        "EARN",
        points,
        reason=f"Order fulfilled ({tier.name} x{tier.multiplier})",
        actor="system",
        at=at,
        order_key=order_key,
        channel=channel,
        ref=ref,
        tier_points=points,
    )
    await _credit(conn, customer_key, transaction_id, points, add_months(at, policy.expiry_months))
    return points


async def reverse_for_return(
    db: Db,
    customer_key: int,
    order_key: str,
    return_key: str,
    refunded_amount: Decimal,
    eligible_amount: Decimal,
    at: datetime,
    *,
    channel: str | None = None,
    whole: bool = False,
) -> Reversal:
    """Take back the points a return's lines earned, once per `return_key`: the order's earned
    points in proportion to `refunded_amount` (all its returns so far, this one included) of
    `eligible_amount` (the amount the order earned on), less what earlier returns took back;
    `whole` (the order is all back) takes back all that is left. Worked out on the cumulative
    amounts, rounded once: each return's share rounded on its own left points with the customer.

    Never more than the order earned over all its returns, never below a zero balance: what the
    balance cannot cover is recorded as the entry's `shortfall`.
    """
    conn = await _conn(db)
    ref = f"return:{order_key}:{return_key}"
    balance = await _lock_account(conn, customer_key, at)
    if await _existing(conn, ref) is not None or eligible_amount <= 0 or (refunded_amount <= 0 and not whole):
        return Reversal(0, 0)
    earned, already = await _order_earned_and_reversed(conn, customer_key, order_key)
    share = Decimal(1) if whole else min(refunded_amount / eligible_amount, Decimal(1))
    owed = int((earned * share).to_integral_value(ROUND_HALF_UP)) - already
    if owed <= 0:
        return Reversal(0, 0)
    taken = min(owed, balance)
    shortfall = owed - taken
    reason = "Order returned" + (f" ({shortfall} points not in the balance)" if shortfall else "")
    transaction_id = await _append(
        conn,
        customer_key,
        "REVERSE",
        -taken,
        reason=reason,
        actor="system",
        at=at,
        order_key=order_key,
        channel=channel,
        ref=ref,
        tier_points=-owed,
        shortfall=shortfall,
    )
    if taken:
        if not await _debit(conn, customer_key, taken):
            raise RuntimeError("the locked balance changed")
        await _draw(conn, customer_key, transaction_id, taken)
    return Reversal(taken, shortfall)


async def _order_earned_and_reversed(conn: AsyncConnection, customer_key: int, order_key: str) -> tuple[int, int]:
    rows = await conn.execute(
        select(LoyaltyTransactionRow.kind, LoyaltyTransactionRow.tier_points).where(
            LoyaltyTransactionRow.customer_key == customer_key,
            LoyaltyTransactionRow.order_key == order_key,
            LoyaltyTransactionRow.kind.in_(("EARN", "REVERSE")),
        )
    )
    earned = reversed_ = 0
    for kind, tier_points in rows:
        if kind == "EARN":
            earned += tier_points
        elif tier_points < 0:  # a return's reversal (a released hold counts nothing towards tiers)
            reversed_ -= tier_points
    return earned, reversed_


async def hold_for_checkout(
    db: Db,
    customer_key: int,
    order_key: str,
    points: int,
    channel: str,
    at: datetime,
    *,
    actor: str = "checkout",
    field: Sequence[str] = ("input", "loyaltyPointsToRedeem"),
) -> int:
    """Redeem `points` for an order (a REDEEM entry), once per order; `InsufficientPoints` when the
    balance does not hold them. Held in the checkout's transaction: if it rolls back, so does this."""
    if points < 0:
        raise errors.InvalidPoints("Points to redeem cannot be negative.", field)
    if points == 0:
        return 0
    conn = await _conn(db)
    ref = f"redeem:{order_key}"
    balance = await _lock_account(conn, customer_key, at)
    done = await _existing(conn, ref)
    if done is not None:
        return -done[1]
    if not await _debit(conn, customer_key, points):
        raise errors.InsufficientPoints(balance, points, field)
    transaction_id = await _append(
        conn,
        customer_key,
        "REDEEM",
        -points,
        reason="Paid with points",
        actor=actor,
        at=at,
        order_key=order_key,
        channel=channel,
        ref=ref,
    )
    await _draw(conn, customer_key, transaction_id, points)
    return points


async def release_hold(
    db: Db, customer_key: int, order_key: str, at: datetime, *, reason: str = "Order cancelled", actor: str = "system"
) -> int:
    """Give back the points an order redeemed (a declined payment, a cancelled order), once; how many."""
    conn = await _conn(db)
    await _lock_account(conn, customer_key, at)
    redeemed = await _existing(conn, f"redeem:{order_key}")
    if redeemed is None or await _existing(conn, f"release:{order_key}") is not None:
        return 0
    redeem_id, negative = redeemed
    points = -negative
    await _append(
        conn,
        customer_key,
        "REVERSE",
        points,
        reason=f"Points given back: {reason}",
        actor=actor,
        at=at,
        order_key=order_key,
        ref=f"release:{order_key}",
    )
    draws = (
        await conn.execute(
            select(LoyaltyLotDraw.lot_id, LoyaltyLotDraw.points).where(LoyaltyLotDraw.transaction_id == redeem_id)
        )
    ).all()
    for lot_id, drawn in draws:  # back into the lots they came from, with those lots' expiry
        await conn.execute(
            update(LoyaltyLot).where(LoyaltyLot.id == lot_id).values(remaining=LoyaltyLot.remaining + drawn)
        )
    await conn.execute(
        update(LoyaltyAccountRow)
        .where(LoyaltyAccountRow.customer_key == customer_key)
        .values(balance=LoyaltyAccountRow.balance + points)
    )
    await _expire_due(conn, customer_key, at)  # what came back into lots past their date: expired, not spendable
    return points


async def adjust(
    db: Db,
    customer_key: int,
    points: int,
    reason: str,
    actor: str,
    at: datetime,
    *,
    policy: LoyaltyPolicy | None = None,
) -> int:
    """An agent's goodwill (+) or correction (-), with a reason; the new balance."""
    policy = policy or loyalty_policy()
    reason = _check_reason(reason)
    if points == 0 or abs(points) > MAX_ADJUSTMENT:
        raise errors.InvalidPoints(f"Adjust by a whole number of points from 1 to {MAX_ADJUSTMENT}, up or down.")
    conn = await _conn(db)
    if await customers.was_erased(conn, customer_key):  # no new account, points or reason about them
        raise errors.CustomerErased()
    balance = await _lock_account(conn, customer_key, at)
    if points < 0 and not await _debit(conn, customer_key, -points):  # nothing written when refused
        raise errors.InsufficientPoints(balance, -points)
    transaction_id = await _append(conn, customer_key, "ADJUST", points, reason=reason, actor=actor, at=at)
    if points > 0:
        await _credit(conn, customer_key, transaction_id, points, add_months(at, policy.expiry_months))
    else:
        await _draw(conn, customer_key, transaction_id, -points)
    return balance + points


async def expire_points(engine: AsyncEngine, at: datetime) -> int:
    """Expire every lot due by `at`, one customer per transaction; the points expired.

    Idempotent: a lot is expired only while it has points left, read under the account's lock,
    so a second run (or a run on another replica at once) finds nothing more to do.
    """
    due = (
        select(LoyaltyLot.customer_key)
        .where(LoyaltyLot.expires_at <= at, LoyaltyLot.remaining > 0)
        .distinct()
        .order_by(LoyaltyLot.customer_key)
    )
    async with engine.connect() as conn:
        customers = list((await conn.execute(due)).scalars())
    expired = 0
    for customer_key in customers:
        async with writer(engine).begin() as conn:
            await _lock_account(conn, customer_key, at)
            expired += await _expire_due(conn, customer_key, at)
    return expired


async def _expire_due(conn: AsyncConnection, customer_key: int, at: datetime) -> int:
    """Expire the customer's lots due by `at` (their account locked by the caller); the points expired."""
    lots = (
        await conn.execute(
            select(LoyaltyLot.id, LoyaltyLot.remaining)
            .where(LoyaltyLot.customer_key == customer_key, LoyaltyLot.expires_at <= at, LoyaltyLot.remaining > 0)
            .order_by(LoyaltyLot.expires_at, LoyaltyLot.id)
        )
    ).all()
    total = sum(remaining for _, remaining in lots)
    if total == 0:
        return 0
    transaction_id = await _append(conn, customer_key, "EXPIRE", -total, reason="Points expired", actor="system", at=at)
    for lot_id, remaining in lots:
        await conn.execute(update(LoyaltyLot).where(LoyaltyLot.id == lot_id).values(remaining=0))
        await conn.execute(
            insert(LoyaltyLotDraw).values(transaction_id=transaction_id, lot_id=lot_id, points=remaining)
        )
    if not await _debit(conn, customer_key, total):
        raise RuntimeError("loyalty lots exceed the balance")
    return total


# ---------------------------------------------------------------- cards
async def card_number(
    engine: AsyncEngine,
    vault: Vault,
    customer_key: int,
    subject: str,
    at: datetime,
    *,
    policy: LoyaltyPolicy | None = None,
) -> str | Erased:
    """The customer's card number, issued now if they have none yet (at registration or first use).

    Stored only as vault ciphertext under the customer's own key, and as a blind index for the
    till's look-up; an erased customer's card reads `ERASED` and finds no one any more.
    """
    policy = policy or loyalty_policy()
    stmt = select(LoyaltyAccountRow.card_sealed).where(LoyaltyAccountRow.customer_key == customer_key)
    async with engine.connect() as conn:
        sealed = (await conn.execute(stmt)).scalar_one_or_none()
        if sealed is not None:
            [number] = await vault.decrypt_many([Sealed(subject, TABLE, "card_number", sealed)], conn)
            return ERASED if number is None else number
    for _ in range(5):
        number = new_card_number(policy.card_prefix)
        try:
            async with writer(engine).begin() as conn:
                await _lock_account(conn, customer_key, at)
                current = (await conn.execute(stmt)).scalar_one()
                if current is not None:  # issued by a concurrent request meanwhile
                    [existing] = await vault.decrypt_many([Sealed(subject, TABLE, "card_number", current)], conn)
                    return ERASED if existing is None else existing
                key = await vault.open_subject(conn, subject)
                await vault.add_lookup(conn, subject, CARD_KIND, number, unique=True)
                await conn.execute(
                    update(LoyaltyAccountRow)
                    .where(LoyaltyAccountRow.customer_key == customer_key)
                    .values(subject_id=subject, card_sealed=vault.encrypt(key, TABLE, "card_number", number))
                )
            return number
        except UnknownSubject:
            return ERASED
        except DuplicateLookup:
            continue  # another customer holds this number (1 in 10^11): draw again
    raise RuntimeError("could not draw a free card number")


async def find_by_card(engine: AsyncEngine, vault: Vault, number: str) -> int | None:
    """The customer holding this card (by blind index: the number is never searched in plaintext)."""
    if not card_is_valid(number):
        return None
    subjects = await vault.lookup(CARD_KIND, number)
    if not subjects:
        return None
    stmt = select(LoyaltyAccountRow.customer_key).where(LoyaltyAccountRow.subject_id == subjects[0])
    async with engine.connect() as conn:
        return (await conn.execute(stmt)).scalar_one_or_none()


# ---------------------------------------------------------------- reading
async def balances_by_ids(engine: AsyncEngine, customer_keys: Sequence[int]) -> dict[int, int]:
    stmt = select(LoyaltyAccountRow.customer_key, LoyaltyAccountRow.balance).where(
        LoyaltyAccountRow.customer_key.in_(customer_keys)
    )
    async with engine.connect() as conn:
        found = {key: int(balance) for key, balance in await conn.execute(stmt)}
    return {key: found.get(key, 0) for key in customer_keys}


async def standing(
    engine: AsyncEngine, customer_key: int, at: datetime, *, policy: LoyaltyPolicy | None = None
) -> Standing:
    """Balance, tier (from points earned in the window) and what the next tier still needs."""
    policy = policy or loyalty_policy()
    async with engine.connect() as conn:
        balance = (
            await conn.execute(select(LoyaltyAccountRow.balance).where(LoyaltyAccountRow.customer_key == customer_key))
        ).scalar_one_or_none()
        earned = await _window_points(conn, customer_key, at, policy)
    tier = policy.tier_for(earned)
    following = policy.next_tier(tier)
    return Standing(
        balance=int(balance or 0),
        tier=tier,
        earned_in_window=earned,
        points_to_next_tier=None if following is None else following.threshold - earned,
    )


async def tier_of(engine: AsyncEngine, customer_key: int, at: datetime, *, policy: LoyaltyPolicy | None = None) -> Tier:
    return (await standing(engine, customer_key, at, policy=policy)).tier


_ENTRY_COLUMNS = (
    LoyaltyTransactionRow.id,
    LoyaltyTransactionRow.customer_key,
    LoyaltyTransactionRow.kind,
    LoyaltyTransactionRow.points,
    LoyaltyTransactionRow.reason,
    LoyaltyTransactionRow.order_key,
    LoyaltyTransactionRow.channel,
    LoyaltyTransactionRow.created_at,
    LoyaltyTransactionRow.shortfall,
)


async def transactions_page(
    engine: AsyncEngine, customer_key: int, *, first: int, before_id: int | None = None
) -> tuple[list[Entry], bool]:
    """Newest first (keyset pagination on the id); and whether more follow."""
    stmt = select(*_ENTRY_COLUMNS).where(LoyaltyTransactionRow.customer_key == customer_key)
    if before_id is not None:
        stmt = stmt.where(LoyaltyTransactionRow.id < before_id)
    stmt = stmt.order_by(LoyaltyTransactionRow.id.desc()).limit(first + 1)
    async with engine.connect() as conn:
        entries = [Entry(*row) for row in await conn.execute(stmt)]
    return entries[:first], len(entries) > first


async def order_points(engine: AsyncEngine, order_keys: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per order: (points earned net of returns, points redeemed net of a released hold)."""
    stmt = select(LoyaltyTransactionRow.order_key, LoyaltyTransactionRow.kind, LoyaltyTransactionRow.points).where(
        LoyaltyTransactionRow.order_key.in_(order_keys)
    )
    found = {key: [0, 0] for key in order_keys}
    async with engine.connect() as conn:
        for order_key, kind, points in await conn.execute(stmt):
            sums = found[str(order_key)]
            if kind == "EARN":
                sums[0] += points
            elif kind == "REDEEM":
                sums[1] -= points
            elif kind == "REVERSE" and points < 0:  # a return took earned points back
                sums[0] += points
            elif kind == "REVERSE":  # a released hold
                sums[1] -= points
    return {key: (max(0, e), max(0, r)) for key, (e, r) in found.items()}


async def ledger_sum(engine: AsyncEngine, customer_key: int) -> tuple[int, int, int]:
    """(balance, sum of the ledger, sum of the lots' remaining points): equal, always. For tests and checks."""
    async with engine.connect() as conn:
        balance = (
            await conn.execute(select(LoyaltyAccountRow.balance).where(LoyaltyAccountRow.customer_key == customer_key))
        ).scalar_one_or_none()
        ledger = (
            await conn.execute(
                select(func.coalesce(func.sum(LoyaltyTransactionRow.points), 0)).where(
                    LoyaltyTransactionRow.customer_key == customer_key
                )
            )
        ).scalar_one()
        lots = (
            await conn.execute(
                select(func.coalesce(func.sum(LoyaltyLot.remaining), 0)).where(LoyaltyLot.customer_key == customer_key)
            )
        ).scalar_one()
    return int(balance or 0), int(ledger), int(lots)
