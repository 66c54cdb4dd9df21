"""Where an endpoint's events go: a signed webhook POST, or a JSON line on stdout.

Both receive the same JSON body (`OutboundEvent.body`); `deliver` answers None when the event
arrived, else a short reason (a status code or an exception's name, never a URL or a body).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TextIO

import httpx

from commerce.events.webhooks import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, Endpoint, sign
from core.clock import Clock

__all__ = ["OutboundEvent", "Sink", "StdoutSink", "WebhookSink"]


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    id: int
    type: str
    aggregate_type: str
    aggregate_id: str
    occurred_at: datetime
    data: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """The JSON every endpoint receives (and `--stdout` prints, one per line)."""
        return {
            "id": self.id,
            "type": self.type,
            "aggregate": {"type": self.aggregate_type, "id": self.aggregate_id},
            "occurredAt": self.occurred_at.isoformat(),
            "data": self.data,
        }

    def json_bytes(self) -> bytes:
        return json.dumps(self.body(), separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


class Sink(Protocol):
    """Where one endpoint's events go. `deliver` returns None on success, else a short reason."""

    @property
    def name(self) -> str: ...

    @property
    def event_patterns(self) -> Sequence[str]: ...

    async def deliver(self, event: OutboundEvent) -> str | None: ...


class WebhookSink:
    """POSTs each event as signed JSON; any 2xx is a delivery, anything else a failure to retry."""

    def __init__(self, endpoint: Endpoint, client: httpx.AsyncClient, clock: Clock) -> None:
        self._endpoint = endpoint
        self._client = client
        self._clock = clock

    @property
    def name(self) -> str:
        return self._endpoint.name

    @property
    def event_patterns(self) -> Sequence[str]:
        return self._endpoint.events

    async def deliver(self, event: OutboundEvent) -> str | None:
        body = event.json_bytes()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "omnigate-relay",
            EVENT_ID_HEADER: str(event.id),
            EVENT_TYPE_HEADER: event.type,
            SIGNATURE_HEADER: sign(self._endpoint.secret, int(self._clock.now().timestamp()), body),
        }
        try:
            response = await self._client.post(self._endpoint.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__  # never the URL or a body: they may carry secrets
        return None if response.is_success else f"HTTP {response.status_code}"


class StdoutSink:
    """Prints each event as one JSON line: for piping into another tool, or watching."""

    def __init__(self, stream: TextIO, name: str = "stdout", events: Sequence[str] = ("*",)) -> None:
        self._stream = stream
        self._name = name
        self._events = tuple(events)

    @property
    def name(self) -> str:
        return self._name

    @property
    def event_patterns(self) -> Sequence[str]:
        return self._events

    async def deliver(self, event: OutboundEvent) -> str | None:
        self._stream.write(event.json_bytes().decode() + "\n")
        self._stream.flush()
        return None
