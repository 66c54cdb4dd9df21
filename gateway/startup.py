"""Start-up checks: a bad setting is one line naming the variable and what is wrong, never a traceback.

Each check raises `StartupError`; the command line prints it and exits with status 2.
"""

from __future__ import annotations

import errno
import logging
import socket
import sqlite3
from collections.abc import Mapping

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from core.db import create_engine, ping
from core.settings import Settings, unknown_variables
from gateway.serving import bind

__all__ = ["StartupError", "check_database", "check_port", "database_url", "listen", "warn_unknown_variables"]

log = logging.getLogger("omnigate.startup")
DATABASE_URL = Settings.variable("database_url")


class StartupError(Exception):
    """A setting the gateway cannot start with: `variable` names it, the message says what is wrong."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def database_url(raw: str) -> URL:
    """The parsed URL, or StartupError (the message never repeats the URL: it may hold a password)."""
    try:
        return make_url(raw)
    except ArgumentError:
        raise StartupError(
            DATABASE_URL, "does not parse as a database URL (expected dialect+driver://user@host/name)"
        ) from None


async def check_database(settings: Settings) -> None:
    """Connect and run `SELECT 1` within `database_timeout_seconds`, or raise StartupError saying why not."""
    url = database_url(settings.database_url)
    shown = url.render_as_string(hide_password=True)
    try:
        engine = create_engine(settings.database_url)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise StartupError(DATABASE_URL, f"{shown}: no database driver for {url.drivername!r} ({exc})") from None
    timeout = settings.database_timeout_seconds
    if url.get_backend_name() == "sqlite":
        await engine.dispose()
        _check_sqlite_file(url.database or ":memory:", shown)
        return
    try:
        await ping(engine, timeout)
    except TimeoutError:
        raise StartupError(DATABASE_URL, f"{shown} did not answer within {timeout:g} s") from None
    except (OSError, DBAPIError) as exc:
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        reason = (str(cause).strip().splitlines() or [""])[0]
        raise StartupError(DATABASE_URL, f"cannot reach {shown}: {type(cause).__name__}: {reason}") from None
    finally:
        await engine.dispose()


def _check_sqlite_file(path: str, shown: str) -> None:
    """Open the file with the standard library: aiosqlite's thread would outlive a failed check's
    event loop (and print a traceback of its own when the command exits)."""
    try:
        connection = sqlite3.connect(path, timeout=1)
        try:
            connection.execute("SELECT 1")
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise StartupError(DATABASE_URL, f"cannot reach {shown}: {type(exc).__name__}: {exc}") from None


def check_port(port: int, port_from: str) -> None:
    if not 0 <= port <= 65535:
        raise StartupError(port_from, f"{port} is not a TCP port (0-65535; 0 picks a free one)")


def listen(host: str, port: int, *, host_from: str, port_from: str) -> socket.socket:
    """The bound socket, or StartupError naming where the host or port came from (variable or option)."""
    check_port(port, port_from)
    try:
        return bind(host, port)
    except socket.gaierror as exc:
        raise StartupError(host_from, f"{host!r} is not an address of this machine ({exc.strerror})") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(port_from, f"port {port} on {host} is in use by another process") from None
        if exc.errno == errno.EACCES:
            raise StartupError(port_from, f"port {port} needs privileges this process does not have") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise StartupError(host_from, f"{host!r} is not an address of this machine") from None
        raise StartupError(port_from, f"cannot listen on {host}:{port}: {exc.strerror}") from None


def warn_unknown_variables(env: Mapping[str, str] | None = None) -> None:
    """A typo in a variable's name would otherwise silently leave the default in force."""
    for name, nearest in unknown_variables(env):
        hint = f"; did you mean {nearest}?" if nearest else ""
        log.warning("%s is not an Omnigate setting and is ignored%s", name, hint)
