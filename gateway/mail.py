"""Delivering the email outbox: once (`python -m gateway mail send`) or every few seconds in `serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from commerce.notifications.sender import SmtpSender
from commerce.notifications.service import DeliveryReport, deliver_due
from schema.context import Services

__all__ = ["background_mail", "deliver_once", "mail_loop"]

logger = logging.getLogger("omnigate.mail")


async def deliver_once(services: Services, limit: int = 100) -> DeliveryReport:
    settings = services.settings
    return await deliver_due(
        services.engine,
        services.vault,
        SmtpSender(settings),
        services.clock,
        sender_address=settings.smtp_from,
        limit=limit,
    )


async def mail_loop(services: Services) -> None:
    """Send what is due every `mail_send_interval_seconds`, until cancelled; a failed round is retried."""
    interval = services.settings.mail_send_interval_seconds
    while True:
        try:
            report = await deliver_once(services)
            if report.sent or report.retrying or report.failed:
                logger.info("email: %s sent, %s to retry, %s failed", report.sent, report.retrying, report.failed)
        except Exception as error:  # the database may be briefly away: try again next round
            logger.warning("email round failed: %s", type(error).__name__)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def background_mail(services: Services) -> AsyncIterator[None]:
    """Run `mail_loop` while the app serves, when SMTP is configured and an interval is set."""
    settings = services.settings
    task = None
    if settings.smtp_host and settings.mail_send_interval_seconds > 0:
        task = asyncio.create_task(mail_loop(services))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
