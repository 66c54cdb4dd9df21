"""The demo catalog reads like a shop: a frontend developer sees products in fitting categories."""

from __future__ import annotations

from dataclasses import fields

from gateway.seed import CATEGORIES, _catalog_chunks, _CatalogRows

NOUNS_BY_CATEGORY = {slug: nouns for slug, _, _, nouns in CATEGORIES}


async def test_every_demo_product_sits_in_a_category_that_fits_its_name(gql):
    data = await gql.data("{ products(first: 100) { edges { node { name category { slug } } } } }")
    products = [edge["node"] for edge in data["products"]["edges"]]
    assert len(products) == 60
    for product in products:
        nouns = NOUNS_BY_CATEGORY[product["category"]["slug"]]
        assert any(f" {noun} " in product["name"] for noun in nouns), product


async def test_no_kettle_is_sold_as_a_toy(gql):
    data = await gql.data('{ products(first: 100, filter: {categorySlug: "toys"}) { edges { node { name } } } }')
    names = [edge["node"]["name"] for edge in data["products"]["edges"]]
    assert names and not [name for name in names if "Kettle" in name]


def test_the_catalog_written_in_chunks_is_the_catalog_written_at_once():
    """`seed` writes a large catalog a chunk of products at a time (memory): ids, names, prices
    and stock must come out as one pass would make them, whatever the chunk size."""
    whole = next(_catalog_chunks(60, 60))
    chunks = list(_catalog_chunks(60, 7))
    assert [len(c.products) for c in chunks] == [7] * 8 + [4]
    for table in fields(_CatalogRows):
        assert [row for c in chunks for row in getattr(c, table.name)] == getattr(whole, table.name), table.name
