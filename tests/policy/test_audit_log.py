"""The audit log is a keyed hash chain: any changed byte, rewrite or cut tail is found; concurrent writers keep it whole."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.clock import FrozenClock
from core.db import create_engine, is_sqlite
from core.migrate import alembic_config
from core.settings import Settings
from gateway.__main__ import main
from tests.conftest import TEST_VAULT_KEYS
from vault.audit import AuditEntry, AuditLog, AuditPruneRefused, plain_hash, record_hash, verify_chain
from vault.audit_checkpoints import CheckpointError, CheckpointWriter, latest_checkpoint, signature
from vault.audit_models import AuditCut, AuditRecord

ROOT = Path(__file__).resolve().parents[2]
KEY = base64.b64decode(TEST_VAULT_KEYS["audit_key"])
AUDIT = AuditRecord.__table__


def _command_env(settings: Settings) -> dict[str, str]:
    """What `python -m gateway audit-verify` needs: the database, the keys and the checkpoint file."""
    return {
        "OMNIGATE_DATABASE_URL": settings.database_url,
        "OMNIGATE_KEK": settings.kek,
        "OMNIGATE_AUDIT_KEY": settings.audit_key,
        "OMNIGATE_AUDIT_CHECKPOINT_FILE": settings.audit_checkpoint_file,
    }


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
    log = AuditLog(engine, clock, KEY)
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
    assert (await verify_chain(engine, KEY)).checked == 5


async def test_an_untouched_chain_verifies(engine: AsyncEngine, clock: FrozenClock) -> None:
    await _five_records(engine, clock)
    report = await verify_chain(engine, KEY)
    assert report.ok and report.checked == 5


async def test_an_empty_log_verifies(engine: AsyncEngine) -> None:
    assert (await verify_chain(engine, KEY)).ok


async def test_one_changed_byte_is_reported_at_exactly_that_record(
    engine: AsyncEngine,
    clock: FrozenClock,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _five_records(engine, clock)
    await _tamper(engine, "UPDATE audit_log SET customer_key = '1003' WHERE seq = 3")  # was '1002': one byte

    report = await verify_chain(engine, KEY)
    assert (report.broken_seq, report.checked) == (3, 2)
    assert "content" in report.reason

    for name, value in _command_env(settings).items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(main, ["audit-verify"]) == 1  # main() runs its own event loop
    assert "broken at record 3" in capsys.readouterr().out


async def test_the_audit_verify_command_exits_non_zero_on_a_broken_chain(
    engine: AsyncEngine, clock: FrozenClock, settings: Settings
) -> None:
    await _five_records(engine, clock)
    env = {**os.environ, **_command_env(settings)}

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
    assert intact.returncode == 0 and "intact: 5 records" in intact.stdout, intact.stderr
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
    report = await verify_chain(engine, KEY)
    assert report.broken_seq == seq and reason in report.reason


async def test_a_record_rewritten_with_a_recomputed_hash_still_breaks_the_next_link(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    await _five_records(engine, clock)
    await _tamper(engine, "SELECT 1")
    async with engine.begin() as conn:
        row = (await conn.execute(select(AUDIT).where(AUDIT.c.seq == 2))).mappings().one()
        forged = _entry("9999")
        new_hash = record_hash(KEY, 2, row["recorded_at"], forged, row["prev_hash"])
        await conn.execute(text("UPDATE audit_log SET customer_key = '9999', hash = :h WHERE seq = 2"), {"h": new_hash})
    report = await verify_chain(engine, KEY)
    assert report.broken_seq == 3 and "link" in report.reason


async def _rechain_from(engine: AsyncEngine, seq: int, digest) -> None:
    """Rewrite every record from `seq` on with hashes `digest` computes, each linked to the one before."""
    async with engine.begin() as conn:
        rows = (await conn.execute(select(AUDIT).order_by(AUDIT.c.seq))).all()
        prev = rows[seq - 2].hash if seq > 1 else "0" * 64
        for row in rows[seq - 1 :]:
            subject = "9999" if row.seq == seq else row.subject
            forged = AuditEntry(
                row.actor, row.role, row.channel, row.operation, row.fields, subject, row.outcome, row.trace_id
            )
            new = digest(row.seq, row.recorded_at, forged, prev)
            await conn.execute(
                text("UPDATE audit_log SET customer_key = :s, prev_hash = :p, hash = :h WHERE seq = :q"),
                {"s": subject, "p": prev, "h": new, "q": row.seq},
            )
            prev = new


async def test_a_tail_rewritten_with_recomputed_plain_hashes_is_found_at_the_first_rewritten_record(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    """Whoever can write the database recomputes SHA-256 for every record after the one they change:
    without the audit key the chain still breaks there."""
    await _five_records(engine, clock)
    await _tamper(engine, "SELECT 1")
    await _rechain_from(engine, 3, plain_hash)
    report = await verify_chain(engine, KEY)
    assert (report.broken_seq, report.checked) == (3, 2)
    assert "unkeyed" in report.reason


async def test_a_tail_rewritten_under_another_key_is_found(engine: AsyncEngine, clock: FrozenClock) -> None:
    await _five_records(engine, clock)
    await _tamper(engine, "SELECT 1")
    other = b"k" * 32
    await _rechain_from(engine, 4, lambda *args: record_hash(other, *args))
    assert (await verify_chain(engine, KEY)).broken_seq == 4
    assert (await verify_chain(engine, other)).broken_seq == 1  # nor does the other key verify the head


async def test_a_cut_tail_is_found_against_the_latest_signed_checkpoint(
    engine: AsyncEngine, clock: FrozenClock, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "checkpoints.jsonl"
    writer = CheckpointWriter(engine, KEY, path, 60, clock)
    assert await writer.write_once() is None  # an empty log: nothing to sign
    await _five_records(engine, clock)
    assert (await writer.write_once()).seq == 5
    assert await writer.write_once() is None  # no new record: no new line
    await _tamper(engine, "DELETE FROM audit_log WHERE seq >= 4")

    assert (await verify_chain(engine, KEY)).ok  # what is left holds: only the checkpoint shows the cut
    report = await verify_chain(engine, KEY, latest_checkpoint(path, KEY))
    assert (report.broken_seq, report.checked) == (4, 3)
    assert "tail was cut" in report.reason
    [line] = path.read_text().splitlines()
    assert json.loads(line)["seq"] == 5 and "mac" in json.loads(line)


async def test_the_audit_verify_command_reports_a_cut_tail_and_a_forged_checkpoint(
    engine: AsyncEngine, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for name, value in _command_env(settings).items():
        monkeypatch.setenv(name, value)
    path = Path(settings.audit_checkpoint_file)
    await _five_records(engine, clock)
    await CheckpointWriter(engine, KEY, path, 60, clock).write_once()
    assert await asyncio.to_thread(main, ["audit-verify"]) == 0
    assert "intact: 5 records, up to the signed checkpoint at record 5" in capsys.readouterr().out

    await _tamper(engine, "DELETE FROM audit_log WHERE seq = 5")
    assert await asyncio.to_thread(main, ["audit-verify"]) == 1
    assert "broken at record 5" in capsys.readouterr().out

    forged = json.loads(path.read_text())
    forged["seq"] = 4  # someone who can write the file but lacks the key "moves the checkpoint back"
    path.write_text(path.read_text() + json.dumps(forged) + "\n")
    with pytest.raises(CheckpointError, match="line 2 is not signed"):
        latest_checkpoint(path, KEY)
    assert await asyncio.to_thread(main, ["audit-verify"]) == 1
    assert "not signed by the audit key" in capsys.readouterr().out


async def test_a_log_pruned_to_nothing_verifies_from_its_cut_and_chains_on_from_it(
    engine: AsyncEngine, clock: FrozenClock, tmp_path: Path
) -> None:
    log = AuditLog(engine, clock, KEY)
    await _five_records(engine, clock)
    path = tmp_path / "checkpoints.jsonl"
    await CheckpointWriter(engine, KEY, path, 60, clock).write_once()
    assert await log.prune(clock.now(), dry_run=True) == 5
    assert (await verify_chain(engine, KEY)).checked == 5  # a dry run deletes nothing
    assert await log.prune(clock.now(), dry_run=False) == 5
    report = await verify_chain(engine, KEY, latest_checkpoint(path, KEY))
    assert report.ok and (report.checked, report.pruned_through) == (0, 5)
    assert await log.append([_entry("1005")]) == [6]  # chained onto the cut, not the genesis
    report = await verify_chain(engine, KEY)
    assert report.ok and (report.checked, report.pruned_through) == (1, 5)
    with pytest.raises(DBAPIError, match="append-only"):  # above the cut, deletion is refused as ever
        await _sql(engine, "DELETE FROM audit_log WHERE seq = 6")


async def test_pruning_keeps_every_record_from_the_first_one_still_within_its_period(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    log = AuditLog(engine, clock, KEY)
    await log.append([_entry("1001"), _entry("1002")])
    clock.advance(timedelta(days=1))
    await log.append([_entry("1003")])
    clock.advance(timedelta(days=1))
    await log.append([_entry("1004")])
    assert await log.prune(clock.now() - timedelta(hours=36), dry_run=False) == 2
    report = await verify_chain(engine, KEY)
    assert report.ok and (report.checked, report.pruned_through) == (2, 2)


async def test_records_that_do_not_verify_are_not_pruned_so_the_evidence_stays(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    await _five_records(engine, clock)
    await _tamper(engine, "UPDATE audit_log SET customer_key = '1003' WHERE seq = 2")
    with pytest.raises(AuditPruneRefused, match="record 2"):
        await AuditLog(engine, clock, KEY).prune(clock.now(), dry_run=False)
    report = await verify_chain(engine, KEY)
    assert (report.broken_seq, report.checked, report.pruned_through) == (2, 1, 0)


@pytest.mark.parametrize("mac", ["forged", "a head checkpoint's"])
async def test_a_cut_not_signed_as_a_cut_by_the_audit_key_is_reported_at_its_record(
    engine: AsyncEngine, clock: FrozenClock, mac: str
) -> None:
    """Whoever can write the database may add a cut (the trigger then lets them delete below it),
    but without the key the cut does not verify; a checkpoint's signature does not pass for a cut's."""
    await _five_records(engine, clock)
    async with engine.begin() as conn:
        digest = (await conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == 3))).scalar_one()
        signed = signature(KEY, 3, digest, clock.now()) if mac != "forged" else "0" * 64
        await conn.execute(insert(AuditCut).values(seq=3, hash=digest, cut_at=clock.now(), mac=signed))
    await _sql(engine, "DELETE FROM audit_log WHERE seq <= 3")
    report = await verify_chain(engine, KEY)
    assert (report.broken_seq, report.checked) == (3, 0) and "not signed" in report.reason
    with pytest.raises(AuditPruneRefused):
        await AuditLog(engine, clock, KEY).prune(clock.now(), dry_run=False)


async def test_a_record_deleted_just_after_the_cut_is_found(engine: AsyncEngine, clock: FrozenClock) -> None:
    log = AuditLog(engine, clock, KEY)
    await log.append([_entry("1001"), _entry("1002")])
    clock.advance(timedelta(days=1))
    await log.append([_entry("1003"), _entry("1004")])
    assert await log.prune(clock.now() - timedelta(hours=1), dry_run=False) == 2
    await _tamper(engine, "DELETE FROM audit_log WHERE seq = 3")
    report = await verify_chain(engine, KEY)
    assert report.broken_seq == 3 and "missing" in report.reason


@pytest.mark.parametrize("seq", [0, 2], ids=["before the first record", "below the retention cut"])
async def test_a_record_inserted_before_the_start_of_the_chain_is_reported_and_not_pruned_around(
    engine: AsyncEngine, clock: FrozenClock, seq: int
) -> None:
    """The trigger lets anyone insert, and a record numbered at or below where the chain starts is
    never walked: unreported, it would reach the person's export and the DPO's view as an access,
    and (dated now) would stop the retention job pruning anything, silently."""
    log = AuditLog(engine, clock, KEY)
    await log.append([_entry("1001"), _entry("1002")])
    clock.advance(timedelta(days=1))
    await log.append([_entry("1003")])
    assert await log.prune(clock.now() - timedelta(hours=1), dry_run=False) == 2
    forged = _entry("1001", actor="nobody-did-this")
    async with engine.begin() as conn:
        values = {f: getattr(forged, f) for f in ("actor", "role", "channel", "operation", "fields", "outcome")}
        await conn.execute(
            insert(AuditRecord).values(
                seq=seq,
                recorded_at=clock.now(),
                subject="1001",
                trace_id="b" * 32,
                prev_hash="0" * 64,
                hash="f" * 64,
                **values,
            )
        )
    report = await verify_chain(engine, KEY)
    assert not report.ok and report.broken_seq == seq, report
    clock.advance(timedelta(days=2))
    with pytest.raises(AuditPruneRefused, match=f"record {seq}"):
        await log.prune(clock.now() - timedelta(hours=1), dry_run=False)


@pytest.mark.parametrize("queue_first", [True, False], ids=["queued by the lock", "raced on the unique sequence"])
async def test_concurrent_writers_in_several_processes_keep_one_unbroken_chain(
    settings: Settings, clock: FrozenClock, queue_first: bool
) -> None:
    # One engine per "gateway process": each has its own connections, so only the database serializes them.
    engines = [create_engine(settings.database_url, pool_size=2) for _ in range(4)]
    try:
        logs = [AuditLog(e, clock, KEY) for e in engines]
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
        report = await verify_chain(engines[0], KEY)
        assert report.ok and report.checked == 64
    finally:
        for e in engines:
            await e.dispose()


_WRITER = """
import asyncio, sys
from core.clock import SystemClock
from core.db import create_engine
from vault.audit import AuditEntry, AuditLog

async def main(url, name, key):
    engine = create_engine(url)
    log = AuditLog(engine, SystemClock(), bytes.fromhex(key))
    for i in range(10):
        await log.append([AuditEntry(name, "agent", "web", "query customer", "Customer.id", f"{name}-{i}-{j}",
                                     "allowed", "0" * 32) for j in range(2)])
    await engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"""


async def test_gateway_processes_appending_at_once_keep_one_unbroken_chain(
    engine: AsyncEngine, settings: Settings
) -> None:
    def run_all() -> list[int]:
        processes = [
            subprocess.Popen([sys.executable, "-c", _WRITER, settings.database_url, f"gw-{n}", KEY.hex()], cwd=ROOT)
            for n in range(3)
        ]
        return [p.wait(timeout=120) for p in processes]

    assert await asyncio.to_thread(run_all) == [0, 0, 0]
    report = await verify_chain(engine, KEY)
    assert report.ok and report.checked == 60


async def test_the_gateway_signs_the_head_outside_the_database_while_it_runs(
    settings: Settings, clock: FrozenClock, token_for
) -> None:
    """A checkpoint every interval while the log grows, and a last one at shutdown."""
    from gateway.runtime import build_runtime

    path = Path(settings.audit_checkpoint_file)
    runtime = build_runtime(settings.replace(audit_checkpoint_interval_seconds=1), clock)
    await runtime.start()
    try:
        await runtime.services.audit.append([_entry("1001"), _entry("1002")])
        for _ in range(50):
            if path.exists():
                break
            await asyncio.sleep(0.1)
        assert latest_checkpoint(path, KEY).seq == 2
        await runtime.services.audit.append([_entry("1003")])
    finally:
        await runtime.aclose()
    assert latest_checkpoint(path, KEY).seq == 3
    assert path.stat().st_mode & 0o077 == 0, "the checkpoint file is readable by others"


async def _unkeyed_records(engine: AsyncEngine, clock: FrozenClock, subjects: list[str]) -> None:
    """A log as the gateway wrote it before the chain was keyed (plain SHA-256)."""
    prev = "0" * 64
    async with engine.begin() as conn:
        for seq, subject in enumerate(subjects, start=1):
            entry = _entry(subject)
            digest = plain_hash(seq, clock.now(), entry, prev)
            values = {f: getattr(entry, f) for f in ("actor", "role", "channel", "operation", "fields", "outcome")}
            await conn.execute(
                insert(AuditRecord).values(
                    seq=seq,
                    recorded_at=clock.now(),
                    subject=subject,
                    trace_id=entry.trace_id,
                    prev_hash=prev,
                    hash=digest,
                    **values,
                )
            )
            prev = digest


async def test_an_unkeyed_log_from_before_the_upgrade_is_re_chained_once_and_then_verifies(
    engine: AsyncEngine, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    for name, value in _command_env(settings).items():
        monkeypatch.setenv(name, value)
    await _unkeyed_records(engine, clock, ["1001", "1002", "1003"])
    report = await verify_chain(engine, KEY)
    assert report.broken_seq == 1 and "audit-rechain" in report.reason
    assert await asyncio.to_thread(main, ["audit-rechain"]) == 0
    assert "3 records" in capsys.readouterr().out
    assert (await verify_chain(engine, KEY)).checked == 3
    with pytest.raises(DBAPIError, match="append-only"):  # the trigger is back
        await _sql(engine, "UPDATE audit_log SET customer_key = '1' WHERE seq = 1")
    await AuditLog(engine, clock, KEY).append([_entry("1004")])
    assert (await verify_chain(engine, KEY)).checked == 4


async def test_a_tampered_unkeyed_log_is_not_laundered_by_a_re_chain(
    engine: AsyncEngine, clock: FrozenClock, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _command_env(settings).items():
        monkeypatch.setenv(name, value)
    await _unkeyed_records(engine, clock, ["1001", "1002", "1003"])
    await _tamper(engine, "UPDATE audit_log SET customer_key = '9' WHERE seq = 2")
    assert await asyncio.to_thread(main, ["audit-rechain"]) == 1
    assert (await verify_chain(engine, KEY)).broken_seq == 1


async def test_downgrading_below_the_cuts_is_refused_once_the_log_was_pruned(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    """Dropping `audit_log_cuts` would throw away the only signed proof of where the log legitimately
    starts: the chain would then report its first record missing for ever, and no key could mend it."""
    log = AuditLog(engine, clock, KEY)
    await log.append([_entry("1001"), _entry("1002")])
    clock.advance(timedelta(days=1))
    await log.append([_entry("1003")])
    assert await log.prune(clock.now() - timedelta(hours=1), dry_run=False) == 2

    def downgrade(sync: Any) -> None:
        command.downgrade(alembic_config(sync), "0093")

    async with engine.connect() as conn:
        with pytest.raises(RuntimeError, match="audit_log_cuts"):
            await conn.run_sync(downgrade)
        await conn.rollback()
    report = await verify_chain(engine, KEY)
    assert report.ok and (report.checked, report.pruned_through) == (1, 2)
