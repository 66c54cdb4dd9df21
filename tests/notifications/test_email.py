"""Email for real: the outbox is delivered to a real SMTP server (aiosmtpd, in-process) and read back."""

from __future__ import annotations

import email
import email.policy
import logging
import re
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select

from commerce.notifications.models import EmailOutbox
from commerce.notifications.sender import SmtpSender
from commerce.notifications.service import deliver_due
from gateway.mail import deliver_once
from tests.customers.helpers import register, sign_in
from tests.live_server import free_port

REQUEST = "mutation($e: String!) { customerPasswordResetRequest(email: $e) { userErrors { code field message } } }"
RESET = """mutation($t: String!, $p: String!) { customerPasswordReset(token: $t, password: $p) {
    customer { id email } accessToken { token } userErrors { code field } } }"""


class Inbox:
    """An aiosmtpd handler keeping every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Any:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def settings(settings, smtp):
    return settings.replace(smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_from="Shop <shop@omnigate.example>")


def _token_in(message: EmailMessage) -> str:
    match = re.search(r"token=([A-Za-z0-9_\-]+)", message.get_content())
    assert match, message.get_content()
    return match.group(1)


async def _outbox_size(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(EmailOutbox))).scalar_one())


async def test_a_reset_link_works_once_and_signs_out_every_session(gql, runtime, smtp):
    inbox, _ = smtp
    customer = await register(gql, "forgetful@example.com")
    session = await sign_in(gql, "forgetful@example.com")
    answer = await gql.data(REQUEST, {"e": "Forgetful@Example.com "})
    assert answer["customerPasswordResetRequest"] == {"userErrors": []}
    report = await deliver_once(runtime.services)
    assert report.sent == 1 and len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "forgetful@example.com" and message["From"] == "Shop <shop@omnigate.example>"
    assert message["Subject"] == "Ustaw nowe hasło"  # Polish unless the customer asks otherwise

    token = _token_in(message)
    reset = (await gql.data(RESET, {"t": token, "p": "remembered at last"}))["customerPasswordReset"]
    assert reset["userErrors"] == [] and reset["customer"]["id"] == customer["id"]
    assert (await gql.post("{ me { id } }", headers=session)).status_code == 401  # every old session ends
    assert await sign_in(gql, "forgetful@example.com", "remembered at last")

    again = (await gql.data(RESET, {"t": token, "p": "someone else's idea"}))["customerPasswordReset"]
    assert again == {
        "customer": None,
        "accessToken": None,
        "userErrors": [{"code": "RESET_TOKEN_INVALID", "field": ["token"]}],
    }
    assert await sign_in(gql, "forgetful@example.com", "remembered at last")


async def test_a_reset_link_expires(gql, runtime, smtp, clock):
    inbox, _ = smtp
    await register(gql, "slow@example.com")
    await gql.data(REQUEST, {"e": "slow@example.com"}, headers={"Accept-Language": "en-GB,en;q=0.9"})
    await deliver_once(runtime.services)
    assert inbox.messages[0]["Subject"] == "Set a new password"
    clock.advance(timedelta(seconds=runtime.settings.password_reset_ttl_seconds + 1))
    late = await gql.data(RESET, {"t": _token_in(inbox.messages[0]), "p": "too late for this"})
    assert late["customerPasswordReset"]["userErrors"][0]["code"] == "RESET_TOKEN_INVALID"
    assert await sign_in(gql, "slow@example.com")  # the old password still works


async def test_an_unknown_email_gets_the_same_answer_and_no_message(gql, runtime, engine, smtp):
    inbox, _ = smtp
    await register(gql, "known@example.com")
    known = await gql.execute(REQUEST, {"e": "known@example.com"})
    unknown = await gql.execute(REQUEST, {"e": "nobody-here@example.com"})
    assert known == unknown == {"data": {"customerPasswordResetRequest": {"userErrors": []}}}
    assert await _outbox_size(engine) == 1
    await deliver_once(runtime.services)
    assert [m["To"] for m in inbox.messages] == ["known@example.com"]


async def test_a_failed_send_is_retried_later_and_the_address_is_never_logged(
    gql, runtime, engine, smtp, clock, caplog
):
    inbox, _ = smtp
    await register(gql, "patient@example.com")
    await gql.data(REQUEST, {"e": "patient@example.com"})
    services = runtime.services
    unreachable = SmtpSender(services.settings.replace(smtp_port=free_port(), smtp_timeout_seconds=2))
    with caplog.at_level(logging.DEBUG):
        first = await deliver_due(
            services.engine, services.vault, unreachable, clock, sender_address="shop@omnigate.example"
        )
    assert (first.sent, first.retrying) == (0, 1)
    assert "patient@example.com" not in caplog.text
    assert (await deliver_once(services)).sent == 0  # not due yet: it waits before the next attempt
    clock.advance(timedelta(minutes=1))
    assert (await deliver_once(services)).sent == 1
    assert [m["To"] for m in inbox.messages] == ["patient@example.com"]
    async with engine.connect() as conn:
        status, attempts = (await conn.execute(select(EmailOutbox.status, EmailOutbox.attempts))).one()
    assert (status, attempts) == ("sent", 2)


async def test_the_outbox_holds_no_address_or_link_in_clear(gql, engine):
    await register(gql, "private@example.com")
    await gql.data(REQUEST, {"e": "private@example.com"})
    async with engine.connect() as conn:
        row = (await conn.execute(select(EmailOutbox.__table__))).one()
    stored = repr(tuple(row)).encode()
    assert b"private@example.com" not in stored and b"token=" not in stored


async def test_order_notifications_are_queued_for_the_customer_in_their_language(gql, runtime, smtp):
    from commerce.notifications.service import notify_order_confirmed, notify_ready_for_pickup
    from core.db import writer

    inbox, _ = smtp
    customer = await register(gql, "buyer@example.com")
    from core.ids import from_global_id

    key = int(from_global_id(customer["id"], "Customer")[1])
    services = runtime.services
    async with writer(services.engine).begin() as conn:
        await notify_order_confirmed(
            conn, services.vault, services.clock, customer_key=key, order_number="W-1001", total="129,99 zł"
        )
        await notify_ready_for_pickup(
            conn,
            services.vault,
            services.clock,
            customer_key=key,
            order_number="W-1001",
            store="Warszawa Złote Tarasy",
            collect_by="2026-12-03",
            language="en",
        )
    assert (await deliver_once(services)).sent == 2
    subjects = sorted(m["Subject"] for m in inbox.messages)
    assert subjects == ["Order W-1001 is ready for pickup", "Potwierdzenie zamówienia W-1001"]
