"""The command line: `events relay|status|retry-dead` and `stock import FILE.csv`, as an operator runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from commerce.catalog.models import Location, ProductVariant
from commerce.events.outbox import emit
from commerce.inventory.models import StockLevel, StockMovement
from gateway.__main__ import main
from gateway.runtime import Runtime
from tests.events.receiver import Receiver, receiving

SECRET = "cli-webhook-secret-0123456789"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, runtime: Runtime, tmp_path: Path) -> Path:
    """The commands see the test's database; returns the webhooks file's path (not written yet)."""
    monkeypatch.setenv("OMNIGATE_DATABASE_URL", runtime.settings.database_url)
    hooks = tmp_path / "webhooks.toml"
    monkeypatch.setenv("OMNIGATE_WEBHOOKS_FILE", str(hooks))
    monkeypatch.setenv("OMNIGATE_WEBHOOK_BACKOFF_SECONDS", "0")
    return hooks


async def _run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def _emit(runtime: Runtime, count: int) -> None:
    async with runtime.services.sessions() as session, session.begin():
        for seq in range(count):
            await emit(
                session, aggregate_type="order", aggregate_id="5", event_type="order.placed", payload={"seq": seq}
            )


async def test_relay_once_delivers_to_the_configured_webhook_and_exits(cli_env: Path, runtime: Runtime, capsys) -> None:
    await _emit(runtime, 3)
    async with receiving(Receiver(SECRET)) as receiver:
        cli_env.write_text(f'[[endpoints]]\nname = "erp"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n')
        assert await _run("events", "relay", "--once") == 0
    assert [a.body["data"]["seq"] for a in receiver.attempts] == [0, 1, 2]
    assert all(a.signed for a in receiver.attempts)
    assert "delivered 3" in capsys.readouterr().out


async def test_relay_stdout_prints_json_lines_only(cli_env: Path, runtime: Runtime, capsys) -> None:
    await _emit(runtime, 2)
    assert await _run("events", "relay", "--once", "--stdout") == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["data"] for line in out] == [{"seq": 0}, {"seq": 1}]


async def test_status_shows_dead_letters_and_retry_dead_puts_them_back(
    cli_env: Path, runtime: Runtime, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIGATE_WEBHOOK_MAX_ATTEMPTS", "1")
    await _emit(runtime, 2)
    async with receiving(Receiver(SECRET, down=True)) as receiver:
        cli_env.write_text(f'[[endpoints]]\nname = "erp"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n')
        assert await _run("events", "relay", "--once") == 0
        assert await _run("events", "status") == 0
        assert "erp: pending 0, dead 2" in capsys.readouterr().out
        receiver.down = False
        assert await _run("events", "retry-dead") == 0
        assert await _run("events", "relay", "--once") == 0
        assert await _run("events", "status") == 0
    out = capsys.readouterr().out
    assert "2 dead-lettered deliveries are back in line" in out and "no undelivered events" in out


async def test_a_bad_webhooks_file_stops_the_relay_with_a_message(cli_env: Path, capsys) -> None:
    cli_env.write_text('[[endpoints]]\nname = "erp"\nurl = "https://erp.example/in"\nsecret = "short"\n')
    assert await _run("events", "relay", "--once") == 2
    assert "secret" in capsys.readouterr().err


async def test_stock_import_applies_good_lines_and_names_the_refused_ones(
    cli_env: Path, runtime: Runtime, tmp_path: Path, capsys
) -> None:
    async with runtime.services.sessions() as session, session.begin():
        variant_id, sku = (await session.execute(select(ProductVariant.id, ProductVariant.sku).limit(1))).one()
        waw = (await session.execute(select(Location.id).where(Location.code == "ST-WAW"))).scalar_one()
        await session.execute(delete(StockLevel).where(StockLevel.variant_id == variant_id))
        session.add(StockLevel(variant_id=variant_id, location_id=waw, on_hand=10, reserved=4))
    csv_file = tmp_path / "counts.csv"
    csv_file.write_text(
        "sku,location_code,on_hand\n"
        f"{sku},ST-WAW,3\n"  # line 2: below the 4 reserved
        f"{sku},WH-STRYKOW,12\n"  # line 3: applies
        "NOPE,ST-WAW,1\n"  # line 4
        f"{sku},ST-KRK,many\n"  # line 5
    )
    assert await _run("stock", "import", str(csv_file), "--actor", "wms-nightly") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "applied 1 of 4 counts; 3 refused"
    assert [line.split(":")[:2] for line in out[1:]] == [
        ["line 2", " BELOW_RESERVED"],
        ["line 4", " SKU_NOT_FOUND"],
        ["line 5", " INVALID_QUANTITY"],
    ]
    async with runtime.services.sessions() as session:
        movements = (await session.execute(select(StockMovement.on_hand_delta, StockMovement.actor))).all()
        stock = select(StockLevel.location_id, StockLevel.on_hand).where(StockLevel.variant_id == variant_id)
        levels = {location: on_hand for location, on_hand in await session.execute(stock)}
    assert movements == [(12, "wms-nightly")] and levels[waw] == 10


async def test_stock_import_refuses_a_file_without_the_documented_header(cli_env: Path, tmp_path: Path, capsys) -> None:
    csv_file = tmp_path / "counts.csv"
    csv_file.write_text("sku,qty\nA,1\n")
    assert await _run("stock", "import", str(csv_file)) == 2
    assert "location_code" in capsys.readouterr().err


async def test_stock_import_counts_a_level_given_twice_once_even_in_another_chunk(
    cli_env: Path, runtime: Runtime, tmp_path: Path, capsys
) -> None:
    """The CSV goes in chunks of 1,000 counts; a SKU and location counted again in a later chunk is a
    DUPLICATE_COUNT as within one chunk (the first count applies), not silently the count that wins."""
    async with runtime.services.sessions() as session, session.begin():
        variant_id, sku = (await session.execute(select(ProductVariant.id, ProductVariant.sku).limit(1))).one()
        waw = (await session.execute(select(Location.id).where(Location.code == "ST-WAW"))).scalar_one()
        await session.execute(delete(StockLevel).where(StockLevel.variant_id == variant_id))
        session.add(StockLevel(variant_id=variant_id, location_id=waw, on_hand=10, reserved=0))
    csv_file = tmp_path / "counts.csv"
    filler = "".join(f"NO-SUCH-{n},ST-WAW,1\n" for n in range(999))  # lines 3..1001: the rest of chunk one
    csv_file.write_text(f"sku,location_code,on_hand\n{sku},ST-WAW,7\n{filler}{sku},ST-WAW,9\n")  # line 1002: chunk two
    assert await _run("stock", "import", str(csv_file)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "applied 1 of 1001 counts; 1000 refused"
    assert out[-1].split(":")[:2] == ["line 1002", " DUPLICATE_COUNT"]
    async with runtime.services.sessions() as session:
        stock = select(StockLevel.on_hand).where(StockLevel.variant_id == variant_id, StockLevel.location_id == waw)
        assert (await session.execute(stock)).scalar_one() == 7


async def test_stock_import_applies_a_count_given_again_after_one_refused_as_negative(
    cli_env: Path, runtime: Runtime, tmp_path: Path, capsys
) -> None:
    """A count refused as negative is no count: the same level counted again further down applies,
    as stockSync applies it within one call (it is not refused as a DUPLICATE_COUNT of nothing)."""
    async with runtime.services.sessions() as session, session.begin():
        variant_id, sku = (await session.execute(select(ProductVariant.id, ProductVariant.sku).limit(1))).one()
        waw = (await session.execute(select(Location.id).where(Location.code == "ST-WAW"))).scalar_one()
        await session.execute(delete(StockLevel).where(StockLevel.variant_id == variant_id))
        session.add(StockLevel(variant_id=variant_id, location_id=waw, on_hand=10, reserved=0))
    csv_file = tmp_path / "counts.csv"
    csv_file.write_text(f"sku,location_code,on_hand\n{sku},ST-WAW,-7\n{sku},ST-WAW,7\n")
    assert await _run("stock", "import", str(csv_file)) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "applied 1 of 2 counts; 1 refused"
    assert [line.split(":")[:2] for line in out[1:]] == [["line 2", " INVALID_QUANTITY"]]
    async with runtime.services.sessions() as session:
        stock = select(StockLevel.on_hand).where(StockLevel.variant_id == variant_id, StockLevel.location_id == waw)
        assert (await session.execute(stock)).scalar_one() == 7
