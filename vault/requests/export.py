"""The export document (GDPR Art. 15 and 20): one versioned JSON document, validated by
`export.schema.json` beside this module, assembled from every registered source.

It is generated when read and never stored: the request row keeps no copy of the data.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from vault.requests.sources import DataSubject, SourceContext, SourceRegistry

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "SCHEMA_PATH", "build_export", "export_schema"]

EXPORT_FORMAT = "omnigate/data-subject-export"
EXPORT_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("export.schema.json")


@cache
def export_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def _purposes(ctx: SourceContext) -> list[dict[str, Any]]:
    consent = [
        {"code": p.code, "description": p.description, "basis": "consent (GDPR Art. 6(1)(a))"}
        for p in ctx.vault.policy.purposes
    ]
    processing = [
        {"code": c.name, "description": c.purpose, "basis": c.legal_basis} for c in ctx.retention.categories.values()
    ]
    return consent + processing


def _retention(ctx: SourceContext) -> list[dict[str, Any]]:
    return [
        {
            "category": c.name,
            "description": c.description,
            "retention": c.retention,
            "onErasure": c.on_erasure,
            "period": str(c.period) if c.period else None,
            "recipients": list(c.recipients),
        }
        for c in ctx.retention.categories.values()
    ]


async def build_export(ctx: SourceContext, registry: SourceRegistry, subject: DataSubject) -> dict[str, Any]:
    """Everything every registered source holds about `subject`, with the purposes and periods."""
    data = {source.name: await source.export(ctx, subject) for source in registry.sources}
    keys = data.get("keys") or {}
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generatedAt": ctx.clock.now().isoformat(),
        "controller": dict(ctx.retention.controller),
        "subject": {
            "customerKey": subject.customer_key,
            "erased": bool(keys.get("erasedAt")),
            "erasedAt": keys.get("erasedAt"),
        },
        "privacyNoticeVersion": ctx.vault.policy.version,
        "purposes": _purposes(ctx),
        "retention": _retention(ctx),
        "data": data,
    }
