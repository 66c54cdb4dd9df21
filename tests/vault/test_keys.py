"""KEK rotation without downtime, crypto-shredding, and where the keys come from."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from commerce.customers import service as customers
from core.ids import from_global_id
from core.settings import Settings
from gateway.__main__ import main
from tests.customers.helpers import register, sign_in
from vault.cipher import DecryptionFailed
from vault.keys import KeyConfigError, add_kek_version, load_blind_index_key, load_key_ring, retire_kek_versions
from vault.service import Vault

NEW_KEK = base64.b64encode(b"a-brand-new-kek-version-2-32byte").decode()
READ = (
    """query($ids: [ID!]!) { customers(ids: $ids) { id email firstName lastName phone erased addresses { city } } }"""
)


async def _customers(gql, count: int) -> list[dict]:
    return [
        await register(gql, f"person{n}@example.com", first=f"Person{n}", phone=f"+48 600 000 00{n}")
        for n in range(count)
    ]


async def test_after_kek_rotation_everyone_decrypts_and_shredding_erases_only_that_customer(
    gql, engine, runtime, settings, clock, token_for
):
    people = await _customers(gql, 3)
    ids = [p["id"] for p in people]
    old_vault = runtime.services.vault
    rotated = Vault.from_settings(settings.replace(kek=f"{settings.kek},2:{NEW_KEK}"), engine, clock)

    report = await rotated.rotate(batch_size=2)  # several batches
    assert (report.active_version, report.rewrapped, report.in_use) == (2, 4, {2: 4})  # three + the demo customer
    assert (await rotated.rotate()).rewrapped == 0
    with pytest.raises(DecryptionFailed):  # the data keys are no longer wrapped by version 1 alone
        await customers.profiles_by_ids(engine, old_vault, [int(from_global_id(ids[0])[1])])

    runtime.services.vault = rotated
    dpo = token_for("dpo")
    data = (await gql.data(READ, {"ids": ids}, headers=dpo))["customers"]
    assert [c["email"] for c in data] == [p["email"] for p in people]
    assert not any(c["erased"] for c in data)

    victim = int(from_global_id(ids[1])[1])
    assert await customers.erase(engine, rotated, victim)
    data = (await gql.data(READ, {"ids": ids}, headers=dpo))["customers"]
    assert data[1] == {
        "id": ids[1],
        "email": "[erased]",
        "firstName": "[erased]",
        "lastName": "[erased]",
        "phone": "[erased]",
        "erased": True,
        "addresses": [],
    }
    assert [c["email"] for c in (data[0], data[2])] == [people[0]["email"], people[2]["email"]]
    # Gone from look-ups too: no sign-in, no search by email.
    find = "query($e: String!) { customerByEmail(email: $e) { id } }"
    assert (await gql.data(find, {"e": people[1]["email"]}, headers=dpo))["customerByEmail"] is None
    await sign_in(gql, people[0]["email"])


async def test_a_replica_given_a_new_kek_version_not_yet_active_writes_what_every_replica_reads(
    gql, engine, runtime, settings, clock
):
    old_replica = runtime.services.vault
    staged = settings.replace(kek=f"{settings.kek},2:{NEW_KEK}", kek_active_version=1)
    runtime.services.vault = Vault.from_settings(staged, engine, clock)
    key = int(from_global_id((await register(gql, "mid-rollout@example.com", first="Mid"))["id"])[1])
    assert (await customers.profiles_by_ids(engine, old_replica, [key]))[key].first_name == "Mid"
    switched = Vault.from_settings(staged.replace(kek_active_version=2), engine, clock)
    assert (await switched.rotate()).rewrapped == 2  # the demo customer and this one
    with pytest.raises(KeyConfigError):
        Vault.from_settings(settings.replace(kek_active_version=2), engine, clock)  # not configured here


async def test_rotate_kek_command_rewraps_every_data_key_and_reports_counts(
    gql, database_url, settings, engine, clock, monkeypatch, capsys
):
    await _customers(gql, 2)
    monkeypatch.setenv("OMNIGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("OMNIGATE_KEK", f"{settings.kek},2:{NEW_KEK}")
    monkeypatch.setenv("OMNIGATE_BLIND_INDEX_KEY", settings.blind_index_key)
    assert await asyncio.to_thread(main, ["rotate-kek"]) == 0
    out = capsys.readouterr().out
    assert "active KEK version 2: re-wrapped 3 data keys" in out
    assert "v2=3" in out
    only_new = Vault.from_settings(settings.replace(kek=f"2:{NEW_KEK}"), engine, clock)
    profiles = await customers.profiles_by_ids(engine, only_new, [1, 2, 3])
    assert sorted(str(p.first_name) for p in profiles.values()) == ["Demo", "Person0", "Person1"]


def test_development_creates_a_kek_file_on_first_use_and_reuses_it(tmp_path):
    settings = Settings(kek_file=str(tmp_path / "keys" / "kek.json"))
    ring = load_key_ring(settings)
    assert ring.active_version == 1
    assert load_key_ring(settings).keks == ring.keks
    assert load_blind_index_key(settings) == load_blind_index_key(settings)
    assert (tmp_path / "keys" / "kek.json").stat().st_mode & 0o077 == 0  # owner only


def test_a_new_kek_version_takes_over_and_unused_versions_can_be_retired(tmp_path):
    settings = Settings(kek_file=str(tmp_path / "kek.json"))
    first = load_key_ring(settings)
    assert add_kek_version(settings) == 2
    ring = load_key_ring(settings)
    assert ring.active_version == 2 and ring.keks[1] == first.keks[1]
    assert retire_kek_versions(settings, frozenset({2})) == [1]
    assert set(json.loads((tmp_path / "kek.json").read_text())["keks"]) == {"2"}


def test_two_kek_rotations_at_once_lose_no_version(tmp_path):
    import threading

    settings = Settings(kek_file=str(tmp_path / "kek.json"))
    first = load_key_ring(settings)
    start, added = threading.Barrier(6), []

    def add() -> None:
        start.wait()
        added.append(add_kek_version(settings))

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(added) == [2, 3, 4, 5, 6, 7]
    ring = load_key_ring(settings)
    assert set(ring.keks) == {1, *added} and ring.keks[1] == first.keks[1]


def test_production_refuses_to_start_without_keys_or_with_encryption_off(tmp_path):
    missing = Settings(environment="production", kek_file=str(tmp_path / "none.json"))
    with pytest.raises(KeyConfigError):
        load_key_ring(missing)
    assert not (tmp_path / "none.json").exists()
    keyed = missing.replace(kek=NEW_KEK)
    load_key_ring(keyed)
    with pytest.raises(KeyConfigError):
        load_blind_index_key(keyed)
    with pytest.raises(KeyConfigError):
        Vault.from_settings(keyed.replace(blind_index_key=NEW_KEK, vault_encryption=False), None, None)  # type: ignore[arg-type]


def test_production_refuses_a_kek_file_others_can_read(tmp_path):
    development = Settings(kek_file=str(tmp_path / "kek.json"))
    load_key_ring(development)
    (tmp_path / "kek.json").chmod(0o644)
    production = development.replace(environment="production", blind_index_key=NEW_KEK)
    with pytest.raises(KeyConfigError, match="chmod 600"):
        load_key_ring(production)
    (tmp_path / "kek.json").chmod(0o600)
    assert load_key_ring(production).keks == load_key_ring(development).keks


def test_a_derived_blind_index_key_survives_rotation_and_is_refused_once_version_1_is_retired():
    first = base64.b64encode(b"omnigate-kek-version-1-32-bytes!").decode()
    derived = load_blind_index_key(Settings(kek=f"1:{first}"))
    assert load_blind_index_key(Settings(kek=f"1:{first},2:{NEW_KEK}")) == derived
    with pytest.raises(KeyConfigError, match="OMNIGATE_BLIND_INDEX_KEY"):  # not a new key that finds no one
        load_blind_index_key(Settings(kek=f"2:{NEW_KEK}"))


def test_no_key_material_shows_in_a_repr_a_traceback_or_a_log_might_print():
    settings = Settings(kek=f"1:{NEW_KEK}", blind_index_key=NEW_KEK, jwt_secret="signing-secret-0123456789-abcdef")
    ring = load_key_ring(settings)
    shown = repr(settings) + repr(ring)
    assert NEW_KEK not in shown and "signing-secret" not in shown
    assert repr(ring.keks[1]) not in shown and ring.keks[1].hex() not in shown


def test_a_kek_version_given_twice_is_refused():
    with pytest.raises(KeyConfigError, match="twice"):
        load_key_ring(Settings(kek=f"1:{NEW_KEK},1:{base64.b64encode(bytes(32)).decode()}"))


def test_malformed_keks_are_refused_without_echoing_them():
    with pytest.raises(KeyConfigError) as failure:
        load_key_ring(Settings(kek="bm90LWEta2V5"))
    assert "bm90LWEta2V5" not in str(failure.value)
