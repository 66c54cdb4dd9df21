"""The DPO's command line and backups: a restored backup never brings an erased person back."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select, text

from core.db import is_sqlite
from gateway import privacy_cli as cli
from gateway.__main__ import main
from tests.customers.helpers import register, sign_in
from tests.privacy.helpers import dpo_erase, find_in_database
from vault.audit_models import AuditRecord
from vault.requests.export import export_schema

CUSTOMER = "query($id: ID!) { customer(id: $id) { email erased } }"


@pytest.fixture
def sqlite_only(settings) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the backup command copies SQLite files; PostgreSQL uses pg_dump (README)")


async def test_a_restored_older_backup_replays_the_erasures_since_and_the_person_stays_erased(
    gql, runtime, settings, token_for, tmp_path: Path, sqlite_only
):
    gone = await register(gql, "restored@example.com", first="Regina", phone="+48 603 111 222")
    kept = await register(gql, "kept@example.com", first="Karol")
    token = await sign_in(gql, "restored@example.com")
    backup = tmp_path / "backups" / "before.db"
    assert await cli.backup(settings, str(backup)) == 0

    await dpo_erase(gql, token_for("dpo"), gone["id"])
    assert await cli.restore(settings, str(backup)) == 0

    agent = token_for("agent")
    assert (await gql.data(CUSTOMER, {"id": gone["id"]}, headers=agent))["customer"] == {
        "email": "[erased]",
        "erased": True,
    }
    assert (await gql.data(CUSTOMER, {"id": kept["id"]}, headers=agent))["customer"]["email"] == "kept@example.com"
    assert await find_in_database(runtime.services.engine, ["restored@example.com", "Regina", "603111222"]) == []
    runtime.erased.forget()
    assert (await gql.post("{ me { id } }", headers=token)).status_code == 401
    assert await cli.restore(settings, None, replay_only=True) == 0  # nothing left to replay; harmless again


async def test_the_cli_finds_the_person_by_blind_index_and_never_prints_or_audits_the_email(
    gql, runtime, settings, capsys
):
    await register(gql, "cli.person@example.com", first="Celina")
    out = io.StringIO()
    assert await cli.dsr_export(settings, "CLI.Person@example.com", out=out, operator="dpo-cli") == 0
    document = json.loads(out.getvalue())
    jsonschema.validate(document, export_schema())
    assert document["data"]["profile"]["firstName"] == "Celina"
    assert await cli.dsr_erase(settings, "cli.person@example.com", confirm=False) == 2
    assert await cli.dsr_erase(settings, "cli.person@example.com", confirm=True, operator="dpo-cli") == 0
    assert await cli.dsr_export(settings, "cli.person@example.com", out=io.StringIO()) == 1  # gone from the index
    assert await cli.dsr_list(settings, overdue=False) == 0
    printed = capsys.readouterr()
    assert "cli.person@example.com" not in printed.out + printed.err
    assert "ERASURE" in printed.out and "retained" in printed.out
    assert await find_in_database(runtime.services.engine, ["cli.person@example.com", "Celina"]) == []
    history = document["data"]["accessLog"]
    assert history == []  # the export's own audit record is written after it is generated


async def test_retention_run_counts_then_deletes_what_outlived_its_period(gql, runtime, settings, clock, capsys):
    await gql.data("mutation { cartCreate { cart { id } } }")  # a guest cart, abandoned
    assert await cli.retention_run(settings, dry_run=True) == 0
    assert "carts: would delete 0" in capsys.readouterr().out
    settings_later = settings.replace(guest_cart_ttl_seconds=0)
    assert await cli.retention_run(settings_later, dry_run=True) == 0
    assert "carts: would delete 1" in capsys.readouterr().out
    assert await cli.retention_run(settings_later, dry_run=False) == 0
    assert "carts: deleted 1" in capsys.readouterr().out
    assert await cli.retention_run(settings_later, dry_run=False) == 0
    assert "carts: deleted 0" in capsys.readouterr().out


ACCESS_LOG = "query($id: ID!) { customerAccessLog(customerId: $id) { actor } }"


def _audit_env(monkeypatch, settings) -> None:
    """What `python -m gateway audit-verify` reads: the database, the keys, the checkpoint file."""
    for name, value in {
        "OMNIGATE_DATABASE_URL": settings.database_url,
        "OMNIGATE_KEK": settings.kek,
        "OMNIGATE_AUDIT_KEY": settings.audit_key,
        "OMNIGATE_AUDIT_CHECKPOINT_FILE": settings.audit_checkpoint_file,
    }.items():
        monkeypatch.setenv(name, value)


async def _audit_verify(capsys) -> tuple[int, str]:
    code = await asyncio.to_thread(main, ["audit-verify"])  # main() runs its own event loop
    return code, capsys.readouterr().out


async def test_retention_run_prunes_the_access_log_past_its_period_and_what_is_left_still_verifies(
    gql, runtime, settings, clock, token_for, capsys, monkeypatch
):
    """Five years (retention.toml [categories.access_log]): older records go under a signed cut,
    `audit-verify` checks the rest from it, and still finds a record changed after the cut."""
    person = await register(gql, "audited.long@example.com")
    read = "query($id: ID!) { customer(id: $id) { id } }"
    clock.advance(-timedelta(days=5 * 366 + 30))
    await gql.data(read, {"id": person["id"]}, headers=token_for("agent", subject="agent-then"))
    clock.advance(timedelta(days=5 * 366 + 30))
    await gql.data(read, {"id": person["id"]}, headers=token_for("agent", subject="agent-now"))
    await runtime.checkpoints.write_once()  # the gateway signs its head every minute
    dpo = token_for("dpo", subject="dpo-1")
    before = [a["actor"] for a in (await gql.data(ACCESS_LOG, {"id": person["id"]}, headers=dpo))["customerAccessLog"]]
    assert {"agent-then", "agent-now"} <= set(before)
    old = await _audit_rows(runtime, "agent-then")

    assert await cli.retention_run(settings, dry_run=True) == 0
    assert f"access_log: would delete {old}" in capsys.readouterr().out
    assert await cli.retention_run(settings, dry_run=False) == 0
    assert f"access_log: deleted {old}" in capsys.readouterr().out
    after = [a["actor"] for a in (await gql.data(ACCESS_LOG, {"id": person["id"]}, headers=dpo))["customerAccessLog"]]
    assert "agent-then" not in after and "agent-now" in after
    assert await _audit_rows(runtime, "agent-then") == 0 and await _audit_rows(runtime, "agent-now") > 0
    assert await cli.retention_run(settings, dry_run=False) == 0
    assert "access_log: deleted 0" in capsys.readouterr().out  # nothing more is due

    _audit_env(monkeypatch, settings)
    code, out = await _audit_verify(capsys)
    assert code == 0 and f"after the retention job's signed cut at record {old}" in out, out
    await gql.data(read, {"id": person["id"]}, headers=token_for("agent", subject="agent-later"))  # chains on
    assert (await _audit_verify(capsys))[0] == 0
    await _tamper_audit(runtime, "UPDATE audit_log SET actor = 'someone-else' WHERE actor = 'agent-now'")
    code, out = await _audit_verify(capsys)
    assert code == 1 and "broken at record" in out


async def test_retention_run_refuses_to_prune_an_access_log_that_does_not_verify_and_does_the_rest(
    gql, runtime, settings, clock, token_for, capsys
):
    """Deleting the tampered records would destroy the evidence: they stay, and the run says so."""
    person = await register(gql, "tampered.long@example.com")
    clock.advance(-timedelta(days=5 * 366 + 30))
    await gql.data("query($id: ID!) { customer(id: $id) { id } }", {"id": person["id"]}, headers=token_for("agent"))
    clock.advance(timedelta(days=5 * 366 + 30))
    await _tamper_audit(runtime, "UPDATE audit_log SET actor = 'nobody' WHERE seq = 1")
    assert await cli.retention_run(settings, dry_run=False) == 1
    out = capsys.readouterr().out
    assert "carts: deleted 0" in out and "access_log: not deleted: the audit log does not verify at record 1" in out
    assert await _audit_rows(runtime, "nobody") == 1


async def _audit_rows(runtime, actor: str) -> int:
    async with runtime.services.engine.connect() as conn:
        stmt = select(func.count()).select_from(AuditRecord).where(AuditRecord.actor == actor)
        return int((await conn.execute(stmt)).scalar_one())


async def _tamper_audit(runtime, statement: str) -> None:
    """As someone with the rights to drop the append-only trigger would."""
    engine = runtime.services.engine
    drops = (
        ["DROP TRIGGER audit_log_no_update"]
        if is_sqlite(str(engine.url))
        else ["DROP TRIGGER audit_log_append_only ON audit_log"]
    )
    async with engine.begin() as conn:
        for sql in [*drops, statement]:
            await conn.execute(text(sql))


def test_the_record_of_processing_comes_from_the_policy_files(settings, capsys):
    assert cli.ropa(settings, as_json=True) == 0
    record = json.loads(capsys.readouterr().out)
    assert {a["category"] for a in record["activities"]} >= {"profile", "consents", "access_log"}
    assert all(a["legalBasis"] and a["purpose"] for a in record["activities"])
    assert cli.ropa(settings, as_json=False) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Record of processing activities (GDPR Art. 30)")
    assert "| consents:" in markdown and "MARKETING_EMAIL" in markdown


async def test_dsr_run_finishes_queued_erasures_in_one_batch(gql, runtime, settings, capsys):
    from commerce.customers.service import subjects_by_ids
    from core.ids import from_global_id

    service = runtime.services.requests
    people = [await register(gql, f"queued{n}@example.com", first=f"Queued{n}") for n in range(3)]
    keys = [int(from_global_id(p["id"])[1]) for p in people]
    subjects = await subjects_by_ids(runtime.services.engine, keys)
    for key in keys:
        await service.open("ERASURE", customer_key=key, subject_id=subjects[key], requested_by="dpo-1")
    assert await cli.dsr_run(settings) == 0
    assert "3 request(s) finished" in capsys.readouterr().out
    assert await service.unfinished() == []
    finished = await service.recent(10)
    assert {r.status for r in finished} == {"COMPLETED"}
    assert {r.retained[0].category for r in finished} == {"access_log"}
    assert await find_in_database(runtime.services.engine, ["queued0@", "queued1@", "Queued2"]) == []
