"""The DPO's command line and backups: a restored backup never brings an erased person back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from gateway import privacy_cli as cli
from tests.customers.helpers import register, sign_in
from tests.privacy.helpers import dpo_erase, find_in_database
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
