"""A client going away mid-query cancels the work like asyncio Tasks are cancelled: cleanup runs,
and every pooled connection goes back to the pool."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from core.db import on_every_statement
from tests.schema.test_compiled_queries import BENCH_QUERY


@pytest.mark.parametrize("statements_before_leaving", [1, 2, 3, 4])
async def test_a_disconnect_mid_query_returns_the_connection_to_the_pool(
    http: httpx.AsyncClient, engine: Any, statements_before_leaving: int
):
    await http.post("/graphql", json={"query": "{ channels { code } }"})  # warm the channel directory
    sent = 0
    reached = asyncio.Event()

    def on_execute(*_: Any) -> None:
        nonlocal sent
        sent += 1
        if sent >= statements_before_leaving:
            reached.set()

    with on_every_statement(engine, on_execute):
        request = asyncio.ensure_future(http.post("/graphql", json={"query": BENCH_QUERY, "variables": {"first": 24}}))
        await asyncio.wait_for(reached.wait(), 10)
        request.cancel()  # the client is gone
        with pytest.raises(asyncio.CancelledError):
            await request
    for _ in range(50):
        if engine.sync_engine.pool.checkedout() == 0:
            break
        await asyncio.sleep(0.02)
    assert engine.sync_engine.pool.checkedout() == 0
    answer = await http.post("/graphql", json={"query": BENCH_QUERY, "variables": {"first": 2}})
    assert len(answer.json()["data"]["products"]["edges"]) == 2  # and the gateway still answers
