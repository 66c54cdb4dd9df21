"""Sending one message over SMTP (`aiosmtplib`), configured by the `OMNIGATE_SMTP_*` settings."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from core.settings import Settings

__all__ = ["MailSender", "SmtpSender"]


class MailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpSender:
    """One connection per message: the outbox sends few, and a broken connection costs one message."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def from_address(self) -> str:
        return self._settings.smtp_from

    async def send(self, message: EmailMessage) -> None:
        s = self._settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            use_tls=s.smtp_tls,
            start_tls=True if s.smtp_starttls else None,  # else: STARTTLS when the server offers it
            timeout=s.smtp_timeout_seconds,
        )
