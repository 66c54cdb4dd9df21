"""The audit log is a hash chain: any changed byte is found, and concurrent writers keep it whole."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import FrozenClock
from core.db import create_engine, is_sqlite
from core.settings import Settings
from gateway.__main__ import main
from vault.audit import AuditEntry, AuditLog, verify_chain

ROOT = Path(__file__).resolve().parents[2]


def _entry(subject: str, actor: str = "agent-1") -> AuditEntry:
    return AuditEntry(
        actor=actor,
        role="agent",
        channel="call-center",
        operation="query customer",
        fields="Customer.email Customer.id",
        subject=subject,
        outcome="allowed",
        trace_id="a" * 32,
    )


async def _five_records(engine: AsyncEngine, clock: FrozenClock) -> None:
    log = AuditLog(engine, clock)
    assert await log.append([_entry("1001"), _entry("1002")]) == [1, 2]
    assert await log.append([_entry("1002"), _entry("1003"), _entry("1004")]) == [3, 4, 5]


async def _sql(engine: AsyncEngine, statement: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(statement))


async def _tamper(engine: AsyncEngine, statement: str) -> None:
    """As someone with the rights to drop the append-only trigger would."""
    if is_sqlite(str(engine.url)):
        await _sql(engine, "DROP TRIGGER audit_log_no_update")
        await _sql(engine, "DROP TRIGGER audit_log_no_delete")
    else:
        await _sql(engine, "DROP TRIGGER audit_log_append_only ON audit_log")
    await _sql(engine, statement)


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET customer_key = '1003' WHERE seq = 3", "DELETE FROM audit_log WHERE seq = 5"]
)
async def test_the_database_refuses_to_change_or_delete_an_audit_record(
    engine: AsyncEngine, clock: FrozenClock, statement: str
) -> None:
    await _five_records(engine, clock)
    with pytest.raises(DBAPIError, match="append-only"):
        await _sql(engine, statement)
    assert (await verify_chain(engine)).checked == 5


async def test_an_untouched_chain_verifies(engine: AsyncEngine, clock: FrozenClock) -> None:
    await _five_records(engine, clock)
    report = await verify_chain(engine)
    assert report.ok and report.checked == 5


async def test_an_empty_log_verifies(engine: AsyncEngine) -> None:
    assert (await verify_chain(engine)).ok


async def test_one_changed_byte_is_reported_at_exactly_that_record(
    engine: AsyncEngine,
    clock: FrozenClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _five_records(engine, clock)
    await _tamper(engine, "UPDATE audit_log SET customer_key = '1003' WHERE seq = 3")  # was '1002': one byte

    report = await verify_chain(engine)
    assert (report.broken_seq, report.checked) == (3, 2)
    assert "content" in report.reason

    monkeypatch.setenv("OMNIGATE_DATABASE_URL", settings.database_url)
    assert await asyncio.to_thread(main, ["audit-verify"]) == 1  # main() runs its own event loop
    assert "broken at record 3" in capsys.readouterr().out


async def test_the_audit_verify_command_exits_non_zero_on_a_broken_chain(
    engine: AsyncEngine, clock: FrozenClock, settings: Settings
) -> None:
    await _five_records(engine, clock)
    env = {**os.environ, "OMNIGATE_DATABASE_URL": settings.database_url}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", "audit-verify"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    intact = await asyncio.to_thread(run)
    assert intact.returncode == 0 and "intact: 5 records" in intact.stdout
    await _tamper(engine, "UPDATE audit_log SET actor = 'agent-2' WHERE seq = 4")
    broken = await asyncio.to_thread(run)
    assert broken.returncode == 1
    assert "broken at record 4" in broken.stdout


@pytest.mark.parametrize(
    ("statement", "seq", "reason"),
    [
        ("DELETE FROM audit_log WHERE seq = 2", 2, "missing"),
        ("UPDATE audit_log SET hash = prev_hash WHERE seq = 2", 2, "content"),
        ("UPDATE audit_log SET prev_hash = hash WHERE seq = 4", 4, "link"),
        ("DELETE FROM audit_log WHERE seq = 1", 1, "missing"),
    ],
    ids=["a record removed", "a hash rewritten", "a link rewritten", "the first record removed"],
)
async def test_removed_or_relinked_records_are_found(
    engine: AsyncEngine, clock: FrozenClock, statement: str, seq: int, reason: str
) -> None:
    await _five_records(engine, clock)
    await _tamper(engine, statement)
    report = await verify_chain(engine)
    assert report.broken_seq == seq and reason in report.reason


async def test_a_record_rewritten_with_a_recomputed_hash_still_breaks_the_next_link(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    from vault.audit import record_hash

    await _five_records(engine, clock)
    await _tamper(engine, "SELECT 1")
    async with engine.begin() as conn:
        row = (await conn.execute(text("SELECT * FROM audit_log WHERE seq = 2"))).mappings().one()
        forged = _entry("9999")
        new_hash = record_hash(2, clock.now(), forged, row["prev_hash"])
        await conn.execute(text("UPDATE audit_log SET customer_key = '9999', hash = :h WHERE seq = 2"), {"h": new_hash})
    report = await verify_chain(engine)
    assert report.broken_seq == 3 and "link" in report.reason


@pytest.mark.parametrize("queue_first", [True, False], ids=["queued by the lock", "raced on the unique sequence"])
async def test_concurrent_writers_in_several_processes_keep_one_unbroken_chain(
    settings: Settings, clock: FrozenClock, queue_first: bool
) -> None:
    # One engine per "gateway process": each has its own connections, so only the database serializes them.
    engines = [create_engine(settings.database_url, pool_size=2) for _ in range(4)]
    try:
        logs = [AuditLog(e, clock) for e in engines]
        for log in logs:
            log._postgres = log._postgres and queue_first  # without the advisory lock, the primary key decides

        async def writer(n: int) -> list[int]:
            seqs: list[int] = []
            for i in range(8):
                seqs += await logs[n].append([_entry(f"{n}-{i}-a", f"agent-{n}"), _entry(f"{n}-{i}-b", f"agent-{n}")])
            return seqs

        results = await asyncio.gather(*(writer(n) for n in range(4)))
        assigned = sorted(seq for seqs in results for seq in seqs)
        assert assigned == list(range(1, 65))
        for seqs in results:  # a request's records stay together, in order
            assert all(seqs[i + 1] == seqs[i] + 1 for i in range(0, len(seqs), 2))
        report = await verify_chain(engines[0])
        assert report.ok and report.checked == 64
    finally:
        for e in engines:
            await e.dispose()


_WRITER = """
import asyncio, sys
from core.clock import SystemClock
from core.db import create_engine
from vault.audit import AuditEntry, AuditLog

async def main(url, name):
    engine = create_engine(url)
    log = AuditLog(engine, SystemClock())
    for i in range(10):
        await log.append([AuditEntry(name, "agent", "web", "query customer", "Customer.id", f"{name}-{i}-{j}",
                                     "allowed", "0" * 32) for j in range(2)])
    await engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_gateway_processes_appending_at_once_keep_one_unbroken_chain(
    engine: AsyncEngine, settings: Settings
) -> None:
    def run_all() -> list[int]:
        processes = [
            subprocess.Popen([sys.executable, "-c", _WRITER, settings.database_url, f"gw-{n}"], cwd=ROOT)
            for n in range(3)
        ]
        return [p.wait(timeout=120) for p in processes]

    assert await asyncio.to_thread(run_all) == [0, 0, 0]
    report = await verify_chain(engine)
    assert report.ok and report.checked == 60
