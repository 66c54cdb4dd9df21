"""totalCount is counted once per filter, and again after the catalog changes."""

from __future__ import annotations

from sqlalchemy import update

from commerce.catalog.models import Product
from tests.conftest import StatementCounter

PAGE = "query($after: String) { products(first: 5, after: $after) { totalCount pageInfo { endCursor } } }"


async def test_paging_counts_once_and_a_catalog_change_counts_again(gql, engine):
    first = (await gql.data(PAGE))["products"]
    with StatementCounter(engine) as counter:
        second = (await gql.data(PAGE, {"after": first["pageInfo"]["endCursor"]}))["products"]
    assert second["totalCount"] == first["totalCount"]
    assert counter.count == 1  # the page; the count was kept
    async with engine.begin() as conn:  # a product withdrawn
        await conn.execute(update(Product).where(Product.id == 1).values(published=False))
    assert (await gql.data(PAGE))["products"]["totalCount"] == first["totalCount"] - 1
