"""HTTP caching of public reads: max-age from the cache hints, ETag/304, no-store for anything
personal, and the response cache emptied when the stock changes."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
import pytest
from sqlalchemy import update

from commerce.inventory.models import StockLevel
from core.settings import Settings
from gateway.app import create_app
from gateway.runtime import build_runtime
from tests.conftest import StatementCounter

NAMES = "{ products(first: 3) { edges { node { name slug } } } }"
PRICES = "{ products(first: 3) { edges { node { name variants { price { amount } } } } } }"
STOCK = '{ product(slug: "product-1") { variants { sku quantityAvailable } } }'


async def post(http: httpx.AsyncClient, query: str, **headers: str) -> httpx.Response:
    return await http.post("/graphql", json={"query": query}, headers=headers)


async def test_an_anonymous_answer_is_public_for_the_smallest_hint_it_touched(http: httpx.AsyncClient):
    assert (await post(http, NAMES)).headers["cache-control"] == "public, max-age=300"  # catalog
    assert (await post(http, PRICES)).headers["cache-control"] == "public, max-age=60"  # prices
    assert (await post(http, STOCK)).headers["cache-control"] == "public, max-age=5"  # stock


async def test_the_same_answer_again_is_304_not_modified_by_its_etag(http: httpx.AsyncClient):
    first = await post(http, NAMES)
    etag = first.headers["etag"]
    again = await post(http, NAMES, **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = await post(http, NAMES, **{"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.json() == first.json()
    by_get = await http.get("/graphql", params={"query": NAMES}, headers={"If-None-Match": etag})
    assert by_get.status_code == 304


async def test_anything_personal_is_private_no_store(http: httpx.AsyncClient, token_for):
    signed_in = await http.post("/graphql", json={"query": NAMES}, headers=token_for("customer", subject="1"))
    assert signed_in.headers["cache-control"] == "private, no-store"
    assert "etag" not in signed_in.headers
    cart = await post(http, '{ cart(id: "Q2FydDox") { id } }')
    assert cart.headers["cache-control"] == "private, no-store"
    me = await post(http, "{ me { email } }")
    assert me.headers["cache-control"] == "private, no-store"
    mixed = await post(http, '{ products(first: 1) { edges { cursor } } cart(id: "Q2FydDox") { id } }')
    assert mixed.headers["cache-control"] == "private, no-store"
    mutation = await post(http, "mutation { cartCreate { cart { id } } }")
    assert mutation.headers["cache-control"] == "private, no-store"


@pytest.fixture
async def cached_http(settings: Settings):
    runtime = build_runtime(settings.replace(response_cache=True))
    app = create_app(runtime.settings, runtime=runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, runtime
    await runtime.aclose()


async def test_the_response_cache_answers_without_sql_until_the_stock_changes(cached_http):
    http, runtime = cached_http
    engine = runtime.services.engine
    first = (await post(http, STOCK)).json()
    await asyncio.sleep(0.05)  # the cache's watcher subscribes to catalog changes
    with StatementCounter(engine) as counter:
        assert (await post(http, STOCK)).json() == first
    assert counter.count == 0  # from the cache
    sku = first["data"]["product"]["variants"][0]["sku"]
    async with engine.begin() as conn:  # a stock change, as any writer would make it
        await conn.execute(update(StockLevel).values(on_hand=StockLevel.reserved + 1000))
    for _ in range(100):  # the change travels through the broadcast (NOTIFY on PostgreSQL)
        answer = (await post(http, STOCK)).json()
        if answer != first:
            break
        await asyncio.sleep(0.05)
    variant = answer["data"]["product"]["variants"][0]
    assert variant["sku"] == sku
    assert variant["quantityAvailable"] >= 1000


async def test_the_redis_response_cache_is_shared_and_emptied_on_a_stock_change(settings: Settings):
    """Two replicas (runtimes) on one Redis: one fills the cache, the other answers from it; a
    deployment with another OMNIGATE_REDIS_PREFIX on the same Redis does not."""
    import redis.asyncio as redis

    url = "redis://127.0.0.1:6379/15"
    try:
        await redis.Redis.from_url(url).ping()
    except (OSError, redis.ConnectionError):
        if os.environ.get("CI"):  # .ci/run starts Redis: in CI its absence is a failure
            pytest.fail("CI needs Redis at 127.0.0.1:6379")
        pytest.skip("no Redis on 127.0.0.1:6379")
    # Both replicas are one deployment: one prefix, shared by them and by no other run's test.
    settings = settings.replace(response_cache=True, redis_url=url, redis_prefix=f"omnigate-test:{uuid.uuid4().hex}:")
    first_replica = build_runtime(settings)
    second_replica = build_runtime(settings)
    other_deployment = build_runtime(settings.replace(redis_prefix=f"omnigate-test:{uuid.uuid4().hex}:"))
    assert first_replica.response_cache is not None
    await first_replica.response_cache.clear()
    try:
        apps = [create_app(r.settings, runtime=r) for r in (first_replica, second_replica, other_deployment)]
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url="http://a") as a,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url="http://b") as b,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[2]), base_url="http://c") as c,
        ):
            first = (await post(a, STOCK)).json()
            for client in (b, c):
                await post(client, "{ channels { code } }")  # warm the replica's channel directory
            with StatementCounter(second_replica.services.engine) as counter:
                assert (await post(b, STOCK)).json() == first
            assert counter.count == 0  # the second replica answered from Redis
            with StatementCounter(other_deployment.services.engine) as counter:
                assert (await post(c, STOCK)).json() == first
            assert counter.count > 0  # another deployment (prefix) on the same Redis does not share its answers
            async with first_replica.services.engine.begin() as conn:
                await conn.execute(update(StockLevel).values(on_hand=StockLevel.reserved + 2000))
            for _ in range(100):
                answer = (await post(b, STOCK)).json()
                if answer != first:
                    break
                await asyncio.sleep(0.05)
            assert answer["data"]["product"]["variants"][0]["quantityAvailable"] >= 2000
    finally:
        await first_replica.aclose()
        await second_replica.aclose()
        await other_deployment.aclose()
