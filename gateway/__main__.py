"""The command line: `python -m gateway {serve,migrate,seed,...}`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from core.db import create_engine, is_sqlite
from core.migrate import migrate
from core.settings import Settings

__all__ = ["main"]


def _ensure_sqlite_dir(url: str) -> None:
    if is_sqlite(url) and ":///" in url and ":memory:" not in url:
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)


async def _migrate(settings: Settings) -> None:
    _ensure_sqlite_dir(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def _seed(settings: Settings, products: int) -> None:
    from gateway.seed import seed

    engine = create_engine(settings.database_url)
    started = time.perf_counter()
    try:
        report = await seed(engine, products=products, settings=settings)
    finally:
        await engine.dispose()
    if report.seeded:
        print(f"seeded {report.products} products, {report.variants} variants in {time.perf_counter() - started:.1f}s")
    else:
        print("the database already has data: nothing seeded")


async def _rotate_kek(settings: Settings, *, new_version: bool, retire: bool) -> None:
    from core.clock import SystemClock
    from vault.keys import add_kek_version, retire_kek_versions
    from vault.service import Vault

    if new_version:
        print(f"added KEK version {add_kek_version(settings)} to {settings.kek_file}")
    engine = create_engine(settings.database_url)
    try:
        vault = Vault.from_settings(settings, engine, SystemClock())
        report = await vault.rotate()
        print(
            f"active KEK version {report.active_version}: re-wrapped {report.rewrapped} data keys, "
            f"{report.already_current} were already current"
        )
        print(
            "data keys per KEK version: " + (", ".join(f"v{v}={n}" for v, n in sorted(report.in_use.items())) or "none")
        )
        if retire:
            dropped = retire_kek_versions(settings, frozenset(report.in_use) | {report.active_version})
            print(f"retired KEK versions: {', '.join(map(str, dropped)) or 'none'}")
    finally:
        await engine.dispose()


async def _expire_carts(settings: Settings) -> int:
    from commerce.cart.service import CartRules, delete_expired_guest_carts
    from core.clock import SystemClock

    engine = create_engine(settings.database_url)
    try:
        return await delete_expired_guest_carts(engine, now=SystemClock().now(), rules=CartRules.of(settings))
    finally:
        await engine.dispose()


async def _expire_reservations(settings: Settings) -> str:
    from datetime import timedelta

    from commerce.cart.service import CartRules
    from commerce.orders.service import expire_reservations
    from commerce.orders.unit import OrderServices
    from commerce.payments.test_provider import TestPaymentProvider
    from core.clock import SystemClock
    from core.db import session_factory
    from vault.service import Vault

    engine = create_engine(settings.database_url)
    clock = SystemClock()
    try:
        report = await expire_reservations(
            OrderServices(
                engine=engine,
                sessions=session_factory(engine),
                vault=Vault.from_settings(settings, engine, clock),
                clock=clock,
                payments=TestPaymentProvider(),
                cart_rules=CartRules.of(settings),
                reservation_ttl=timedelta(seconds=settings.reservation_ttl_seconds),
                pending_timeout=timedelta(seconds=settings.checkout_pending_timeout_seconds),
            )
        )
    finally:
        await engine.dispose()
    return (
        f"released {report.reservations_released} overdue reservations, "
        f"failed {report.checkouts_failed} abandoned checkouts"
    )


def _serve(settings: Settings, *, demo: bool, workers: int) -> None:
    import uvicorn

    if demo:
        asyncio.run(_migrate(settings))
        asyncio.run(_seed(settings, 200))
    from gateway.app import create_app
    from gateway.process import tune_gc

    app = create_app(settings)
    tune_gc()
    print(f"Omnigate on http://{settings.host}:{settings.port}/graphql")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), access_log=False)


def _mint(settings: Settings, args: argparse.Namespace) -> str:
    from datetime import timedelta

    from core.clock import SystemClock
    from core.ids import InvalidGlobalId, from_global_id, int_key
    from gateway.tokens import TokenService
    from policies.principal import Principal, Role

    role = Role(args.role)
    if role is Role.CUSTOMER:
        if not args.customer:
            raise SystemExit("--role customer needs --customer ID")
        try:
            raw = (
                args.customer
                if args.customer.isascii() and args.customer.isdigit()
                else from_global_id(args.customer, "Customer")[1]
            )
        except InvalidGlobalId:
            raw = ""
        key = int_key(raw)
        if key is None:
            raise SystemExit("--customer takes a Customer ID (global or its number)")
        subject = str(key)  # one spelling: "0001" and "1" are the same customer
    else:
        subject = args.subject or role.value
    if role is Role.STAFF and not args.location:
        raise SystemExit("--role staff needs --location CODE")
    principal = Principal(role=role, subject=subject, location=args.location)
    return TokenService(settings, SystemClock()).issue(principal, timedelta(seconds=args.ttl)).token


async def _audit_verify(settings: Settings) -> int:
    from vault.audit import verify_chain

    engine = create_engine(settings.database_url)
    try:
        report = await verify_chain(engine)
    finally:
        await engine.dispose()
    if report.ok:
        print(f"audit log intact: {report.checked} records")
        return 0
    print(f"audit log broken at record {report.broken_seq}: {report.reason} ({report.checked} records before it hold)")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description="Omnigate commerce gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve GraphQL on OMNIGATE_HOST:OMNIGATE_PORT")
    serve.add_argument(
        "--demo", action="store_true", help="migrate and seed demo data first (if the database is empty)"
    )
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="upgrade the database schema (Alembic)")
    seed = commands.add_parser("seed", help="fill an empty database with demo data")
    seed.add_argument("--products", type=int, default=200)
    rotate = commands.add_parser(
        "rotate-kek", help="re-wrap every data key under a new KEK version (data untouched, no downtime)"
    )
    rotate.add_argument(
        "--no-new-version",
        action="store_true",
        help="do not add a KEK version to the KEK file; re-wrap under the highest configured one "
        "(use when the new version was added to OMNIGATE_KEK)",
    )
    rotate.add_argument(
        "--retire", action="store_true", help="then drop KEK versions no data key uses from the KEK file"
    )
    commands.add_parser("expire-carts", help="delete guest carts idle longer than OMNIGATE_GUEST_CART_TTL_SECONDS")
    commands.add_parser(
        "expire-reservations",
        help="release reserve & collect orders past reservedUntil and checkouts stuck waiting for payment "
        "(idempotent: run it from cron on every replica)",
    )
    token = commands.add_parser("token", help="mint an access token for an operator or a test")
    token.add_argument("--role", required=True, choices=["customer", "staff", "agent", "dpo", "admin", "integration"])
    token.add_argument("--customer", help="the customer's ID (for --role customer)")
    token.add_argument("--subject", help="the operator's or system's name (default: the role)")
    token.add_argument("--location", help="the store's code (for --role staff)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    commands.add_parser("audit-verify", help="check the audit log's hash chain; exit 1 at the first broken record")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "serve":
        from policies.access import PolicyError

        try:
            _serve(settings, demo=args.demo, workers=args.workers)
        except PolicyError as exc:
            print(f"Omnigate cannot start: {exc}", file=sys.stderr)
            return 2
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
        print("database is up to date")
    elif args.command == "expire-carts":
        print(f"deleted {asyncio.run(_expire_carts(settings))} expired guest carts")
    elif args.command == "expire-reservations":
        print(asyncio.run(_expire_reservations(settings)))
    elif args.command == "token":
        print(_mint(settings, args))
    elif args.command == "rotate-kek":
        asyncio.run(
            _rotate_kek(settings, new_version=not args.no_new_version and not settings.kek.strip(), retire=args.retire)
        )
    elif args.command == "seed":
        asyncio.run(_migrate(settings))
        asyncio.run(_seed(settings, args.products))
    elif args.command == "audit-verify":
        return asyncio.run(_audit_verify(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
