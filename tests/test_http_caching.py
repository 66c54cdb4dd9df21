"""HTTP caching of public reads: max-age from the cache hints, ETag/304, no-store for anything
personal, and the response cache emptied when the stock changes, never refilled from before."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, update

import gateway.graphql_http as graphql_http
from commerce.cart.models import CartRow
from commerce.catalog.models import Location
from commerce.inventory.models import StockLevel
from commerce.pricing.models import Price
from core.db import create_engine
from core.settings import Settings
from gateway.app import create_app
from gateway.caching import CachedResponse, InProcessResponseCache
from gateway.runtime import Runtime, build_runtime
from tests.conftest import StatementCounter

NAMES = "{ products(first: 3) { edges { node { name slug } } } }"
PRICES = "{ products(first: 3) { edges { node { name variants { price { amount } } } } } }"
STOCK = '{ product(slug: "product-1") { variants { sku quantityAvailable } } }'


async def post(http: httpx.AsyncClient, query: str, **headers: str) -> httpx.Response:
    return await http.post("/graphql", json={"query": query}, headers=headers)


def max_age(response: httpx.Response) -> str:
    return response.headers["cache-control"]


async def test_an_anonymous_answer_is_public_for_the_smallest_hint_it_touched(http: httpx.AsyncClient):
    assert (await post(http, NAMES)).headers["cache-control"] == "public, max-age=300"  # catalog
    assert (await post(http, PRICES)).headers["cache-control"] == "public, max-age=60"  # prices
    assert (await post(http, STOCK)).headers["cache-control"] == "public, max-age=5"  # stock


async def test_what_reads_stock_or_prices_is_kept_no_longer_than_they_are(http: httpx.AsyncClient):
    available = '{ product(slug: "product-1") { availableForSale variants { availableForSale } } }'
    assert max_age(await post(http, available)) == "public, max-age=5"
    listing = "{ products(first: 2%s) { edges { node { name } } } }"
    assert max_age(await post(http, listing % "")) == "public, max-age=300"
    assert max_age(await post(http, listing % ', filter: {categorySlug: "lamps"}')) == "public, max-age=300"
    assert max_age(await post(http, listing % ", filter: {availableForSale: true}")) == "public, max-age=5"
    assert max_age(await post(http, listing % ', filter: {priceMin: "10"}')) == "public, max-age=60"
    assert max_age(await post(http, listing % ", sortKey: PRICE")) == "public, max-age=60"
    by_variable = "query($f: ProductFilter) { products(first: 2, filter: $f) { edges { node { name } } } }"
    sent = await http.post("/graphql", json={"query": by_variable, "variables": {"f": {"categorySlug": "lamps"}}})
    assert max_age(sent) == "public, max-age=5"  # the hint is per document: a variable may hold a stock filter


async def test_head_is_held_to_gets_rules_and_runs_no_mutation(http: httpx.AsyncClient, runtime: Runtime):
    async def carts() -> int:
        async with runtime.services.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(CartRow))).scalar_one())

    before = await carts()
    refused = await http.request("HEAD", "/graphql", json={"query": "mutation { cartCreate { cart { id } } }"})
    assert refused.status_code == 400  # no query in the URL
    by_url = await http.request("HEAD", "/graphql", params={"query": "mutation { cartCreate { cart { id } } }"})
    assert by_url.status_code == 405
    assert await carts() == before
    read = await http.request("HEAD", "/graphql", params={"query": NAMES})
    assert read.status_code == 200
    assert read.headers["etag"] == (await http.get("/graphql", params={"query": NAMES})).headers["etag"]


async def test_the_two_media_types_of_one_answer_have_two_etags(http: httpx.AsyncClient):
    as_json = await post(http, NAMES, Accept="application/json")
    as_graphql = await post(http, NAMES, Accept="application/graphql-response+json")
    assert as_json.content == as_graphql.content
    assert as_json.headers["etag"] != as_graphql.headers["etag"]
    other = await post(
        http, NAMES, Accept="application/graphql-response+json", **{"If-None-Match": as_json.headers["etag"]}
    )
    assert other.status_code == 200 and other.headers["content-type"] == "application/graphql-response+json"


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


async def test_an_answer_read_before_a_stock_change_is_not_kept_after_it(cached_http, monkeypatch):
    http, runtime = cached_http
    first = (await post(http, STOCK)).json()
    await asyncio.sleep(0.05)  # the cache's watcher subscribes to catalog changes
    runtime.response_cache.forget_all()
    read, go_on = asyncio.Event(), asyncio.Event()
    execute = graphql_http.execute_traced

    async def read_then_wait(*args: object, **kwargs: object) -> object:
        result = await execute(*args, **kwargs)  # type: ignore[arg-type]
        read.set()
        await go_on.wait()
        return result

    monkeypatch.setattr(graphql_http, "execute_traced", read_then_wait)
    in_flight = asyncio.create_task(post(http, STOCK))
    await read.wait()
    monkeypatch.setattr(graphql_http, "execute_traced", execute)
    async with runtime.services.engine.begin() as conn:  # the stock changes while that answer is on its way
        await conn.execute(update(StockLevel).values(on_hand=StockLevel.reserved + 1000))
    await asyncio.sleep(0.1)
    go_on.set()
    assert (await in_flight).json() == first  # read before the change: it may be answered once
    after = (await post(http, STOCK)).json()
    assert after["data"]["product"]["variants"][0]["quantityAvailable"] >= 1000  # but not kept


async def test_a_location_renamed_by_another_writer_empties_the_response_cache(cached_http):
    """On PostgreSQL a trigger announces any writer's change (psql, an import job); on SQLite the
    gateway announces its own (writes from another process catch up within the max-age)."""
    http, runtime = cached_http
    query = "{ locations { code name } }"
    first = (await post(http, query)).json()
    await asyncio.sleep(0.05)  # the cache's watcher subscribes to catalog changes
    on_postgres = runtime.services.engine.dialect.name == "postgresql"
    writer = create_engine(runtime.settings.database_url) if on_postgres else runtime.services.engine
    try:
        async with writer.begin() as conn:
            await conn.execute(update(Location).values(name=Location.name + " (moved)"))
    finally:
        if on_postgres:
            await writer.dispose()
    for _ in range(100):
        answer = (await post(http, query)).json()
        if answer != first:
            break
        await asyncio.sleep(0.05)
    assert all(location["name"].endswith(" (moved)") for location in answer["data"]["locations"])


async def test_the_in_process_cache_is_bounded_by_its_bytes_too():
    cache = InProcessResponseCache(max_entries=100, max_bytes=16_000)

    def answer(size: int) -> CachedResponse:
        return CachedResponse(b"x" * size, '"e"', "application/json", time.time() + 60)

    for n in range(10):
        await cache.put(f"k{n}", answer(900))
    kept = [n for n in range(10) if await cache.get(f"k{n}") is not None]
    assert sum(900 for _ in kept) <= 16_000 and kept == list(range(10))  # 9,000 bytes: all fit
    for n in range(10, 30):
        await cache.put(f"k{n}", answer(900))
    kept = [n for n in range(30) if await cache.get(f"k{n}") is not None]
    assert len(kept) * 900 <= 16_000 and kept == list(range(30 - len(kept), 30))  # the newest stay
    await cache.put("huge", answer(2_000))  # over a sixteenth of the budget: not kept at all
    assert await cache.get("huge") is None


async def test_a_price_change_shows_at_once_uncached_and_through_the_cache_within_its_max_age(
    http: httpx.AsyncClient, cached_http
):
    """Two replicas on one database: one without the response cache, one with it (issue 12)."""
    cached, runtime = cached_http
    before = (await post(http, PRICES)).json()
    through_cache = await post(cached, PRICES)
    assert through_cache.json() == before
    max_age = int(through_cache.headers["cache-control"].rsplit("=", 1)[1])
    await asyncio.sleep(0.05)  # the cache's watcher subscribes to catalog changes
    with StatementCounter(runtime.services.engine) as counter:
        assert (await post(cached, PRICES)).json() == before
    assert counter.count == 0  # from the cache
    async with runtime.services.engine.begin() as conn:  # a repricing, as any writer would make it
        await conn.execute(update(Price).where(Price.currency == "PLN").values(amount=Price.amount / 2))

    after = (await post(http, PRICES)).json()  # uncached: the next read has it
    assert after != before
    first_before = before["data"]["products"]["edges"][0]["node"]["variants"][0]["price"]["amount"]
    first_after = after["data"]["products"]["edges"][0]["node"]["variants"][0]["price"]["amount"]
    assert abs(Decimal(first_after) - Decimal(first_before) / 2) <= Decimal("0.005")  # halved, to the cent
    started = time.monotonic()
    while (answer := (await post(cached, PRICES)).json()) != after:  # the cache: emptied on the change
        assert time.monotonic() - started < max_age, "the cached answer outlived its max-age"
        await asyncio.sleep(0.05)
    assert answer == after


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
