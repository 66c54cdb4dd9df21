"""Shared steps for data-subject request tests: the DPO's operations and a scan of the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, LargeBinary, String, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import Base

REQUEST_FIELDS = """request { id kind status customerId receivedAt dueAt completedAt extensionReason export
    retained { category reason legalBasis until } } userErrors { code field message }"""
EXPORT = f"mutation($id: ID!) {{ dataSubjectExport(customerId: $id) {{ {REQUEST_FIELDS} }} }}"
ERASE = f"mutation($id: ID!) {{ dataSubjectErase(customerId: $id) {{ {REQUEST_FIELDS} }} }}"
EXTEND = f"""mutation($id: ID!, $reason: String!) {{ dataSubjectRequestExtend(requestId: $id, reason: $reason) {{
    {REQUEST_FIELDS} }} }}"""
LIST = (
    "query($overdue: Boolean) { dataSubjectRequests(first: 50, overdue: $overdue) { id kind status customerId dueAt } }"
)


async def dpo_export(gql: Any, dpo: dict[str, str], customer_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql.data(EXPORT, {"id": customer_id}, headers=dpo))["dataSubjectExport"]
    return payload


async def dpo_erase(gql: Any, dpo: dict[str, str], customer_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql.data(ERASE, {"id": customer_id}, headers=dpo))["dataSubjectErase"]
    return payload


def searchable(needles: list[str]) -> list[str]:
    """The needles, lower-cased for a search in any case.

    A needle shorter than five characters is refused: random ids, hashes and ciphertexts contain
    such strings by chance ("ewa" once turned up inside a cart id), and the test would flake.
    """
    short = [n for n in needles if len(n) < 5]
    if short:
        raise ValueError(f"needles too short to be told from chance: {short}")
    return [n.lower() for n in needles]


def found_in(text: str, needles: list[str]) -> list[str]:
    """The needles `text` contains, in any case."""
    lowered = text.lower()
    return [n for n, wanted in zip(needles, searchable(needles), strict=True) if wanted in lowered]


async def find_in_database(engine: AsyncEngine, needles: list[str]) -> list[str]:
    """Every (table.column, needle) where a text, JSON or blob value contains a needle, any case."""
    wanted = searchable(needles)
    found = []
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | LargeBinary | JSON)]
            if not columns:
                continue
            for row in await conn.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    found += [f"{table.name}.{column.name}: {n}" for n in wanted if n in text.lower()]
    return found
