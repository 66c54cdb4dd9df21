"""A query reads through one pooled connection in one transaction, whatever number of loaders it runs."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from sqlalchemy import event

from core.db import on_every_statement, reader
from tests.catalog.test_storefront import STOREFRONT


class PoolWatch:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.checkouts = 0
        self.statements: list[str] = []

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1

    def _execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> PoolWatch:
        event.listen(self.engine.sync_engine, "checkout", self._checkout)  # the pool both engines share
        self._listening = ExitStack()
        self._listening.enter_context(on_every_statement(self.engine, self._execute))
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.engine.sync_engine, "checkout", self._checkout)
        self._listening.close()


async def test_the_storefront_query_takes_one_connection_and_sends_only_its_selects(gql, engine):
    await gql.data("{ channels { code } }")  # warm the channel directory
    with PoolWatch(engine) as watch:
        data = await gql.data(STOREFRONT, {"first": 7})
    assert len(data["products"]["edges"]) == 7
    assert watch.checkouts == 1
    # one statement per kind of data (page, count, categories, variants, prices, stock, locations),
    # and on PostgreSQL the count's estimate first (EXPLAIN, in a savepoint)
    assert all(
        s.lstrip().upper().startswith(("SELECT", "BEGIN", "EXPLAIN", "SAVEPOINT", "RELEASE")) for s in watch.statements
    )
    assert len([s for s in watch.statements if s.lstrip().upper().startswith("SELECT")]) == 7


async def test_a_mutation_does_not_read_through_a_read_only_transaction(gql):
    created = await gql.data("mutation { cartCreate { cart { id lines { id } } userErrors { code } } }")
    assert created["cartCreate"]["userErrors"] == []


async def test_a_querys_reads_pass_none_of_the_engines_statement_listeners_and_a_write_does(gql, engine):
    """Reads run on the engine's reader (core/db.py): the response cache's write watcher (an engine
    listener) costs a read nothing, and still sees every write."""
    await gql.data("{ channels { code } }")  # warm the channel directory (read once, outside any query's scope)
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.lstrip().upper())

    event.listen(engine.sync_engine, "after_cursor_execute", on_execute)  # where gateway/caching.py listens
    try:
        await gql.data(STOREFRONT, {"first": 3})
        assert seen == []
        await gql.data("mutation { cartCreate { cart { id } userErrors { code } } }")
        assert any(s.startswith("INSERT INTO CARTS") for s in seen), seen
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", on_execute)


async def test_after_the_engine_is_disposed_reads_take_its_new_pool_and_keep_their_listeners(gql, engine):
    reads = reader(engine)
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(reads.sync_engine, "before_cursor_execute", on_execute)  # as telemetry's SQL spans do, once
    try:
        await engine.dispose()  # a new pool
        data = await gql.data(STOREFRONT, {"first": 2})
        assert len(data["products"]["edges"]) == 2
        assert reader(engine) is reads and reads.sync_engine.pool is engine.sync_engine.pool
        assert any(s.lstrip().upper().startswith("SELECT") for s in seen)
    finally:
        event.remove(reads.sync_engine, "before_cursor_execute", on_execute)
