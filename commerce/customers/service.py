"""What the customers context does: register, sign in, read profiles in batches, addresses, consent.

Plain async functions over an engine and the vault. Personal data goes in and out only
through the vault; this module never sees a key and never logs a value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commerce.customers import errors
from commerce.customers.models import TABLE, Customer, SignInThrottle
from commerce.customers.passwords import hash_password, verify_password
from core.clock import Clock
from core.db import Connectable, writer
from core.text import visible_text
from vault.blind import normalise_email, normalise_phone
from vault.cipher import ERASED, Erased
from vault.consent import Consent
from vault.errors import DuplicateLookup, UnknownSubject
from vault.models import Subject
from vault.requests.models import erasures_running
from vault.service import Sealed, SubjectKey, Vault

__all__ = [
    "LOCK_AFTER_FAILURES",
    "PASSWORD_MIN",
    "Address",
    "Profile",
    "ProfileUpdate",
    "Registration",
    "add_address",
    "authenticate",
    "check_address",
    "consent_history_by_ids",
    "consents_by_ids",
    "erase",
    "erase_many",
    "erased_among",
    "find_by_email",
    "find_by_phone",
    "profiles_by_ids",
    "register",
    "set_consent",
    "subjects_by_ids",
    "update_profile",
    "was_erased",
]

PASSWORD_MIN = 8
PASSWORD_MAX = 256  # Argon2 hashes anything, but a megabyte "password" is a denial of service
LOCK_AFTER_FAILURES = 5
LOCK_BASE = timedelta(seconds=30)
LOCK_MAX = timedelta(hours=1)
THROTTLE_MEMORY = timedelta(days=1)  # a (email, client) with no attempt for this long starts afresh
MAX_ADDRESSES = 20
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # no mail server delivers these; in a name they garble the page


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    line1: str
    postal_code: str
    city: str
    country: str
    line2: str | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    email: str
    password: str
    first_name: str
    last_name: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileUpdate:
    """A rectification (GDPR Art. 16): None leaves a field as it is; an empty phone removes it."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """A customer's personal data, decrypted; each value is `ERASED` once the subject was shredded."""

    id: int
    subject: str
    email: str | Erased
    first_name: str | Erased
    last_name: str | Erased
    phone: str | Erased | None
    addresses: tuple[Address, ...] | Erased

    @property
    def erased(self) -> bool:
        return self.email is ERASED


# ---------------------------------------------------------------- validation
def _check_email(email: str) -> str:
    email = normalise_email(email)
    if len(email) > 254 or not _EMAIL.match(email) or _CONTROL.search(email):
        raise errors.InvalidEmail()
    return email


def _check_name(value: str, field: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= 100 or not visible_text(value):
        raise errors.InvalidName(field)
    return value


def _check_phone(phone: str | None) -> str | None:
    if phone is None or not phone.strip():
        return None
    normalised = normalise_phone(phone)
    if not 7 <= len(normalised.lstrip("+")) <= 15:
        raise errors.InvalidPhone()
    return normalised


def _check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise errors.PasswordTooShort(PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        raise errors.PasswordTooLong(PASSWORD_MAX)


def validate_registration(reg: Registration) -> list[errors.CustomerError]:
    """Every problem at once, so a form can show them all."""
    problems: list[errors.CustomerError] = []
    checks: tuple[Callable[[], object], ...] = (
        lambda: _check_email(reg.email),
        lambda: _check_password(reg.password),
        lambda: _check_name(reg.first_name, "firstName"),
        lambda: _check_name(reg.last_name, "lastName"),
        lambda: _check_phone(reg.phone),
    )
    for check in checks:
        try:
            check()
        except errors.CustomerError as problem:
            problems.append(problem)
    return problems


def _check_address(address: Address) -> Address:
    def optional(value: str | None, field: str, limit: int) -> str | None:
        if value is None or not value.strip():
            return None
        if len(value.strip()) > limit or not visible_text(value.strip()):
            raise errors.InvalidAddress(field)
        return value.strip()

    def need(value: str | None, field: str, limit: int) -> str:
        given = optional(value, field, limit)
        if given is None:
            raise errors.InvalidAddress(field)
        return given

    country = need(address.country, "country", 2)
    if not country.isalpha() or len(country) != 2:
        raise errors.InvalidAddress("country")
    return Address(
        name=need(address.name, "name", 200),
        line1=need(address.line1, "line1", 200),
        line2=optional(address.line2, "line2", 200),
        postal_code=need(address.postal_code, "postalCode", 16),
        city=need(address.city, "city", 100),
        country=country.upper(),
    )


def check_address(address: Address) -> Address:
    """The address trimmed and upper-cased where it should be; `InvalidAddress` naming the bad field."""
    return _check_address(address)


def _addresses_json(addresses: Sequence[Address]) -> str:
    return json.dumps([asdict(a) for a in addresses], separators=(",", ":"), ensure_ascii=False)


def _addresses_from_json(text: str | None) -> tuple[Address, ...]:
    return tuple(Address(**a) for a in json.loads(text)) if text else ()


# ---------------------------------------------------------------- registration and sign-in
def _seal(vault: Vault, key: SubjectKey, column: str, value: str | None) -> bytes | None:
    return vault.encrypt(key, TABLE, column, value)


async def register(engine: AsyncEngine, vault: Vault, clock: Clock, reg: Registration) -> int:
    """A new customer's id. Raises the first validation problem, or `EmailTaken`."""
    problems = validate_registration(reg)
    if problems:
        raise problems[0]
    email = _check_email(reg.email)
    phone = _check_phone(reg.phone)
    if await vault.lookup_by_email(email) is not None:
        raise errors.EmailTaken()  # cheap early answer; the unique index below is what guarantees it
    password_hash = await hash_password(reg.password)
    async with writer(engine).begin() as conn:
        return await _insert_customer(
            conn,
            vault,
            clock,
            email=email,
            phone=phone,
            password_hash=password_hash,
            first_name=_check_name(reg.first_name, "firstName"),
            last_name=_check_name(reg.last_name, "lastName"),
        )


async def _insert_customer(
    conn: AsyncConnection,
    vault: Vault,
    clock: Clock,
    *,
    email: str,
    phone: str | None,
    password_hash: str,
    first_name: str,
    last_name: str,
    addresses: Sequence[Address] = (),
) -> int:
    key = await vault.create_subject(conn)
    try:
        await vault.add_lookup(conn, key.subject, "email", email, unique=True)
    except DuplicateLookup:
        raise errors.EmailTaken() from None
    if phone is not None:
        await vault.add_lookup(conn, key.subject, "phone", phone, unique=False)
    result = await conn.execute(
        insert(Customer)
        .values(
            subject_id=key.subject,
            email_sealed=_seal(vault, key, "email", email),
            first_name_sealed=_seal(vault, key, "first_name", first_name),
            last_name_sealed=_seal(vault, key, "last_name", last_name),
            phone_sealed=_seal(vault, key, "phone", phone),
            addresses_sealed=_seal(vault, key, "addresses", _addresses_json(addresses)) if addresses else None,
            profile_version=1,
            password_hash=password_hash,
            failed_logins=0,
            created_at=clock.now(),
        )
        .returning(Customer.id)
    )
    return result.scalar_one()


async def insert_customer(
    conn: AsyncConnection,
    vault: Vault,
    clock: Clock,
    reg: Registration,
    password_hash: str,
    addresses: Sequence[Address] = (),
) -> int:
    """Seeding and benchmarks: one customer inside the caller's unit of work, hash given."""
    return await _insert_customer(
        conn,
        vault,
        clock,
        email=_check_email(reg.email),
        phone=_check_phone(reg.phone),
        password_hash=password_hash,
        first_name=reg.first_name.strip(),
        last_name=reg.last_name.strip(),
        addresses=[_check_address(a) for a in addresses],
    )


def _required(value: str | Erased | None) -> str | Erased:
    """A NOT NULL personal column's decrypted value."""
    if value is None:
        raise RuntimeError("a required personal field has no value")
    return value


def _lock_for(failures: int) -> timedelta:
    lock: timedelta = min(LOCK_BASE * 2 ** (failures - LOCK_AFTER_FAILURES), LOCK_MAX)
    return lock


async def authenticate(
    engine: AsyncEngine, vault: Vault, clock: Clock, email: str, password: str, *, client: str
) -> int:
    """The customer's id for good credentials; else `InvalidCredentials`, or `TooManyAttempts`
    after LOCK_AFTER_FAILURES failures in a row from this `client` (its network address) for
    this email, locked for 30 s, doubling each time.

    The lock is per (email as typed, client): someone elsewhere failing on purpose does not lock
    the owner out, and an email with no account is counted and locked exactly like one with an
    account, so no answer tells which emails have accounts. Each attempt is counted as a failure
    *before* its password is checked (and forgiven when it is right), so a burst of parallel
    guesses gets no more checks than the lock allows."""
    now = clock.now()
    blind = vault.blind_index("email", email)
    throttle = _throttle_key(blind, client)
    locked = await _claim_attempt(engine, throttle, vault.derived_index(_THROTTLE, blind), now)
    if locked is not None:
        await verify_password(None, password)  # the same work whatever the answer
        raise errors.TooManyAttempts(max(1, int(locked.total_seconds())))
    subject = await vault.lookup_by_email(email) if len(password) <= PASSWORD_MAX else None
    found = await _password_of(engine, subject) if subject is not None else None
    if found is None:
        await verify_password(None, password)  # the same work as for a real account
        raise errors.InvalidCredentials()
    customer_id, password_hash = found
    if not await verify_password(password_hash, password):
        raise errors.InvalidCredentials()
    async with writer(engine).begin() as conn:
        await conn.execute(delete(SignInThrottle).where(SignInThrottle.key == throttle))
    return customer_id


_THROTTLE = "sign_in_throttle"  # the purpose a throttle's `email_index` is derived for


def _throttle_key(blind: bytes, client: str) -> str:
    """A hash of the email's blind index and the client: neither readable in the table (the row
    keeps a derived index of the email, never its blind index, which would let the client be guessed)."""
    digest = hashlib.sha256(blind + b"\x00" + client.encode("utf-8", "replace"))
    return digest.hexdigest()


async def _claim_attempt(engine: AsyncEngine, key: str, email_index: bytes, now: datetime) -> timedelta | None:
    """The time left when (email, client) is locked; else None, this attempt already counted as a failure."""
    upsert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    async with writer(engine).begin() as conn:
        await conn.execute(
            upsert(SignInThrottle)
            .values(key=key, email_index=email_index, failures=0, locked_until=None, updated_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        failures, locked_until = (
            await conn.execute(
                select(SignInThrottle.failures, SignInThrottle.locked_until)
                .where(SignInThrottle.key == key)
                .with_for_update()  # attempts on one (email, client) queue here
            )
        ).one()
        if locked_until is not None and locked_until > now:
            return locked_until - now
        failures += 1
        await conn.execute(
            update(SignInThrottle)
            .where(SignInThrottle.key == key)
            .values(
                failures=failures,
                locked_until=now + _lock_for(failures) if failures >= LOCK_AFTER_FAILURES else locked_until,
                updated_at=now,
                email_index=email_index,  # a row from before migration 0093 gains it
            )
        )
        # Forget what is long over (an unknown email's row stays until then): bounded by attempts per day.
        await conn.execute(delete(SignInThrottle).where(SignInThrottle.updated_at < now - THROTTLE_MEMORY))
    return None


async def _password_of(engine: AsyncEngine, subject: str) -> tuple[int, str] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(Customer.id, Customer.password_hash).where(Customer.subject_id == subject))
        ).first()
    return (row.id, row.password_hash) if row else None


# ---------------------------------------------------------------- reading
def _erased(ids: Sequence[int]) -> Select[int]:
    """Erased, or being erased: from the moment an erasure begins, nothing new is recorded."""
    return (
        select(Customer.id)
        .join(Subject, Subject.id == Customer.subject_id)
        .where(Customer.id.in_(ids), or_(Subject.erased_at.is_not(None), Customer.id.in_(erasures_running())))
    )


async def erased_among(engine: Connectable, ids: Sequence[int]) -> set[int]:
    """The customers among `ids` whose data was erased: their tokens must sign in no one."""
    async with engine.connect() as conn:
        return set((await conn.execute(_erased(ids))).scalars())


async def was_erased(conn: AsyncConnection, customer_key: int) -> bool:
    """`erased_among` for one customer, in the caller's (writing) transaction: what writes personal
    data for a customer asks first, so nothing new is recorded about an erased person."""
    return (await conn.execute(_erased([customer_key]))).first() is not None


async def subjects_by_ids(engine: Connectable, ids: Sequence[int]) -> dict[int, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(Customer.id, Customer.subject_id).where(Customer.id.in_(ids)))
        return {customer_id: subject for customer_id, subject in rows}


_PII_COLUMNS = ("email", "first_name", "last_name", "phone", "addresses")


async def profiles_by_ids(engine: AsyncEngine, vault: Vault, ids: Sequence[int]) -> dict[int, Profile]:
    """Decrypted profiles for a batch: one query for the rows, one for their data keys."""
    stmt = select(
        Customer.id,
        Customer.subject_id,
        Customer.email_sealed,
        Customer.first_name_sealed,
        Customer.last_name_sealed,
        Customer.phone_sealed,
        Customer.addresses_sealed,
    ).where(Customer.id.in_(ids))
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
        sealed = [
            Sealed(row[1], TABLE, column, blob)
            for row in rows
            for column, blob in zip(_PII_COLUMNS, row[2:], strict=True)
        ]
        values = await vault.decrypt_many(sealed, conn)
    width = len(_PII_COLUMNS)
    found: dict[int, Profile] = {}
    for n, row in enumerate(rows):
        email, first, last, phone, addresses = values[n * width : (n + 1) * width]
        found[row[0]] = Profile(
            id=row[0],
            subject=row[1],
            email=_required(email),
            first_name=_required(first),
            last_name=_required(last),
            phone=phone,
            addresses=ERASED if addresses is ERASED else _addresses_from_json(addresses),  # type: ignore[arg-type]
        )
    return found


async def find_by_email(engine: AsyncEngine, vault: Vault, email: str) -> int | None:
    """The customer with this email (by blind index: no plaintext is searched), or None."""
    subject = await vault.lookup_by_email(email)
    if subject is None:
        return None
    async with engine.connect() as conn:
        return (await conn.execute(select(Customer.id).where(Customer.subject_id == subject))).scalar_one_or_none()


async def find_by_phone(engine: AsyncEngine, vault: Vault, phone: str) -> list[int]:
    """Customers with this phone number (several people may share one), by blind index."""
    subjects = await vault.lookup_by_phone(phone)
    if not subjects:
        return []
    async with engine.connect() as conn:
        stmt = select(Customer.id).where(Customer.subject_id.in_(subjects)).order_by(Customer.id)
        return list((await conn.execute(stmt)).scalars())


# ---------------------------------------------------------------- changes
async def add_address(engine: AsyncEngine, vault: Vault, customer_id: int, address: Address) -> None:
    """Append an address. The row is locked while the list is read and re-sealed, so two devices
    adding at once both keep theirs (as SQLite's single writer already does); the update is still
    conditional on the profile version read, so no path can lose a change silently."""
    address = _check_address(address)
    async with writer(engine).begin() as conn:
        stmt = (
            select(Customer.subject_id, Customer.profile_version, Customer.addresses_sealed)
            .where(Customer.id == customer_id)
            .with_for_update()
        )
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise errors.CustomerNotFound()
        subject, version, sealed = row
        [current] = await vault.decrypt_many([Sealed(subject, TABLE, "addresses", sealed)], conn)
        if current is ERASED:
            raise errors.CustomerNotFound()
        addresses = _addresses_from_json(current)  # type: ignore[arg-type]
        if len(addresses) >= MAX_ADDRESSES:
            raise errors.TooManyAddresses(MAX_ADDRESSES)
        try:
            key = await vault.open_subject(conn, subject)
        except UnknownSubject:
            raise errors.CustomerNotFound() from None
        result = await conn.execute(
            update(Customer)
            .where(Customer.id == customer_id, Customer.profile_version == version)
            .values(
                addresses_sealed=_seal(vault, key, "addresses", _addresses_json([*addresses, address])),
                profile_version=version + 1,
            )
        )
        if result.rowcount != 1:
            raise errors.ProfileConflict()


def validate_update(change: ProfileUpdate) -> list[errors.CustomerError]:
    """Every problem at once, like registration."""
    checks: list[Callable[[], object]] = []
    if change.email is not None:
        checks.append(lambda: _check_email(change.email or ""))
    if change.first_name is not None:
        checks.append(lambda: _check_name(change.first_name or "", "firstName"))
    if change.last_name is not None:
        checks.append(lambda: _check_name(change.last_name or "", "lastName"))
    if change.phone is not None:
        checks.append(lambda: _check_phone(change.phone))
    problems: list[errors.CustomerError] = []
    for check in checks:
        try:
            check()
        except errors.CustomerError as problem:
            problems.append(problem)
    return problems


async def update_profile(engine: AsyncEngine, vault: Vault, customer_id: int, change: ProfileUpdate) -> None:
    """Rectify the profile: changed values re-sealed, a changed email or phone re-keys its blind
    index in the same unit of work. An email another person holds raises `EmailTaken`."""
    problems = validate_update(change)
    if problems:
        raise problems[0]
    email = _check_email(change.email) if change.email is not None else None
    if email is not None:
        holder = await vault.lookup_by_email(email)
        owner = (await subjects_by_ids(engine, [customer_id])).get(customer_id)
        if holder is not None and holder != owner:
            raise errors.EmailTaken()  # early answer; the unique index below guarantees it
    async with writer(engine).begin() as conn:
        row = (
            await conn.execute(
                select(Customer.subject_id, Customer.profile_version)
                .where(Customer.id == customer_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise errors.CustomerNotFound()
        subject, version = row
        try:
            key = await vault.open_subject(conn, subject)
        except UnknownSubject:
            raise errors.CustomerNotFound() from None  # erased: nothing to rectify
        values: dict[str, object] = {}
        if email is not None:
            await vault.remove_lookups(conn, subject, "email")
            try:
                await vault.add_lookup(conn, subject, "email", email, unique=True)
            except DuplicateLookup:
                raise errors.EmailTaken() from None
            values["email_sealed"] = _seal(vault, key, "email", email)
        if change.phone is not None:
            phone = _check_phone(change.phone)
            await vault.remove_lookups(conn, subject, "phone")
            if phone is not None:
                await vault.add_lookup(conn, subject, "phone", phone, unique=False)
            values["phone_sealed"] = _seal(vault, key, "phone", phone)
        if change.first_name is not None:
            values["first_name_sealed"] = _seal(vault, key, "first_name", _check_name(change.first_name, "firstName"))
        if change.last_name is not None:
            values["last_name_sealed"] = _seal(vault, key, "last_name", _check_name(change.last_name, "lastName"))
        if not values:
            return
        result = await conn.execute(
            update(Customer)
            .where(Customer.id == customer_id, Customer.profile_version == version)
            .values(**values, profile_version=version + 1)
        )
        if result.rowcount != 1:
            raise errors.ProfileConflict()


async def set_consent(
    engine: AsyncEngine, vault: Vault, customer_id: int, purpose: str, granted: bool, *, channel: str, method: str
) -> None:
    subject = (await subjects_by_ids(engine, [customer_id])).get(customer_id)
    if subject is None:
        raise errors.CustomerNotFound()
    try:
        async with writer(engine).begin() as conn:
            await vault.record_consent(conn, subject, purpose, granted, channel=channel, method=method)
    except UnknownSubject:
        raise errors.CustomerNotFound() from None  # erased: nothing more is recorded about them


async def _by_customer(engine: AsyncEngine, ids: Sequence[int], fetch) -> dict[int, list[Consent]]:  # type: ignore[no-untyped-def]
    subjects = await subjects_by_ids(engine, ids)
    by_subject = await fetch(list(subjects.values())) if subjects else {}
    return {customer_id: by_subject.get(subject, []) for customer_id, subject in subjects.items()}


async def consents_by_ids(engine: AsyncEngine, vault: Vault, ids: Sequence[int]) -> dict[int, list[Consent]]:
    """The current decision per purpose, per customer."""
    return await _by_customer(engine, ids, vault.current_consents)


async def consent_history_by_ids(engine: AsyncEngine, vault: Vault, ids: Sequence[int]) -> dict[int, list[Consent]]:
    """Every consent decision, oldest first, per customer."""
    return await _by_customer(engine, ids, vault.consent_history)


async def _forget_sign_in_attempts(conn: AsyncConnection, vault: Vault, subjects: Sequence[str]) -> None:
    """Delete the sign-in throttles of these people's emails, found by the email's blind index
    while it still exists (the shred destroys it): kept by the email as typed, they would
    otherwise outlive the erasure until the next attempt or THROTTLE_MEMORY."""
    digests = await vault.lookup_digests(conn, subjects, "email")
    if digests:
        indexes = [vault.derived_index(_THROTTLE, digest) for digest in digests]
        await conn.execute(delete(SignInThrottle).where(SignInThrottle.email_index.in_(indexes)))


async def erase_many(engine: AsyncEngine, vault: Vault, customer_ids: Sequence[int]) -> None:
    """`erase` for a batch of customers in one unit of work (unknown ids are skipped)."""
    subjects = await subjects_by_ids(engine, customer_ids)
    async with writer(engine).begin() as conn:
        await conn.execute(
            update(Customer)
            .where(Customer.id.in_(list(subjects)))
            .values(password_hash="", failed_logins=0, locked_until=None)
        )
        await _forget_sign_in_attempts(conn, vault, list(subjects.values()))
        await vault.shred_many(conn, list(subjects.values()))


async def erase(engine: AsyncEngine, vault: Vault, customer_id: int) -> bool:
    """Crypto-shred the customer's personal data (the DPO's erasure will call this), and drop the
    password hash: derived from the person's secret, it is theirs too (and signs in no one now),
    and the sign-in throttles of their email."""
    subject = (await subjects_by_ids(engine, [customer_id])).get(customer_id)
    if subject is None:
        raise errors.CustomerNotFound()
    async with writer(engine).begin() as conn:
        await conn.execute(
            update(Customer)
            .where(Customer.id == customer_id)
            .values(password_hash="", failed_logins=0, locked_until=None)
        )
        await _forget_sign_in_attempts(conn, vault, [subject])
        return await vault.shred(conn, subject)
