"""The command line: `python -m gateway {serve,migrate,seed,...}`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.db import create_engine, is_sqlite
from core.migrate import migrate
from core.settings import Settings, SettingsError
from gateway.startup import (
    StartupError,
    check_database,
    check_port,
    database_url,
    listen,
    warn_unknown_variables,
)

if TYPE_CHECKING:
    from commerce.orders.service import ExpiryReport

__all__ = ["main"]

T = TypeVar("T")


def _ensure_sqlite_dir(url: str) -> None:
    if is_sqlite(url) and ":///" in url and ":memory:" not in url:
        folder = Path(url.split(":///", 1)[1]).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError("OMNIGATE_DATABASE_URL", f"cannot create the folder {folder}: {exc.strerror}") from None


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
        report = await seed(engine, products=products, settings=settings, progress=_progress_bar(started))
    finally:
        await engine.dispose()
    if report.seeded:
        print(f"seeded {report.products} products, {report.variants} variants in {time.perf_counter() - started:.1f}s")
    else:
        print("the database already has data: nothing seeded")


def _progress_bar(started: float) -> Callable[[int, int], None] | None:
    """A one-line bar on a terminal (stderr), for seeds large enough to wait for."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if total < 100_000:
            return
        width = 30
        filled = width * done // total
        rate = done / max(time.perf_counter() - started, 1e-9)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} products, {rate:,.0f}/s")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


async def _expire_points(settings: Settings) -> int:
    from commerce.loyalty.service import expire_points
    from core.clock import SystemClock

    engine = create_engine(settings.database_url)
    try:
        return await expire_points(engine, SystemClock().now())
    finally:
        await engine.dispose()


async def _rebuild_recommendations(settings: Settings) -> str:
    from commerce.recommendations.service import rebuild
    from core.clock import SystemClock
    from vault.service import Vault

    engine = create_engine(settings.database_url)
    clock = SystemClock()
    try:
        report = await rebuild(engine, Vault.from_settings(settings, engine, clock), clock.now())
    finally:
        await engine.dispose()
    return (
        f"co-purchase statistics rebuilt from {report.orders} orders of {report.customers} consenting customers: "
        f"{report.pairs} product pairs"
    )


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


async def _retry_payments(settings: Settings) -> str:
    from commerce.payments.calls import retry_due
    from commerce.payments.test_provider import TestPaymentProvider
    from core.clock import SystemClock

    engine = create_engine(settings.database_url)
    try:
        report = await retry_due(engine, TestPaymentProvider(), SystemClock())
    finally:
        await engine.dispose()
    return (
        f"made {report.made} due payment calls, {report.still_due} still due, "
        f"{report.failed} failed for good (reconcile them with the provider)"
    )


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
    return _expiry_summary(report)


def _expiry_summary(report: ExpiryReport) -> str:
    """The expiry's counts, and each refund it settled that a till must hand out in cash (no till was told)."""
    from commerce.orders.records import order_number

    lines = [
        f"released {report.reservations_released} overdue reservations, "
        f"failed {report.checkouts_failed} abandoned checkouts, "
        f"refunded {report.exchanges_refunded} abandoned exchanges, "
        f"closed {report.exchanges_sold} abandoned exchanges whose sale was placed"
    ]
    lines += [
        f"cash owed at the till: {share.amount} to the customer of {order_number(share.order_id)}"
        for share in report.cash_owed
    ]
    return "\n".join(lines)


async def _serve(settings: Settings, *, demo: bool, host_from: str, port_from: str) -> None:
    """Check the database, bind the port, then serve; print the address only once it listens."""
    from gateway.app import create_app
    from gateway.process import tune_gc
    from gateway.serving import serving_line, start

    database_url(settings.database_url)  # the cheap checks first: a typo is reported at once
    check_port(settings.port, port_from)
    if demo:
        _ensure_sqlite_dir(settings.database_url)
    await check_database(settings)
    if demo:
        await _migrate(settings)
        await _seed(settings, 200)
    await _replay_erasures(settings)
    sock = listen(settings.host, settings.port, host_from=host_from, port_from=port_from)
    app = create_app(settings)
    tune_gc()
    running = await start(
        app, sock, log_level=settings.log_level.lower(), access_log=False, ws_max_size=settings.max_body_bytes
    )
    print(serving_line(settings.host, running.port), flush=True)
    await running.wait()


async def _replay_erasures(settings: Settings) -> None:
    """A database restored behind our back (a snapshot, a failover) must not bring anyone erased back."""
    from gateway.privacy_cli import replay_erasures

    replayed = await replay_erasures(settings)
    if replayed:
        print(f"erased again from the erasure ledger before serving: {replayed}")


def _serve_workers(settings: Settings, workers: int, *, demo: bool) -> None:
    """`serve --workers N`: uvicorn binds the port, then starts N processes that each build the app."""
    import uvicorn

    from gateway.serving import serving_line

    if is_sqlite(settings.database_url):
        raise StartupError("--workers", "needs PostgreSQL: SQLite's caches and write queue belong to one process")
    database_url(settings.database_url)
    asyncio.run(check_database(settings))
    if demo:
        asyncio.run(_migrate_and_seed(settings, 200))
    asyncio.run(_replay_erasures(settings))
    print(f"{serving_line(settings.host, settings.port)} ({workers} workers)", flush=True)
    uvicorn.run(
        "gateway.__main__:worker_app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        ws_max_size=settings.max_body_bytes,  # a WebSocket message is held to an HTTP body's bound
    )


def worker_app() -> Any:
    """One `serve --workers N` worker's app (uvicorn imports this in every worker process)."""
    from gateway.app import create_app
    from gateway.process import tune_gc

    tune_gc()
    return create_app(Settings.from_env())


def _mint(settings: Settings, args: argparse.Namespace) -> str:
    from datetime import timedelta

    from core.clock import SystemClock
    from core.ids import InvalidGlobalId, from_global_id, int_key
    from gateway.tokens import TokenService
    from policies.principal import Principal, Role

    role = Role(args.role)
    if role is Role.CUSTOMER:
        if not args.customer:
            raise StartupError("--customer", "--role customer needs --customer ID")
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
            raise StartupError("--customer", "takes a Customer ID (global or its number)")
        subject = str(key)  # one spelling: "0001" and "1" are the same customer
    else:
        subject = args.subject or role.value
    if role is Role.STAFF and not args.location:
        raise StartupError("--location", "--role staff needs --location CODE")
    if args.location:
        asyncio.run(_check_location(settings, args.location))
    principal = Principal(role=role, subject=subject, location=args.location)
    return TokenService(settings, SystemClock()).issue(principal, timedelta(seconds=args.ttl)).token


async def _check_location(settings: Settings, code: str) -> None:
    """A token for a store that does not exist would be refused everywhere: say so now."""
    from commerce.catalog.service import list_locations

    await check_database(settings)
    engine = create_engine(settings.database_url)
    try:
        known = sorted(location.code for location in await list_locations(engine))
    finally:
        await engine.dispose()
    if code not in known:
        raise StartupError("--location", f"no location has the code {code!r} (known: {', '.join(known) or 'none'})")


def _positive(text: str) -> int:
    """An argparse type: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above zero, not {value}")
    return value


async def _mail_send(settings: Settings, limit: int) -> None:
    from gateway.mail import deliver_once
    from gateway.runtime import build_runtime

    runtime = build_runtime(settings)
    try:
        report = await deliver_once(runtime.services, limit)
    finally:
        await runtime.aclose()
    print(f"email: {report.sent} sent, {report.retrying} to retry later, {report.failed} given up")


async def _audit_verify(settings: Settings) -> int:
    from pathlib import Path

    from vault.audit import verify_chain
    from vault.audit_checkpoints import CheckpointError, latest_checkpoint
    from vault.keys import load_audit_key

    key = load_audit_key(settings)
    try:
        checkpoint = latest_checkpoint(Path(settings.audit_checkpoint_file), key)
    except CheckpointError as problem:
        print(f"audit checkpoints not trustworthy: {problem}")
        return 1
    engine = create_engine(settings.database_url)
    try:
        report = await verify_chain(engine, key, checkpoint)
    finally:
        await engine.dispose()
    against = f", up to the signed checkpoint at record {checkpoint.seq}" if checkpoint else " (no checkpoint yet)"
    cut = report.pruned_through
    after = f" after the retention job's signed cut at record {cut}" if cut else ""
    if report.ok:
        print(f"audit log intact: {report.checked} records{after}{against}")
        return 0
    print(f"audit log broken at record {report.broken_seq}: {report.reason} ({report.checked} records before it hold)")
    return 1


async def _audit_rechain(settings: Settings) -> int:
    from vault.audit import AuditAppendFailed, rechain
    from vault.keys import load_audit_key

    engine = create_engine(settings.database_url)
    try:
        count = await rechain(engine, load_audit_key(settings))
    except AuditAppendFailed as problem:
        print(f"audit log not re-chained: {problem}")
        return 1
    finally:
        await engine.dispose()
    print(f"audit log re-chained under the audit key: {count} records")
    return 0


def _integration(settings: Settings, args: argparse.Namespace) -> int:
    from commerce.events.webhooks import WebhookConfigError
    from gateway import integration

    if args.command == "stock":
        return asyncio.run(integration.import_stock(settings, args.file, args.actor))
    if args.events_command == "status":
        return asyncio.run(integration.event_status(settings))
    if args.events_command == "retry-dead":
        return asyncio.run(integration.retry_dead_letters(settings, args.endpoint))
    if args.events_command == "prune":
        return asyncio.run(integration.prune_events(settings, args.days))
    try:
        return asyncio.run(integration.relay_events(settings, once=args.once, stdout=args.stdout))
    except WebhookConfigError as exc:
        print(f"cannot relay: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="Omnigate commerce gateway. Settings come from OMNIGATE_* variables (README: Settings).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve GraphQL on OMNIGATE_HOST:OMNIGATE_PORT")
    serve.add_argument("--host", help="the address to listen on (default: OMNIGATE_HOST, 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="the TCP port to listen on; 0 picks a free one (default: OMNIGATE_PORT, 8000)"
    )
    serve.add_argument(
        "--demo", action="store_true", help="migrate and seed demo data first (if the database is empty)"
    )
    serve.add_argument(
        "--workers", type=_positive, default=1, help="worker processes on this machine (PostgreSQL only; default: 1)"
    )
    commands.add_parser("migrate", help="upgrade the database schema (Alembic)")
    seed = commands.add_parser("seed", help="fill an empty database with demo data")
    seed.add_argument("--products", type=_positive, default=200, help="how many demo products (default: 200)")
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
    commands.add_parser("expire-points", help="expire loyalty points past their date, oldest first (idempotent)")
    recommend = commands.add_parser("recommendations", help="personalization: the co-purchase statistics")
    recommend.add_argument(
        "action",
        choices=["rebuild"],
        help="rebuild: recount from the orders of customers who consent to PERSONALIZATION now "
        "(removes a withdrawn customer's contribution; idempotent, run it from cron)",
    )
    commands.add_parser("expire-carts", help="delete guest carts idle longer than OMNIGATE_GUEST_CART_TTL_SECONDS")
    commands.add_parser(
        "expire-reservations",
        help="release reserve & collect orders past reservedUntil and checkouts stuck waiting for payment "
        "(idempotent: run it from cron on every replica)",
    )
    payments = commands.add_parser("payments", help="payment calls (capture, void, refund) orders made due")
    payment_commands = payments.add_subparsers(dest="payments_command", required=True)
    payment_commands.add_parser("retry", help="make the calls the provider refused before, if due (cron; idempotent)")
    token = commands.add_parser("token", help="mint an access token for an operator or a test")
    token.add_argument(
        "--role",
        required=True,
        choices=["customer", "staff", "agent", "dpo", "admin", "integration"],
        help="whom the token speaks for",
    )
    token.add_argument("--customer", help="the customer's ID, global or its number (for --role customer)")
    token.add_argument("--subject", help="the operator's or system's name (default: the role)")
    token.add_argument("--location", help="the store's code, one of the database's locations (for --role staff)")
    token.add_argument("--ttl", type=_positive, default=3600, help="seconds until it expires (default: 3600)")
    commands.add_parser(
        "audit-verify",
        help="check the audit log's keyed chain and its latest signed checkpoint; exit 1 at the first broken record",
    )
    commands.add_parser(
        "audit-rechain",
        help="once, after upgrading: key a chain written with unkeyed SHA-256 (refused if that chain is broken)",
    )
    events = commands.add_parser("events", help="the outbox: relay events to webhooks, see or retry what is stuck")
    event_commands = events.add_subparsers(dest="events_command", required=True)
    relay = event_commands.add_parser("relay", help="deliver outbox events to the endpoints in OMNIGATE_WEBHOOKS_FILE")
    relay.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    relay.add_argument("--stdout", action="store_true", help="print events as JSON lines instead of calling webhooks")
    event_commands.add_parser("status", help="undelivered events per endpoint (pending, dead-lettered)")
    retry = event_commands.add_parser("retry-dead", help="put dead-lettered deliveries back in line")
    retry.add_argument("--endpoint", help="only this endpoint's (default: all)")
    prune = event_commands.add_parser("prune", help="delete delivered events older than --days (never pending or dead)")
    prune.add_argument("--days", type=_positive, default=30, help="age in days (default: 30)")
    stock = commands.add_parser("stock", help="stock from the ERP/WMS")
    stock_commands = stock.add_subparsers(dest="stock_command", required=True)
    stock_import = stock_commands.add_parser(
        "import", help="apply on-hand counts from a CSV (sku,location_code,on_hand)"
    )
    stock_import.add_argument("file", type=Path, help="the CSV file")
    stock_import.add_argument("--actor", default="stock-import", help="who the stock movements name")
    mail = commands.add_parser("mail", help="the email outbox")
    mail_commands = mail.add_subparsers(dest="mail_command", required=True)
    send = mail_commands.add_parser("send", help="send the due messages once over SMTP (OMNIGATE_SMTP_*)")
    send.add_argument("--limit", type=_positive, default=100, help="at most this many messages")
    _privacy_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a setting it cannot work with is one line on stderr and exit status 2."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
        warn_unknown_variables()
        return _run(args, settings)
    except (StartupError, SettingsError) as exc:
        print(f"Omnigate cannot start: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from policies.access import PolicyError
    from policies.limits import LimitsError
    from policies.loyalty import LoyaltyPolicyError
    from vault.keys import KeyConfigError

    if args.command == "serve":
        host_from = "OMNIGATE_HOST" if args.host is None else "--host"
        port_from = "OMNIGATE_PORT" if args.port is None else "--port"
        settings = settings.replace(
            host=settings.host if args.host is None else args.host,
            port=settings.port if args.port is None else args.port,
        )
        try:
            from gateway.serving import run

            if args.workers > 1:
                _serve_workers(settings, args.workers, demo=args.demo)
            else:
                run(_serve(settings, demo=args.demo, host_from=host_from, port_from=port_from))
        except (PolicyError, LimitsError, LoyaltyPolicyError, KeyConfigError) as exc:
            print(f"Omnigate cannot start: {exc}", file=sys.stderr)
            return 2
    elif args.command == "migrate":
        asyncio.run(_checked(settings, _migrate(settings), create_sqlite_dir=True))
        print("database is up to date")
    elif args.command == "expire-carts":
        print(f"deleted {asyncio.run(_checked(settings, _expire_carts(settings)))} expired guest carts")
    elif args.command == "recommendations":
        print(asyncio.run(_checked(settings, _rebuild_recommendations(settings))))
    elif args.command == "expire-points":
        print(f"expired {asyncio.run(_checked(settings, _expire_points(settings)))} loyalty points")
    elif args.command == "expire-reservations":
        print(asyncio.run(_checked(settings, _expire_reservations(settings))))
    elif args.command == "payments":
        print(asyncio.run(_checked(settings, _retry_payments(settings))))
    elif args.command == "token":
        print(_mint(settings, args))
    elif args.command == "rotate-kek":
        new_version = not args.no_new_version and not settings.kek.strip()
        asyncio.run(_checked(settings, _rotate_kek(settings, new_version=new_version, retire=args.retire)))
    elif args.command == "seed":
        asyncio.run(_checked(settings, _migrate_and_seed(settings, args.products), create_sqlite_dir=True))
    elif args.command == "audit-verify":
        return asyncio.run(_checked(settings, _audit_verify(settings)))
    elif args.command == "audit-rechain":
        return asyncio.run(_checked(settings, _audit_rechain(settings)))
    elif args.command in ("dsr", "retention", "ropa", "backup", "restore"):
        return _privacy(settings, args)
    elif args.command in {"events", "stock"}:
        return _integration(settings, args)
    elif args.command == "mail":
        asyncio.run(_checked(settings, _mail_send(settings, args.limit)))
    return 0


async def _migrate_and_seed(settings: Settings, products: int) -> None:
    await _migrate(settings)
    await _seed(settings, products)


async def _checked(settings: Settings, work: Coroutine[Any, Any, T], *, create_sqlite_dir: bool = False) -> T:
    """`work`, once the database answered (else StartupError instead of a driver's traceback)."""
    try:
        if create_sqlite_dir:
            _ensure_sqlite_dir(settings.database_url)
        await check_database(settings)
    except BaseException:
        work.close()
        raise
    return await work


def _privacy_commands(commands: Any) -> None:
    dsr = commands.add_parser("dsr", help="data-subject requests (the DPO): export, erase, list, run")
    dsr_commands = dsr.add_subparsers(dest="dsr_command", required=True)
    export = dsr_commands.add_parser("export", help="print everything held about a person as JSON (Art. 15, 20)")
    export.add_argument("--email", required=True, help="found by blind index, never printed; '-' reads stdin")
    export.add_argument("--operator", help="who runs it, for the audit log (default: cli:<user>)")
    erase = dsr_commands.add_parser("erase", help="erase a person (Art. 17); prints what is retained and why")
    erase.add_argument("--email", required=True, help="found by blind index, never printed; '-' reads stdin")
    erase.add_argument("--confirm", action="store_true", help="erasure cannot be undone")
    erase.add_argument("--operator", help="who runs it, for the audit log (default: cli:<user>)")
    listing = dsr_commands.add_parser("list", help="requests, newest first")
    listing.add_argument("--overdue", action="store_true", help="only open requests past their due date")
    dsr_commands.add_parser("run", help="finish every interrupted or queued request (each step idempotent)")
    retention = commands.add_parser("retention", help="the retention job (policies/retention.toml)")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True)
    run = retention_commands.add_parser("run", help="delete what outlived its period; prints counts per category")
    run.add_argument("--dry-run", action="store_true", help="count only; change nothing")
    ropa = commands.add_parser("ropa", help="the record of processing activities (Art. 30) from the policy files")
    ropa.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    backup = commands.add_parser("backup", help="a consistent copy of the SQLite database (PostgreSQL: pg_dump)")
    backup.add_argument("file")
    restore = commands.add_parser(
        "restore", help="restore a backup, then replay the erasure ledger (run before serving)"
    )
    restore.add_argument("file", nargs="?")
    restore.add_argument("--replay-only", action="store_true", help="after pg_restore: only replay the ledger")


def _privacy(settings: Settings, args: argparse.Namespace) -> int:
    from gateway import privacy_cli as cli

    if args.command == "dsr":
        if args.dsr_command == "export":
            return asyncio.run(cli.dsr_export(settings, args.email, operator=args.operator))
        if args.dsr_command == "erase":
            return asyncio.run(cli.dsr_erase(settings, args.email, confirm=args.confirm, operator=args.operator))
        if args.dsr_command == "list":
            return asyncio.run(cli.dsr_list(settings, overdue=args.overdue))
        return asyncio.run(cli.dsr_run(settings))
    if args.command == "retention":
        return asyncio.run(cli.retention_run(settings, dry_run=args.dry_run))
    if args.command == "ropa":
        return cli.ropa(settings, as_json=args.json)
    if args.command == "backup":
        return asyncio.run(cli.backup(settings, args.file))
    return asyncio.run(cli.restore(settings, args.file, replay_only=args.replay_only))


if __name__ == "__main__":
    sys.exit(main())
