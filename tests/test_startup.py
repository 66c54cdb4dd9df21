"""Start-up and the command line: a bad setting is one line naming it, exit status 2, no traceback."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from gateway.__main__ import _parser
from tests.live_server import ROOT, gateway_process

TIMEOUT = 60


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` with only these OMNIGATE_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMNIGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], variable: str, problem: str) -> str:
    """Asserts exit 2 and one line on stderr naming `variable` and saying `problem`; returns the line."""
    lines = [line for line in result.stderr.splitlines() if "WARNING" not in line]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and problem in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def sqlite_env(tmp_path) -> dict[str, str]:
    return {
        "OMNIGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gate.db'}",
        "OMNIGATE_KEK_FILE": str(tmp_path / "kek.json"),
        "OMNIGATE_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused at once, and nobody can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_database_url_that_does_not_parse(sqlite_env):
    line = refused(
        run("serve", **{**sqlite_env, "OMNIGATE_DATABASE_URL": "postgres//secret-password@db"}),
        "OMNIGATE_DATABASE_URL",
        "does not parse",
    )
    assert "secret-password" not in line  # a URL may hold a password: it is never repeated


def test_an_unreachable_database(closed_port):
    url = f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{closed_port}/nowhere"
    line = refused(run("serve", OMNIGATE_DATABASE_URL=url), "OMNIGATE_DATABASE_URL", "cannot reach")
    assert f"127.0.0.1:{closed_port}" in line and "hunter2" not in line


def test_an_unreachable_sqlite_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    url = f"sqlite+aiosqlite:///{tmp_path / 'file' / 'gate.db'}"
    refused(run("serve", OMNIGATE_DATABASE_URL=url), "OMNIGATE_DATABASE_URL", "cannot reach")


def test_a_database_driver_that_is_not_installed(sqlite_env):
    refused(
        run("migrate", **{**sqlite_env, "OMNIGATE_DATABASE_URL": "oracle+nothing://db/x"}),
        "OMNIGATE_DATABASE_URL",
        "no database driver",
    )


def test_a_port_in_use(sqlite_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused(
            run("serve", **sqlite_env, OMNIGATE_PORT=str(port)), "OMNIGATE_PORT", f"port {port} on 127.0.0.1 is in use"
        )
        refused(run("serve", "--port", str(port), **sqlite_env), "--port", "is in use")


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("OMNIGATE_PORT", "eighty", "must be a whole number, not 'eighty'"),
        ("OMNIGATE_PORT", "70000", "70000 is not a TCP port"),
        ("OMNIGATE_DATABASE_POOL_SIZE", "1.5", "must be a whole number"),
        ("OMNIGATE_GRAPHIQL", "perhaps", "must be true or false"),
    ],
)
def test_a_bad_number_or_flag(sqlite_env, variable, value, problem):
    refused(run("serve", **{**sqlite_env, variable: value}), variable, problem)


def test_an_unknown_variable_is_a_warning_naming_the_nearest_setting(sqlite_env):
    result = run("migrate", **sqlite_env, OMNIGATE_PROT="9000", OMNIGATE_DATABSE_URL="x")
    assert result.returncode == 0, result.stderr
    assert "OMNIGATE_PROT is not an Omnigate setting and is ignored; did you mean OMNIGATE_PORT?" in result.stderr
    assert "did you mean OMNIGATE_DATABASE_URL?" in result.stderr


def test_token_refuses_an_unknown_location_and_a_ttl_that_is_not_positive(sqlite_env):
    assert run("migrate", **sqlite_env).returncode == 0
    assert run("seed", "--products", "2", **sqlite_env).returncode == 0
    line = refused(
        run("token", "--role", "staff", "--location", "ST-NOWHERE", **sqlite_env), "--location", "ST-NOWHERE"
    )
    assert "ST-WAW" in line  # the codes it knows
    minted = run("token", "--role", "staff", "--location", "ST-WAW", **sqlite_env)
    assert minted.returncode == 0 and minted.stdout.count(".") == 2  # a JWT
    for ttl in ("0", "-5"):
        result = run("token", "--role", "agent", "--ttl", ttl, **sqlite_env)
        assert result.returncode == 2 and "--ttl" in result.stderr and "must be above zero" in result.stderr


def test_every_option_of_every_command_has_help_text():
    parser = _parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(commands.choices) >= {"serve", "migrate", "seed", "token", "rotate-kek", "audit-verify"}
    missing = [
        f"{name} {action.option_strings}"
        for name, command in commands.choices.items()
        for action in command._actions
        if action.option_strings and not action.help
    ]
    assert not missing
    assert all(choice.help for choice in commands._choices_actions)


async def test_serve_prints_its_address_only_once_it_listens_and_the_database_answered(settings, tmp_path):
    env = {
        "OMNIGATE_DATABASE_URL": settings.database_url,
        "OMNIGATE_KEK_FILE": str(tmp_path / "kek.json"),
        "OMNIGATE_JWT_SECRET": settings.jwt_secret,
        "OMNIGATE_LOG_LEVEL": "WARNING",
    }
    async with gateway_process(env) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        # --port 0: the port printed is the one bound; asked once, without retry or wait
        response = await client.post("/graphql", json={"query": "{ channels { code } }"})
    assert response.status_code == 200 and response.json()["data"]["channels"]
