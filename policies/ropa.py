"""The record of processing activities (GDPR Art. 30), built from the policy files alone:
`retention.toml` (categories, purposes, bases, recipients, periods) and `privacy.toml`
(the purposes people consent to). `python -m gateway ropa` prints it as Markdown or JSON.
"""

from __future__ import annotations

from typing import Any

from policies.privacy import PrivacyPolicy
from policies.retention import RetentionPolicy

__all__ = ["SECURITY_MEASURES", "as_markdown", "record_of_processing"]

SECURITY_MEASURES = (
    "Personal data encrypted at rest per person (AES-256-GCM data key per data subject, wrapped by a "
    "rotating key-encryption key); erasure destroys the person's key (crypto-shredding).",
    "Look-ups by email and phone through keyed HMAC blind indexes; no plaintext is searched or logged.",
    "Role-based access declared in policies/access.toml; every staff access to a customer's data is "
    "written to a hash-chained, append-only audit log.",
    "Backups replay the erasure ledger on restore; retiring a KEK makes backups wrapped by it unreadable.",
)


def record_of_processing(retention: RetentionPolicy, privacy: PrivacyPolicy) -> dict[str, Any]:
    return {
        "controller": dict(retention.controller),
        "policyVersion": retention.version,
        "privacyNoticeVersion": privacy.version,
        "dataSubjects": ["customers (registered and guests)"],
        "activities": [
            {
                "category": c.name,
                "description": c.description,
                "purpose": c.purpose,
                "legalBasis": c.legal_basis,
                "recipients": list(c.recipients),
                "retention": c.retention,
                "period": str(c.period) if c.period else None,
                "onErasure": c.on_erasure,
                "retainedBecause": c.reason or None,
                "retainedBasis": c.retained_basis or None,
            }
            for c in retention.categories.values()
        ],
        "consentPurposes": [{"code": p.code, "description": p.description} for p in privacy.purposes],
        "transfersOutsideEEA": "none",
        "securityMeasures": list(SECURITY_MEASURES),
    }


def _cell(value: Any) -> str:
    text = ", ".join(value) if isinstance(value, list) else "" if value is None else str(value)
    return text.replace("|", "\\|") or "-"


def as_markdown(record: dict[str, Any]) -> str:
    controller = record["controller"]
    lines = [
        "# Record of processing activities (GDPR Art. 30)",
        "",
        f"Controller: {controller.get('name', '-')}; contact: {controller.get('contact', '-')}.",
        f"Retention policy version {record['policyVersion']}; privacy notice {record['privacyNoticeVersion']}.",
        f"Data subjects: {', '.join(record['dataSubjects'])}.",
        f"Transfers outside the EEA: {record['transfersOutsideEEA']}.",
        "",
        "| Category | Purpose | Legal basis | Recipients | Retention | On erasure |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for a in record["activities"]:
        erasure = a["onErasure"] + (f" ({a['retainedBasis']})" if a["retainedBasis"] else "")
        lines.append(
            f"| {_cell(a['category'])}: {_cell(a['description'])} | {_cell(a['purpose'])} | {_cell(a['legalBasis'])} "
            f"| {_cell(a['recipients'])} | {_cell(a['retention'])} | {_cell(erasure)} |"
        )
    lines += ["", "## Purposes people consent to (GDPR Art. 6(1)(a))", ""]
    lines += [f"- **{p['code']}**: {p['description']}" for p in record["consentPurposes"]]
    lines += ["", "## Technical and organisational security measures (Art. 32)", ""]
    lines += [f"- {m}" for m in record["securityMeasures"]]
    return "\n".join(lines) + "\n"
