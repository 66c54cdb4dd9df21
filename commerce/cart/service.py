"""What carts do: create, add/update/remove lines, hold discount codes, merge at login, expire.

Every change is one unit of work that locks the cart row (PostgreSQL's row lock; SQLite writers
hold the database write lock from `BEGIN IMMEDIATE`), checks `expectedVersion` when given,
writes with relative updates (`quantity = quantity + n`, upserts) and bumps `version`. A
change to an active cart takes the lock by bumping: one `UPDATE ... RETURNING` locks, bumps and
reads the cart (with its lines, on SQLite), and a refusal after it rolls the bump back. Two
devices therefore never overwrite each other silently, and concurrent adds of the same variant
add up. Catalog and stock are read inside that transaction, on its connection:
one connection per change (a writer never waits for a second one while it holds the lock), and
what is checked is what the write sees.

This path is hot: its statements are built once, with bind parameters (building an upsert
with `excluded` or a select with its joins costs more CPU than SQLite takes to run it), and
the cart a change answers with is known from what it read and what RETURNING said, not re-read.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import Text, bindparam, cast, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commerce.cart.errors import (
    CartCustomerErased,
    CartError,
    CartErrorCode,
    CartForbidden,
    CartInputErrors,
    CartNotFound,
    CartVersionConflict,
    LineProblem,
)
from commerce.cart.models import ABANDONED, ACTIVE, CHECKING_OUT, MERGED, ORDERED, CartLineRow, CartRow
from commerce.catalog import service as catalog
from commerce.customers import service as customers
from commerce.inventory import service as inventory
from commerce.pricing.engine import normalize_code
from core.db import Connectable, Within, json_loads, sqlite_write_queue, writer
from core.ids import new_token
from core.settings import Settings

__all__ = [
    "Authorize",
    "Cart",
    "CartLine",
    "CartRules",
    "LineAdd",
    "LineSet",
    "MergeStrategy",
    "active_cart_of",
    "add_lines",
    "attach_to_customer",
    "begin_checkout",
    "cart_owner",
    "carts_of_customer",
    "create_cart",
    "delete_expired_guest_carts",
    "end_checkout",
    "erase_customer_carts",
    "get_cart",
    "held_codes",
    "remove_lines",
    "set_discount_codes",
    "update_lines",
]


class MergeStrategy(StrEnum):
    """What a guest cart does when its holder signs in (`OMNIGATE_CART_MERGE_STRATEGY`)."""

    MERGE = "merge"  # lines and codes of both carts, quantities added up to the limits
    KEEP_GUEST = "keep_guest"  # the guest cart replaces the customer's (unless it is empty)
    KEEP_CUSTOMER = "keep_customer"  # the customer's cart stays as it is


CodeChecker = Callable[[Sequence[str]], Any]  # async (codes) -> [problem code | None] per code
# Which of these variants are for sale (published, of a published product). The API answers from the
# pricing cache (emptied at commit by every catalog change, across replicas by the broadcast);
# without one, the unit of work asks the database.
ForSale = Callable[[Sequence[int]], Awaitable[Collection[int]]]
# Evaluates the access policy's rule for changing this cart on the row locked in `conn` (and
# audits the access in that same transaction); raises CartForbidden when the caller may not.
Authorize = Callable[[AsyncConnection, "Cart"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CartRules:
    max_line_quantity: int
    max_lines: int
    guest_ttl: timedelta
    merge_strategy: MergeStrategy
    max_codes: int

    @classmethod
    def of(cls, settings: Settings) -> CartRules:
        try:
            strategy = MergeStrategy(settings.cart_merge_strategy)
        except ValueError:
            known = ", ".join(MergeStrategy)
            raise ValueError(f"cart_merge_strategy must be one of {known}") from None
        return cls(
            settings.cart_max_line_quantity,
            settings.cart_max_lines,
            timedelta(seconds=settings.guest_cart_ttl_seconds),
            strategy,
            settings.cart_max_discount_codes,
        )


class CartLine(NamedTuple):
    """A named tuple: a cart of a hundred lines builds a hundred on every change (a frozen dataclass
    costs twice as much to build). Pricing takes these as they are, as (key, variant id, quantity):
    keep the order."""

    id: int
    variant_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class Cart:
    id: str
    customer_key: int | None
    status: str
    merged_into: str | None
    version: int
    codes: tuple[str, ...]
    lines: tuple[CartLine, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class LineAdd:
    variant_id: int
    quantity: int


@dataclass(frozen=True, slots=True)
class LineSet:
    line_id: int
    quantity: int  # 0 removes the line


# What `new_token()` makes (url-safe base64, at most the column's 43 characters). Anything else is no
# cart, and is never sent to the database: PostgreSQL refuses a NUL byte with an error, not a miss.
_CART_ID = re.compile(r"[A-Za-z0-9_-]{1,43}")


@asynccontextmanager
async def _unit_of_work(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction that writes (BEGIN IMMEDIATE on SQLite, whose writers here take turns).

    Core statements on a connection, not an ORM session: this path is hot and holds the lock.
    """
    async with sqlite_write_queue(engine), writer(engine).begin() as conn:
        yield conn


def _expired(row: Any, now: datetime, rules: CartRules) -> bool:
    return row.customer_key is None and row.updated_at <= now - rules.guest_ttl


async def _reread(conn: Any, cart_id: str) -> Cart:
    """A cart this transaction has just written: it cannot be missing."""
    cart = await _read(conn, cart_id)
    if cart is None:
        raise RuntimeError("a cart vanished inside its own transaction")
    return cart


def _lines_json(aggregate: Any, triple: Any) -> Any:
    """The cart's lines as one JSON text of [id, variant_id, quantity] triples (in no particular order).

    One row per cart instead of one per line: a joined read repeated the cart's columns on every
    line, each decoded again (JSON codes, two timestamps), which cost more than the rest of an add."""
    found = select(aggregate(triple(CartLineRow.id, CartLineRow.variant_id, CartLineRow.quantity)))
    # By the bound key, not correlated: SQLite's UPDATE ... RETURNING names the cart's columns
    # unqualified, and an unqualified `id` in here would be the line's.
    return found.where(CartLineRow.cart_id == bindparam("cart_key")).scalar_subquery().label("lines_json")


_LINES_JSON = {
    "postgresql": _lines_json(lambda t: cast(func.json_agg(t), Text), func.json_build_array),
    "sqlite": _lines_json(func.json_group_array, func.json_array),
}


class _Statements(NamedTuple):
    """A backend's cart statements. On SQLite a writer holds the whole database from BEGIN
    IMMEDIATE, so the statement that locks the cart reads its lines too. On PostgreSQL a statement
    that waited for a row lock re-reads that row only, and sees every other row as it was when it
    began: the line a concurrent add just committed would be missing (and stock caps passed on an
    old quantity). There the lines come from the next statement, which sees it."""

    read: Any  # the cart with its lines, as one snapshot
    lock: Any  # the cart, locked (with its lines when `lines_in_lock`)
    claim: Any  # the usable cart at its next version, which locks it (with its lines when `lines_in_lock`)
    lines: Any  # the lines alone, once the cart is locked
    lines_in_lock: bool


def _statements(lines: Any, *, lines_in_lock: bool) -> _Statements:
    read = select(CartRow.__table__, lines).where(CartRow.id == bindparam("cart_key"))
    locking = (lines,) if lines_in_lock else ()
    claim = (
        update(CartRow)
        .where(
            CartRow.id == bindparam("cart_key"),
            CartRow.status == ACTIVE,
            or_(CartRow.customer_key.is_not(None), CartRow.updated_at > bindparam("fresh_after")),  # not expired
        )
        .values(version=CartRow.version + 1, updated_at=bindparam("now"))
        .returning(*CartRow.__table__.c, *locking)
    )
    lock = select(CartRow.__table__, *locking).where(CartRow.id == bindparam("cart_key")).with_for_update(of=CartRow)
    return _Statements(read, lock, claim, select(lines), lines_in_lock)


_SQL = {
    "postgresql": _statements(_LINES_JSON["postgresql"], lines_in_lock=False),
    "sqlite": _statements(_LINES_JSON["sqlite"], lines_in_lock=True),
}


def _sql(conn: Any) -> _Statements:
    return _SQL["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]


async def _cart_of(conn: Any, sql: _Statements, row: Any, *, lines_in_row: bool) -> Cart:
    """A cart row as a `Cart`, its lines in id order (PostgreSQL's json_agg of no line is NULL)."""
    found = row.lines_json if lines_in_row else (await conn.execute(sql.lines, {"cart_key": row.id})).scalar()
    return Cart(
        row.id,
        row.customer_key,
        row.status,
        row.merged_into,
        row.version,
        tuple(row.discount_codes),
        tuple(map(CartLine._make, sorted(json_loads(found or "[]")))),
        row.created_at,
        row.updated_at,
    )


async def _read(conn: Any, cart_id: str, *, lock: bool = False) -> Cart | None:
    """The cart and its lines (in one query where that sees them as they are: one round trip counts,
    SQLite writers hold the lock meanwhile)."""
    if not _CART_ID.fullmatch(cart_id):
        return None
    sql = _sql(conn)
    row = (await conn.execute(sql.lock if lock else sql.read, {"cart_key": cart_id})).first()
    return None if row is None else await _cart_of(conn, sql, row, lines_in_row=not lock or sql.lines_in_lock)


async def get_cart(engine: Connectable, cart_id: str, *, now: datetime, rules: CartRules) -> Cart | None:
    """The cart, or the cart it was merged into; None when unknown or an expired guest cart."""
    async with engine.connect() as conn:
        for _ in range(3):  # a merged cart points to an active one; never a long chain
            cart = await _read(conn, cart_id)
            if cart is None or _expired(cart, now, rules):
                return None
            if cart.status != MERGED or cart.merged_into is None:
                return cart
            cart_id = cart.merged_into
    return None


async def _active_of(conn: Any, customer_key: int, *, lock: bool = False) -> Cart | None:
    stmt = select(CartRow.id).where(CartRow.customer_key == customer_key, CartRow.status == ACTIVE)
    if lock:
        stmt = stmt.with_for_update()
    found = (await conn.execute(stmt)).scalar()
    return await _read(conn, found, lock=lock) if found else None


async def active_cart_of(engine: AsyncEngine, customer_key: int) -> Cart | None:
    """The customer's one active cart, whichever device or channel made it."""
    async with engine.connect() as conn:
        return await _active_of(conn, customer_key)


# ---------------------------------------------------------------- validation helpers


@dataclass(frozen=True, slots=True)
class _Catalog:
    """What the variants in play are: published or not, and how many are available in total."""

    published: frozenset[int]
    available: dict[int, int]


async def _catalog(
    db: Connectable | AsyncConnection, variant_ids: Sequence[int], for_sale: Collection[int] | None = None
) -> _Catalog:
    """Published or not (unless `for_sale` says), and stock; on a unit of work's connection when given one."""
    ids = sorted(set(variant_ids))
    if not ids:
        return _Catalog(frozenset(), {})
    source = Within(db) if isinstance(db, AsyncConnection) else db
    if for_sale is None:
        for_sale = await catalog.variant_scopes(source, ids)  # published variants of published products
    stock = await inventory.stock_by_variant_ids(source, ids)
    return _Catalog(
        frozenset(v for v in ids if v in for_sale),
        {vid: sum(max(0, s.available) for s in levels) for vid, levels in stock.items()},
    )


async def _for_sale(check: ForSale | None, variant_ids: Sequence[int]) -> Collection[int] | None:
    """Asked before the unit of work opens: a cache that must load does so without holding the lock."""
    return await check(sorted(set(variant_ids))) if check is not None and variant_ids else None


def _check_quantity(
    quantity: int, rules: CartRules, field: list[str], *, allow_zero: bool = False
) -> LineProblem | None:
    low = 0 if allow_zero else 1
    if not low <= quantity <= rules.max_line_quantity:
        return LineProblem(
            CartErrorCode.QUANTITY_OUT_OF_RANGE, f"Quantity must be {low} to {rules.max_line_quantity}.", field
        )
    return None


def _check_stock(variant_id: int, total: int, known: _Catalog, field: list[str]) -> LineProblem | None:
    available = known.available.get(variant_id, 0)
    if total > available:
        return LineProblem(CartErrorCode.INSUFFICIENT_STOCK, f"Only {available} available.", field)
    return None


def _raise_if(problems: list[CartError]) -> None:
    if problems:
        raise CartInputErrors(problems)


def held_codes(codes: Sequence[str], rules: CartRules) -> list[str]:
    """The distinct codes, normalized and in order; refused as a whole when more than a cart holds
    (before anyone looks them up: one error, not thousands, and a bounded query)."""
    held = list(dict.fromkeys(normalize_code(c) for c in codes if c.strip()))
    if len(held) > rules.max_codes:
        raise CartInputErrors(
            [
                LineProblem(
                    CartErrorCode.TOO_MANY_DISCOUNT_CODES, f"A cart holds at most {rules.max_codes} codes.", ["codes"]
                )
            ]
        )
    return held


# ---------------------------------------------------------------- units of work


def _usable(cart: Cart | None, now: datetime, rules: CartRules) -> Cart:
    if cart is None or cart.status != ACTIVE or _expired(cart, now, rules):
        raise CartNotFound("No such cart (or it expired).", ["cartId"])
    return cart


async def _locked(
    conn: AsyncConnection,
    cart_id: str,
    expected_version: int | None,
    now: datetime,
    rules: CartRules,
    authorize: Authorize,
) -> Cart:
    """The cart row locked for this unit of work (following a merge), if usable, the caller may,
    and it is at `expected_version` (when given). A version read on a guest cart that has since
    merged never passes: the cart it names changed, whatever number the customer's cart is at."""
    cart = await _read(conn, cart_id, lock=True)
    merged_into = cart.merged_into if cart is not None and cart.status == MERGED else None
    if merged_into:
        cart = await _read(conn, merged_into, lock=True)
    cart = _usable(cart, now, rules)
    await authorize(conn, cart)
    if expected_version is not None and (merged_into or cart.version != expected_version):
        raise CartVersionConflict(f"The cart is at version {cart.version}, not {expected_version}: reload it.")
    return cart


async def _claimed(
    conn: AsyncConnection,
    cart_id: str,
    expected_version: int | None,
    now: datetime,
    rules: CartRules,
    authorize: Authorize,
) -> Cart:
    """`_locked` then `_bump`, as one statement on the usual path: the cart at its next version.

    An active, unexpired cart is bumped first and checked after (the caller may, at
    `expected_version`); any refusal, here or in the change that follows, raises and the unit of
    work rolls the bump back. Any other cart (merged, unknown, expired, closed) takes `_locked`'s
    way, which follows a merge or says what is wrong."""
    row, sql = None, _sql(conn)
    if _CART_ID.fullmatch(cart_id):
        values = {"cart_key": cart_id, "now": now, "fresh_after": now - rules.guest_ttl}
        row = (await conn.execute(sql.claim, values)).first()
    if row is None:
        cart = await _locked(conn, cart_id, expected_version, now, rules, authorize)
        await _bump(conn, cart, now)
        return _changed(cart, now)
    cart = await _cart_of(conn, sql, row, lines_in_row=sql.lines_in_lock)
    await authorize(conn, cart)
    seen = cart.version - 1
    if expected_version is not None and seen != expected_version:
        raise CartVersionConflict(f"The cart is at version {seen}, not {expected_version}: reload it.")
    return cart


def _changed(cart: Cart, now: datetime, lines: Sequence[CartLine] | None = None, **fields: Any) -> Cart:
    """The cart after `_bump`, as this unit of work left it: known without reading it back."""
    return _holding(replace(cart, version=cart.version + 1, updated_at=now, **fields), lines)


def _holding(cart: Cart, lines: Sequence[CartLine] | None) -> Cart:
    """The cart with `lines` (in id order) once this unit of work wrote them; as it is for None."""
    return cart if lines is None else replace(cart, lines=tuple(sorted(lines)))


_BUMP = (
    update(CartRow)
    .where(CartRow.id == bindparam("cart_key"), CartRow.version == bindparam("seen_version"))
    .values(version=CartRow.version + 1, updated_at=bindparam("now"))
)


async def _bump(conn: AsyncConnection, cart: Cart, now: datetime, **values: Any) -> None:
    """The next version (the optimistic check, on the row this unit of work has locked)."""
    stmt = _BUMP.values(**values) if values else _BUMP
    result = await conn.execute(stmt, {"cart_key": cart.id, "seen_version": cart.version, "now": now})
    if result.rowcount != 1:  # cannot happen under the row lock; refuse rather than lose a change
        raise CartVersionConflict("The cart changed meanwhile: reload it.")


def _upsert_statement(insert: Any) -> Any:
    stmt = insert(CartLineRow).values(
        cart_id=bindparam("cart_key"), variant_id=bindparam("variant_key"), quantity=bindparam("adding")
    )
    return stmt.on_conflict_do_update(
        index_elements=["cart_id", "variant_id"], set_={"quantity": CartLineRow.quantity + stmt.excluded.quantity}
    ).returning(CartLineRow.id, CartLineRow.quantity)


# Adds up with what is there (`quantity = quantity + excluded.quantity`); answers the line's id and new quantity.
_UPSERT = {"postgresql": _upsert_statement(pg_insert), "sqlite": _upsert_statement(sqlite_insert)}


async def _upsert_add(conn: AsyncConnection, cart_id: str, variant_id: int, quantity: int) -> CartLine:
    stmt = _UPSERT["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    line_id, total = (
        await conn.execute(stmt, {"cart_key": cart_id, "variant_key": variant_id, "adding": quantity})
    ).one()
    return CartLine(line_id, variant_id, total)


def _validate_adds(
    cart: Cart, adds: Sequence[LineAdd], known: _Catalog, rules: CartRules, prefix: str = "lines"
) -> dict[int, int]:
    """The quantity to add per variant; raises with every problem when any line is wrong."""
    problems: list[CartError] = []
    current = {line.variant_id: line.quantity for line in cart.lines}
    adding: dict[int, int] = {}
    for i, add in enumerate(adds):
        qty_field = [prefix, str(i), "quantity"]
        problem = _check_quantity(add.quantity, rules, qty_field)
        if problem is None and add.variant_id not in known.published:
            problem = LineProblem(
                CartErrorCode.VARIANT_NOT_FOUND, "No such product variant for sale.", [prefix, str(i), "variantId"]
            )
        if problem is None:
            total = current.get(add.variant_id, 0) + adding.get(add.variant_id, 0) + add.quantity
            problem = _check_quantity(total, rules, qty_field) or _check_stock(add.variant_id, total, known, qty_field)
        if problem:
            problems.append(problem)
        else:
            adding[add.variant_id] = adding.get(add.variant_id, 0) + add.quantity
    if not problems and len(set(current) | set(adding)) > rules.max_lines:
        problems.append(
            LineProblem(CartErrorCode.TOO_MANY_LINES, f"A cart holds at most {rules.max_lines} lines.", [prefix])
        )
    _raise_if(problems)
    return adding


async def _apply_adds(conn: AsyncConnection, cart: Cart, adding: dict[int, int]) -> list[CartLine]:
    """Upsert the adds; the cart's lines after them."""
    lines = {line.id: line for line in cart.lines}
    for variant_id, quantity in adding.items():
        line = await _upsert_add(conn, cart.id, variant_id, quantity)
        lines[line.id] = line
    return list(lines.values())


async def _refuse_erased(conn: AsyncConnection, customer_key: int | None) -> None:
    """An erased customer's carts went with their erasure: none is opened for them again (a till
    or an agent naming them), which would record new personal data about them."""
    if customer_key is not None and await customers.was_erased(conn, customer_key):
        raise CartCustomerErased()


async def create_cart(
    engine: AsyncEngine,
    *,
    customer_key: int | None,
    lines: Sequence[LineAdd],
    now: datetime,
    rules: CartRules,
    for_sale: ForSale | None = None,
) -> Cart:
    """A new guest cart, or for a customer their one active cart (created when they have none)."""
    _at_most_a_cart(lines, rules, "lines")
    published = await _for_sale(for_sale, [line.variant_id for line in lines])
    for attempt in range(2):
        try:
            async with _unit_of_work(engine) as conn:
                cart = await _active_of(conn, customer_key, lock=True) if customer_key is not None else None
                if cart is None:
                    await _refuse_erased(conn, customer_key)
                    cart = Cart(new_token(), customer_key, ACTIVE, None, 1, (), (), now, now)
                    await conn.execute(
                        insert(CartRow).values(
                            id=cart.id,
                            customer_key=customer_key,
                            status=ACTIVE,
                            version=1,
                            discount_codes=[],
                            created_at=now,
                            updated_at=now,
                        )
                    )
                known = await _catalog(conn, [line.variant_id for line in lines], published)
                adding = _validate_adds(cart, lines, known, rules)
                if not adding:
                    return cart
                held = await _apply_adds(conn, cart, adding)
                await _bump(conn, cart, now)
                return _changed(cart, now, held)
        except IntegrityError:
            if attempt:  # another device created the customer's cart at the same moment: use it
                raise
    raise AssertionError("unreachable")


def _at_most_a_cart(entries: Sequence[object], rules: CartRules, field: str) -> None:
    """More entries than a cart holds lines are refused as a whole, before anything is looked up:
    one error, not one per entry (30,000 line ids were 3 s and a 1 MB list of errors)."""
    if len(entries) > rules.max_lines:
        raise CartInputErrors(
            [LineProblem(CartErrorCode.TOO_MANY_LINES, f"A cart holds at most {rules.max_lines} lines.", [field])]
        )


async def add_lines(
    engine: AsyncEngine,
    cart_id: str,
    lines: Sequence[LineAdd],
    *,
    expected_version: int | None,
    now: datetime,
    rules: CartRules,
    authorize: Authorize,
    for_sale: ForSale | None = None,
) -> Cart:
    _at_most_a_cart(lines, rules, "lines")
    published = await _for_sale(for_sale, [line.variant_id for line in lines])
    async with _unit_of_work(engine) as conn:
        cart = await _claimed(conn, cart_id, expected_version, now, rules, authorize)
        known = await _catalog(conn, [line.variant_id for line in lines], published)
        return _holding(cart, await _apply_adds(conn, cart, _validate_adds(cart, lines, known, rules)))


async def update_lines(
    engine: AsyncEngine,
    cart_id: str,
    lines: Sequence[LineSet],
    *,
    expected_version: int | None,
    now: datetime,
    rules: CartRules,
    authorize: Authorize,
) -> Cart:
    _at_most_a_cart(lines, rules, "lines")
    async with _unit_of_work(engine) as conn:
        cart = await _claimed(conn, cart_id, expected_version, now, rules, authorize)
        by_id = {line.id: line for line in cart.lines}
        growing = [by_id[c.line_id] for c in lines if c.line_id in by_id and c.quantity > by_id[c.line_id].quantity]
        # Only growing needs stock, and only stock: whether a line's variant is still for sale is pricing's to show.
        known = await _catalog(conn, [line.variant_id for line in growing], for_sale=())
        problems: list[CartError] = []
        for i, change in enumerate(lines):
            line = by_id.get(change.line_id)
            qty_field = ["lines", str(i), "quantity"]
            problem = None
            if line is None:
                problem = LineProblem(
                    CartErrorCode.CART_LINE_NOT_FOUND, "No such line in this cart.", ["lines", str(i), "lineId"]
                )
            else:
                problem = _check_quantity(change.quantity, rules, qty_field, allow_zero=True)
                if problem is None and change.quantity > line.quantity:  # only growing needs stock
                    problem = _check_stock(line.variant_id, change.quantity, known, qty_field)
            if problem:
                problems.append(problem)
        _raise_if(problems)
        held = dict(by_id)
        for change in lines:
            if change.quantity == 0:
                await conn.execute(delete(CartLineRow).where(CartLineRow.id == change.line_id))
                held.pop(change.line_id, None)
            else:
                await conn.execute(
                    update(CartLineRow).where(CartLineRow.id == change.line_id).values(quantity=change.quantity)
                )
                if change.line_id in held:  # one an earlier change here removed stays removed (no row to update)
                    held[change.line_id] = held[change.line_id]._replace(quantity=change.quantity)
        return _holding(cart, list(held.values()))


async def remove_lines(
    engine: AsyncEngine,
    cart_id: str,
    line_ids: Sequence[int],
    *,
    expected_version: int | None,
    now: datetime,
    rules: CartRules,
    authorize: Authorize,
) -> Cart:
    _at_most_a_cart(line_ids, rules, "lineIds")
    async with _unit_of_work(engine) as conn:
        cart = await _claimed(conn, cart_id, expected_version, now, rules, authorize)
        held = {line.id for line in cart.lines}
        _raise_if(
            [
                LineProblem(CartErrorCode.CART_LINE_NOT_FOUND, "No such line in this cart.", ["lineIds", str(i)])
                for i, line_id in enumerate(line_ids)
                if line_id not in held
            ]
        )
        await conn.execute(delete(CartLineRow).where(CartLineRow.id.in_(list(line_ids))))
        gone = set(line_ids)
        return _holding(cart, [line for line in cart.lines if line.id not in gone])


async def set_discount_codes(
    engine: AsyncEngine,
    cart_id: str,
    codes: Sequence[str],
    problems: Sequence[str | None],
    *,
    expected_version: int | None,
    now: datetime,
    rules: CartRules,
    authorize: Authorize,
) -> Cart:
    """Replace the cart's codes; `problems` (from pricing's `check_codes`) refuse the whole change."""
    async with _unit_of_work(engine) as conn:
        cart = await _locked(conn, cart_id, expected_version, now, rules, authorize)
        _raise_if(
            [
                LineProblem(problem, f"The code {normalize_code(code)[:64]!r} cannot be used.", ["codes", str(i)])
                for i, (code, problem) in enumerate(zip(codes, problems, strict=True))
                if problem
            ]
        )
        held = held_codes(codes, rules)
        await _bump(conn, cart, now, discount_codes=held)
        return _changed(cart, now, codes=tuple(held))


async def attach_to_customer(
    engine: AsyncEngine,
    cart_id: str,
    customer_key: int,
    *,
    now: datetime,
    rules: CartRules,
    check_codes: CodeChecker,
) -> tuple[Cart, tuple[str, ...]]:
    """The guest cart joins the customer's active cart (see `cart_merge_strategy`).

    Returns the customer's cart and the ids of every cart that changed. Attaching a cart that
    already joined (or already is) this customer's cart returns that cart and changes nothing.
    """
    guest = await get_cart(engine, cart_id, now=now, rules=rules)
    if guest is None:
        raise CartNotFound("No such cart (or it expired).", ["cartId"])
    if guest.customer_key is not None and guest.customer_key != customer_key:
        raise CartForbidden("This cart belongs to someone else.")
    if guest.customer_key == customer_key:
        return guest, ()
    own = await active_cart_of(engine, customer_key)
    known = await _catalog(engine, [line.variant_id for line in guest.lines])
    codes: list[str] = []  # the codes the customer's cart ends with, checked for this customer
    if own is None or rules.merge_strategy is not MergeStrategy.KEEP_CUSTOMER:
        wanted = list(
            dict.fromkeys((own.codes if own and rules.merge_strategy is MergeStrategy.MERGE else ()) + guest.codes)
        )
        if wanted:
            checked = zip(wanted, await check_codes(wanted), strict=True)
            codes = [c for c, problem in checked if not problem][: rules.max_codes]
    for attempt in range(2):
        try:
            async with _unit_of_work(engine) as conn:
                return await _attach_locked(conn, cart_id, customer_key, own, codes, known, now=now, rules=rules)
        except IntegrityError:
            if attempt:  # another device made the customer's first cart meanwhile: merge into it
                raise
    raise AssertionError("unreachable")


async def _attach_locked(
    conn: AsyncConnection,
    cart_id: str,
    customer_key: int,
    own: Cart | None,
    codes: Sequence[str],
    known: _Catalog,
    *,
    now: datetime,
    rules: CartRules,
) -> tuple[Cart, tuple[str, ...]]:
    """`attach_to_customer`'s writes, in one unit of work."""
    guest = await _read(conn, cart_id, lock=True)
    if guest is not None and guest.status == MERGED and guest.merged_into:  # another device attached it
        guest = await _read(conn, guest.merged_into, lock=True)
    guest = _usable(guest, now, rules)
    if guest.customer_key is not None:  # attached meanwhile: answer as above
        if guest.customer_key != customer_key:
            raise CartForbidden("This cart belongs to someone else.")
        return guest, ()
    target = await _active_of(conn, customer_key, lock=True)
    if target is None:  # no cart yet: the guest cart simply becomes theirs
        values = {"discount_codes": codes} if own is None else {}
        await _bump(conn, guest, now, customer_key=customer_key, **values)
        fresh = await _reread(conn, cart_id)
        return fresh, (cart_id,)
    strategy = rules.merge_strategy
    if strategy is MergeStrategy.KEEP_GUEST and not guest.lines:
        strategy = MergeStrategy.KEEP_CUSTOMER  # an empty guest cart (a visit before signing in) never empties theirs
    if strategy is MergeStrategy.KEEP_GUEST:
        await conn.execute(delete(CartLineRow).where(CartLineRow.cart_id == target.id))
        current: dict[int, int] = {}
    else:
        current = {line.variant_id: line.quantity for line in target.lines}
    if strategy is not MergeStrategy.KEEP_CUSTOMER:
        for line in guest.lines:
            if line.variant_id not in known.published:
                continue
            have = current.get(line.variant_id, 0)
            cap = min(rules.max_line_quantity, known.available.get(line.variant_id, 0))
            add = max(0, min(have + line.quantity, cap) - have)
            if add and (line.variant_id in current or len(current) < rules.max_lines):
                await _upsert_add(conn, target.id, line.variant_id, add)
                current[line.variant_id] = have + add
    # Codes were united and checked for the cart read before the lock; should another device
    # have made the customer's cart meanwhile, its codes stay as they are.
    united = strategy is not MergeStrategy.KEEP_CUSTOMER and own is not None and own.id == target.id
    values = {"discount_codes": codes} if united else {}
    await _bump(conn, target, now, **values)
    await _bump(conn, guest, now, status=MERGED, merged_into=target.id)
    fresh = await _reread(conn, target.id)
    return fresh, (target.id, cart_id)


async def delete_expired_guest_carts(engine: AsyncEngine, *, now: datetime, rules: CartRules) -> int:
    """Delete abandoned guest carts (merged guest carts too, past the same age); returns how many."""
    async with _unit_of_work(engine) as conn:
        result = await conn.execute(
            delete(CartRow).where(CartRow.customer_key.is_(None), CartRow.updated_at <= now - rules.guest_ttl)
        )
        return int(result.rowcount or 0)


async def carts_of_customer(engine: AsyncEngine, customer_key: int) -> list[Cart]:
    """Every cart held for a customer (for a data-subject export)."""
    async with engine.connect() as conn:
        ids = (await conn.execute(select(CartRow.id).where(CartRow.customer_key == customer_key))).scalars().all()
        return [cart for cart_id in ids if (cart := await _read(conn, cart_id)) is not None]


async def erase_customer_carts(engine: AsyncEngine, customer_key: int) -> int:
    """Delete a customer's carts (for erasure); guest carts merged into them go too. Returns how many."""
    async with _unit_of_work(engine) as conn:
        ids = (await conn.execute(select(CartRow.id).where(CartRow.customer_key == customer_key))).scalars().all()
        if not ids:
            return 0
        await conn.execute(delete(CartRow).where(CartRow.merged_into.in_(ids)))
        result = await conn.execute(delete(CartRow).where(CartRow.id.in_(ids)))
        return int(result.rowcount or 0)


# ---------------------------------------------------------------- checkout (in the order's unit of work)


def cart_owner(cart: Cart) -> str:
    """Whose idempotency keys a checkout of this cart uses: the customer's, or the guest cart's own."""
    return f"customer:{cart.customer_key}" if cart.customer_key is not None else f"cart:{cart.id}"


_BEGIN_CHECKOUT = (
    update(CartRow)
    .where(CartRow.id == bindparam("cart_key"), CartRow.status == ACTIVE, CartRow.version == bindparam("seen"))
    .values(status=CHECKING_OUT, version=CartRow.version + 1, updated_at=bindparam("now"))
)


async def begin_checkout(conn: AsyncConnection, cart_id: str, version: int, now: datetime) -> bool:
    """If the cart is active at `version`, mark it as checking out (no change may land while the
    payment is pending): one conditional update, which locks the row. False: it changed or closed meanwhile."""
    result = await conn.execute(_BEGIN_CHECKOUT, {"cart_key": cart_id, "seen": version, "now": now})
    return result.rowcount == 1


_ORDERED = (
    update(CartRow)
    .where(CartRow.id == bindparam("cart_key"), CartRow.status == CHECKING_OUT)
    .values(status=ORDERED, version=CartRow.version + 1, updated_at=bindparam("now"))
    .returning(CartRow.version)
)


async def end_checkout(conn: AsyncConnection, cart_id: str, *, ordered: bool, now: datetime) -> int | None:
    """Close the cart for its order (`ordered`), or reopen it after a failed payment. Returns its new
    version. A cart the customer replaced meanwhile (they made a new one) is not reopened but abandoned."""
    if ordered:  # one statement: the cart is locked by nobody else while it is checking out
        closed = await conn.execute(_ORDERED, {"cart_key": cart_id, "now": now})
        return closed.scalar()
    cart = await _read(conn, cart_id, lock=True)
    if cart is None or cart.status != CHECKING_OUT:
        return None
    status = ORDERED
    if not ordered:
        status = ACTIVE
        if cart.customer_key is not None and await _active_of(conn, cart.customer_key) is not None:
            status = ABANDONED
    await _bump(conn, cart, now, status=status)
    return cart.version + 1
