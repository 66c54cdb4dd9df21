"""Enqueue email in the caller's unit of work; deliver what is due, with retries.

Other contexts call `enqueue` (or `notify_order_confirmed` / `notify_ready_for_pickup`) inside
the transaction that makes the message true, so a message exists exactly when its cause
committed. `deliver_due` (run by `python -m gateway mail send`, or in the background by
`serve`) sends each due message, at least once: an attempt claims the row for a lease first,
so several senders never send one message at the same time; a failure is retried later with
a growing pause, and given up after MAX_ATTEMPTS.

The recipient's address is decrypted from the vault only to send, and is never logged.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commerce.customers import credentials
from commerce.customers import service as customers
from commerce.notifications.models import FAILED, PENDING, SENT, TABLE, EmailOutbox
from commerce.notifications.sender import MailSender
from commerce.notifications.templates import TEMPLATES, language_of, render
from core.clock import Clock
from core.db import writer
from vault.cipher import ERASED
from vault.errors import UnknownSubject
from vault.service import Sealed, Vault

__all__ = [
    "MAX_ATTEMPTS",
    "DeliveryReport",
    "deliver_due",
    "enqueue",
    "notify_order_confirmed",
    "notify_ready_for_pickup",
]

logger = logging.getLogger("omnigate.notifications")

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)  # a claimed message is someone's to send for this long
RETRY_BASE = timedelta(seconds=30)  # then 1, 2, 4 ... minutes, up to RETRY_MAX
RETRY_MAX = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


async def enqueue(
    conn: AsyncConnection,
    vault: Vault,
    clock: Clock,
    *,
    customer_key: int,
    template: str,
    params: dict[str, str],
    language: str | None = None,
) -> bool:
    """Queue one message to a customer in the caller's transaction; False when the customer is
    unknown, erased or being erased (there is no one to write to, and nothing new is recorded
    about them). `language`: an Accept-Language-like preference, "pl" or "en" (else Polish)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown email template {template!r}")
    subject = await credentials.subject_of(conn, customer_key)
    if subject is None or await customers.was_erased(conn, customer_key):
        return False
    try:
        key = await vault.open_subject(conn, subject)
    except UnknownSubject:
        return False
    sealed = vault.encrypt(key, TABLE, "payload", json.dumps(params, ensure_ascii=False))
    now = clock.now()
    await conn.execute(
        insert(EmailOutbox).values(
            customer_key=customer_key,
            subject_id=subject,
            template=template,
            language=language_of(language),
            payload_sealed=sealed,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return True


async def notify_order_confirmed(
    conn: AsyncConnection,
    vault: Vault,
    clock: Clock,
    *,
    customer_key: int,
    order_number: str,
    total: str,
    language: str | None = None,
) -> bool:
    """For checkout: call inside the order's transaction. `total` as shown, e.g. "129,99 zł"."""
    params = {"order_number": order_number, "total": total}
    return await enqueue(
        conn, vault, clock, customer_key=customer_key, template="order_confirmation", params=params, language=language
    )


async def notify_ready_for_pickup(
    conn: AsyncConnection,
    vault: Vault,
    clock: Clock,
    *,
    customer_key: int,
    order_number: str,
    store: str,
    collect_by: str,
    language: str | None = None,
) -> bool:
    """For orderMarkReadyForPickup: call inside its transaction. `store` its name, `collect_by` a date."""
    params = {"order_number": order_number, "store": store, "collect_by": collect_by}
    return await enqueue(
        conn, vault, clock, customer_key=customer_key, template="ready_for_pickup", params=params, language=language
    )


def _retry_pause(attempts: int) -> timedelta:
    pause: timedelta = RETRY_BASE * 2 ** max(attempts - 1, 0)
    return min(pause, RETRY_MAX)


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    customer_key: int
    subject_id: str
    template: str
    language: str
    payload_sealed: bytes
    attempts: int


async def _claim(engine: AsyncEngine, now: datetime, limit: int) -> list[_Claimed]:
    """Due messages this sender now holds a lease on (another sender skips them meanwhile)."""
    async with writer(engine).begin() as conn:
        due = select(EmailOutbox.id).where(EmailOutbox.status == PENDING, EmailOutbox.next_attempt_at <= now)
        ids = list((await conn.execute(due.order_by(EmailOutbox.id).limit(limit))).scalars())
        if not ids:
            return []
        claimed = await conn.execute(
            update(EmailOutbox)
            .where(EmailOutbox.id.in_(ids), EmailOutbox.status == PENDING, EmailOutbox.next_attempt_at <= now)
            .values(next_attempt_at=now + LEASE, attempts=EmailOutbox.attempts + 1)
            .returning(EmailOutbox.id)
        )
        mine = list(claimed.scalars())
        rows = await conn.execute(
            select(
                EmailOutbox.id,
                EmailOutbox.customer_key,
                EmailOutbox.subject_id,
                EmailOutbox.template,
                EmailOutbox.language,
                EmailOutbox.payload_sealed,
                EmailOutbox.attempts,
            )
            .where(EmailOutbox.id.in_(mine))
            .order_by(EmailOutbox.id)
        )
        return [_Claimed(*row) for row in rows]


async def _finish(engine: AsyncEngine, message_id: int, **values: object) -> None:
    async with writer(engine).begin() as conn:
        await conn.execute(update(EmailOutbox).where(EmailOutbox.id == message_id).values(**values))


async def _compose(engine: AsyncEngine, vault: Vault, row: _Claimed, sender_address: str) -> EmailMessage | None:
    """The message, or None when its recipient was erased (nothing can or may be sent)."""
    profiles = await customers.profiles_by_ids(engine, vault, [row.customer_key])
    profile = profiles.get(row.customer_key)
    [payload] = await vault.decrypt_many([Sealed(row.subject_id, TABLE, "payload", row.payload_sealed)])
    if profile is None or profile.email is ERASED or payload is ERASED or not isinstance(payload, str):
        return None
    rendered = render(row.template, row.language, json.loads(payload))
    message = EmailMessage()
    message["From"] = sender_address
    message["To"] = str(profile.email)
    message["Subject"] = rendered.subject
    message["Message-ID"] = make_msgid(domain=sender_address.rpartition("@")[2] or None)
    message["Content-Language"] = row.language
    message.set_content(rendered.body)
    return message


async def deliver_due(
    engine: AsyncEngine, vault: Vault, sender: MailSender, clock: Clock, *, sender_address: str, limit: int = 100
) -> DeliveryReport:
    """Send up to `limit` due messages once each; failures wait for a later run."""
    sent = retrying = failed = 0
    for row in await _claim(engine, clock.now(), limit):
        message = await _compose(engine, vault, row, sender_address)
        if message is None:
            await _finish(engine, row.id, status=FAILED, last_error="recipient erased or unknown")
            failed += 1
            continue
        try:
            await sender.send(message)
        except Exception as error:  # any failure to hand over is retried; only its type is kept
            reason = type(error).__name__
            logger.warning("email %s not sent (attempt %s): %s", row.id, row.attempts, reason)
            if row.attempts >= MAX_ATTEMPTS:
                await _finish(engine, row.id, status=FAILED, last_error=reason)
                failed += 1
            else:
                await _finish(
                    engine, row.id, next_attempt_at=clock.now() + _retry_pause(row.attempts), last_error=reason
                )
                retrying += 1
            continue
        await _finish(engine, row.id, status=SENT, sent_at=clock.now(), last_error=None)
        sent += 1
    return DeliveryReport(sent=sent, retrying=retrying, failed=failed)
