"""Webhook endpoints (from a TOML or JSON file) and the signature every delivery carries.

The file lists endpoints; each has a stable `name` (its delivery state in the database is kept
under it, so renaming one starts it afresh), a `url`, a `secret` and the `events` it wants:

    [[endpoints]]
    name = "erp"
    url = "https://erp.example.com/omnigate/events"
    secret = "a long random string shared with the receiver"
    events = ["order.*", "stock.moved"]      # fnmatch patterns; omitted: every event

(JSON: `{"endpoints": [{"name": ..., "url": ..., "secret": ..., "events": [...]}]}`.)

Signature: the header `X-Omnigate-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is
HMAC-SHA256 keyed with the endpoint's secret over `f"{t}.".encode() + <the raw request body>`.
A receiver recomputes it over the bytes it received, compares in constant time, refuses a `t`
more than five minutes away from its clock (a replayed request), and drops an
`X-Omnigate-Event-Id` it has already processed (delivery is at least once).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE_SECONDS",
    "Endpoint",
    "WebhookConfigError",
    "load_endpoints",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Omnigate-Signature"
EVENT_ID_HEADER = "X-Omnigate-Event-Id"
EVENT_TYPE_HEADER = "X-Omnigate-Event-Type"
SIGNATURE_TOLERANCE_SECONDS = 300
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class WebhookConfigError(ValueError):
    """The webhooks file is missing, unreadable or names an endpoint wrongly."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    url: str
    secret: str = ""
    events: tuple[str, ...] = ("*",)

    def wants(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in self.events)

    def __repr__(self) -> str:  # never the secret
        return f"Endpoint(name={self.name!r}, url={self.url!r}, events={self.events!r})"


def load_endpoints(path: str | Path) -> list[Endpoint]:
    """The endpoints of a `.toml` or `.json` file, checked: a mistake is named, not skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise WebhookConfigError(f"{path}: {exc}") from None
    entries = raw.get("endpoints") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise WebhookConfigError(f"{path}: expected a list of `endpoints`")
    endpoints = [_endpoint(path, i, entry) for i, entry in enumerate(entries)]
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise WebhookConfigError(f"{path}: endpoint names must be unique")
    return endpoints


def _endpoint(path: Path, index: int, entry: object) -> Endpoint:
    where = f"{path}: endpoints[{index}]"
    if not isinstance(entry, dict):
        raise WebhookConfigError(f"{where} is not a table")
    name, url, secret = entry.get("name"), entry.get("url"), entry.get("secret")
    events = entry.get("events", ["*"])
    if not isinstance(name, str) or not _NAME.match(name):
        raise WebhookConfigError(f"{where}: `name` must be 1-64 of a-z 0-9 _ . - (it keys the delivery state)")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise WebhookConfigError(f"{where}: `url` must be an http(s) URL")
    if not isinstance(secret, str) or len(secret) < 16:
        raise WebhookConfigError(f"{where}: `secret` must be a string of at least 16 characters")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) and e for e in events):
        raise WebhookConfigError(f"{where}: `events` must be a non-empty list of event type patterns")
    unknown = set(entry) - {"name", "url", "secret", "events"}
    if unknown:
        raise WebhookConfigError(f"{where}: unknown keys {sorted(unknown)}")
    return Endpoint(name=name, url=url, secret=secret, events=tuple(events))


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Omnigate-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, now: float, tolerance: int = SIGNATURE_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: the signature matches `body` and was made within `tolerance` of `now`."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    signatures: Sequence[str] = [v for k, v in (p.split("=", 1) for p in header.split(",") if "=" in p) if k == "v1"]
    expected = _digest(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
