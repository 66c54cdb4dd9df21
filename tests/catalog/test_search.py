"""`products(search:)` through the API: what a term matches, its totalCount and its pages.

The same answers on both backends: a case-insensitive substring of the product's name or of one
of its SKUs (PostgreSQL: LIKE served by pg_trgm, migration 0051; SQLite: an FTS5 trigram table,
migration 0072, or a scan for terms under three characters). Each expectation is computed here
from the whole catalog as the API lists it, so the tests hold whatever the seed.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, update

from commerce.catalog.models import Product, ProductVariant
from commerce.catalog.service import search_text

CATALOG = "query($after: String) { products(first: 100, after: $after) { pageInfo { hasNextPage endCursor } edges { node { slug name variants { sku } } } } }"
SEARCH = """query($s: String, $first: Int, $after: String, $sort: ProductSortKeys) {
  products(search: $s, first: $first, after: $after, sortKey: $sort) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { slug } } } }"""


async def _catalog(gql) -> dict[str, list[str]]:
    """slug -> the texts a search looks in (name and SKUs), for every listed product."""
    found: dict[str, list[str]] = {}
    after = None
    while True:
        page = (await gql.data(CATALOG, {"after": after}))["products"]
        for edge in page["edges"]:
            node = edge["node"]
            found[node["slug"]] = [node["name"], *(v["sku"] for v in node["variants"])]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def _search_all(gql, term: str, first: int = 100, sort: str = "ID") -> tuple[list[str], int]:
    """Every page of a search: the slugs in order, and the totalCount the first page gave."""
    slugs: list[str] = []
    total = None
    after = None
    while True:
        page = (await gql.data(SEARCH, {"s": term, "first": first, "after": after, "sort": sort}))["products"]
        total = page["totalCount"] if total is None else total
        slugs += [edge["node"]["slug"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return slugs, total
        after = page["pageInfo"]["endCursor"]


def _expected(catalog: dict[str, list[str]], term: str) -> set[str]:
    needle = term.strip().lower()
    return {slug for slug, texts in catalog.items() if any(needle in text.lower() for text in texts)}


@pytest.mark.parametrize(
    "term",
    [
        "kettle",  # a word of a name
        "KeTTLE",  # any case
        "ettl",  # inside a word
        "lamp 1",  # across words: a substring, not a set of words
        "sku-000007",  # a SKU's beginning: every variant of product 7
        "000012-m",  # inside a SKU
        "  Mug ",  # surrounding spaces do not count
        "ke",  # two characters: no trigram, still a substring
        "7",  # one character
        "%",  # not a wildcard
        "_",
        'a"b',  # quotes are characters like any other
        "no such product",
    ],
)
async def test_a_search_lists_the_products_whose_name_or_a_sku_contains_the_term(gql, term):
    catalog = await _catalog(gql)
    slugs, total = await _search_all(gql, term)
    assert set(slugs) == _expected(catalog, term)
    assert total == len(slugs) == len(set(slugs))


async def test_a_search_pages_in_id_order_without_gaps_or_repeats_and_counts_every_match(gql):
    everything, _ = await _search_all(gql, "sku-00001")  # products 10 to 19
    paged, total = await _search_all(gql, "sku-00001", first=3)
    assert paged == everything
    assert total == len(everything) > 2
    assert [int(s.removeprefix("product-")) for s in paged] == sorted(int(s.removeprefix("product-")) for s in paged)


@pytest.mark.parametrize("term", ["sku-00001", "ic", "classic"])
async def test_relevance_pages_list_each_match_once(gql, term):
    by_id, _ = await _search_all(gql, term)
    by_relevance, total = await _search_all(gql, term, first=3, sort="RELEVANCE")
    assert sorted(by_relevance) == sorted(by_id)
    assert total == len(by_relevance) > 3


async def test_a_renamed_added_or_removed_product_is_searched_as_it_now_is(gql, engine):
    """The index follows the products table (triggers on SQLite, the GIN index on PostgreSQL)."""
    skus = ["SKU-000003-S"]
    async with engine.begin() as conn:
        await conn.execute(
            update(Product)
            .where(Product.id == 3)
            .values(name="Zephyr Teapot", search_text=search_text("Zephyr Teapot", skus))
        )
        await conn.execute(
            insert(Product).values(
                id=9001, slug="product-9001", name="Quokka Teapot", search_text=search_text("Quokka Teapot", ["Q-1"])
            )
        )
        await conn.execute(insert(ProductVariant).values(id=90010, product_id=9001, sku="Q-1", name="Quokka Teapot"))
        await conn.execute(delete(Product).where(Product.id == 5))

    assert (await _search_all(gql, "teapot"))[0] == ["product-3", "product-9001"]
    assert (await _search_all(gql, "zephyr"))[0] == ["product-3"]
    assert (await _search_all(gql, "sku-000003"))[0] == ["product-3"]  # the renamed one's SKU still counts
    assert (await _search_all(gql, "sku-000005"))[0] == []  # the removed one


async def test_an_unpublished_product_is_not_found(gql, engine):
    async with engine.begin() as conn:
        await conn.execute(update(Product).where(Product.id == 7).values(published=False))
    assert (await _search_all(gql, "sku-000007"))[0] == []
