"""A query reads through one pooled connection in one transaction, whatever number of loaders it runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

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
        event.listen(self.engine.sync_engine, "checkout", self._checkout)
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._execute)
        return self

    def __exit__(self, *_: Any) -> None:
        event.remove(self.engine.sync_engine, "checkout", self._checkout)
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._execute)


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
