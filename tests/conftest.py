"""Fixtures: a fresh migrated and seeded database per test, the app, and a GraphQL client."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx
import pytest
from argon2 import PasswordHasher, profiles
from sqlalchemy.ext.asyncio import AsyncEngine

from commerce.customers import passwords
from core.clock import FrozenClock
from core.db import on_every_statement
from core.settings import Settings
from gateway.app import create_app
from gateway.runtime import Runtime, build_runtime
from gateway.seed import seed
from tests.database import TEST_PRODUCTS, TemplateDatabase, database_url_from_env

# Fixed vault keys, the same for the template's seed and every test's runtime (so the demo
# customer decrypts). Test-only values: never use them anywhere else.
TEST_VAULT_KEYS: dict[str, Any] = {
    "kek": "1:" + base64.b64encode(b"omnigate-test-kek-v1-32-bytes!!!").decode(),
    "blind_index_key": base64.b64encode(b"omnigate-test-blind-index-key-32").decode(),
    "audit_key": base64.b64encode(b"omnigate-test-audit-chain-key-32").decode(),
}


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2id at its cheapest parameters in tests: at the real ones a hash or a check costs ~0.2 s
    on CI's 2-core machine, and a run makes hundreds (every registration and sign-in).

    Only the cost changes: the algorithm, the stored format and the code paths are the production
    ones, and a server a test starts as a subprocess hashes at the real parameters.
    """
    cheap = PasswordHasher.from_parameters(profiles.CHEAPEST)
    with (
        patch.object(passwords, "_hasher", cheap),
        patch.object(passwords, "_DUMMY_HASH", cheap.hash("omnigate-no-such-account")),
    ):
        yield


@pytest.fixture(scope="session")
async def template_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TemplateDatabase]:
    template = TemplateDatabase(database_url_from_env(), Path(tmp_path_factory.mktemp("db")))
    try:
        # in chunks smaller than the catalog, so every test reads data written across chunk boundaries
        settings = Settings(**TEST_VAULT_KEYS)
        await template.build(lambda engine: seed(engine, products=TEST_PRODUCTS, settings=settings, chunk=25))
    except OSError as exc:  # PostgreSQL unreachable
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable in CI: {exc}")
        raise
    yield template
    await template.close()


@pytest.fixture
async def database_url(template_db: TemplateDatabase) -> AsyncIterator[str]:
    url = await template_db.copy()
    yield url
    await template_db.drop(url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        kek_file=str(tmp_path / "kek.json"),
        erasure_ledger_file=str(tmp_path / "erasure-ledger.jsonl"),
        audit_checkpoint_file=str(tmp_path / "audit-checkpoints.jsonl"),
        **TEST_VAULT_KEYS,
        jwt_secret="test-secret-0123456789-0123456789-0123456789",
    )


@pytest.fixture
async def runtime(settings: Settings, clock: FrozenClock) -> AsyncIterator[Runtime]:
    runtime = build_runtime(settings, clock)
    yield runtime
    await runtime.aclose()


@pytest.fixture
def engine(runtime: Runtime) -> AsyncEngine:
    return runtime.services.engine


class GraphQLClient:
    """Posts GraphQL over HTTP to the app in-process; `headers` go on every request."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
        self.http = http
        self.headers = headers or {}

    def with_headers(self, **headers: str) -> GraphQLClient:
        return GraphQLClient(self.http, {**self.headers, **{k.replace("_", "-"): v for k, v in headers.items()}})

    async def post(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers, **kwargs
        )

    async def execute(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """The response body; fails the test on a non-200 status."""
        response = await self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """The `data` of a response that must have no errors."""
        body = await self.execute(query, variables, **kwargs)
        assert not body.get("errors"), body["errors"]
        return body["data"]


@pytest.fixture
async def http(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings, runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


class GatewayBuilder:
    """Builds gateways with changed settings: `http = await gateway(graphiql=False)`.

    `runtime` is the last one built (to tune what no setting reaches); all are closed at teardown.
    """

    def __init__(self, settings: Settings, clock: Any) -> None:
        self.settings, self.clock = settings, clock
        self.opened: list[tuple[Runtime, httpx.AsyncClient]] = []

    @property
    def runtime(self) -> Runtime:
        return self.opened[-1][0]

    async def __call__(self, **changes: Any) -> httpx.AsyncClient:
        runtime = build_runtime(self.settings.replace(**changes), self.clock)
        app = create_app(runtime.settings, runtime=runtime)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        self.opened.append((runtime, client))
        return client


@pytest.fixture
async def gateway(settings: Settings, clock: Any) -> AsyncIterator[GatewayBuilder]:
    builder = GatewayBuilder(settings, clock)
    yield builder
    for runtime, client in builder.opened:
        await client.aclose()
        await runtime.aclose()


class CompilerSpy:
    """Wraps the compiler's `try_execute` to record, per request, whether it answered."""

    def __init__(self, runtime: Runtime) -> None:
        self.answered: list[bool] = []
        compiler = runtime.executor.compiler
        assert compiler is not None, "compiled_queries is on by default"
        original = compiler.try_execute

        async def try_execute(*args: Any) -> Any:
            result = await original(*args)
            self.answered.append(result is not None)
            return result

        compiler.try_execute = try_execute


@pytest.fixture
def spy(runtime: Runtime) -> CompilerSpy:
    return CompilerSpy(runtime)


class StatementCounter:
    """Counts SQL statements sent through an engine (to prove there is no N+1)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.count = 0

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):  # SQLite's explicit BEGIN is not a query
            self.count += 1

    def __enter__(self) -> StatementCounter:
        self._listening = ExitStack()
        self._listening.enter_context(on_every_statement(self.engine, self._on_execute))
        return self

    def __exit__(self, *_: Any) -> None:
        self._listening.close()


@pytest.fixture
def count_statements(engine: AsyncEngine) -> StatementCounter:
    return StatementCounter(engine)


@pytest.fixture
def token_for(runtime: Runtime):
    """Mints a bearer header for a role: `token_for("staff", location="ST-WAW")`."""
    from datetime import timedelta

    from policies.principal import Principal, Role

    def mint(role: str, subject: str | None = None, location: str | None = None, ttl: int = 3600) -> dict[str, str]:
        principal = Principal(role=Role(role), subject=subject or role, location=location)
        return {"Authorization": f"Bearer {runtime.tokens.issue(principal, timedelta(seconds=ttl)).token}"}

    return mint
