"""A shop built on the API as a frontend team would: category pages with sorting, facets and
cursors; product pages with media, options, the chosen variant's prices and availability;
collections. Every page costs a fixed number of SQL statements whatever its size."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import update

from commerce.inventory.models import StockLevel
from core.ids import from_global_id, to_global_id

CATEGORY_PAGE = """
query Category($slug: String!, $first: Int, $after: String, $sort: ProductSortKeys!, $reverse: Boolean,
               $store: ID, $filter: ProductFilter) {
  products(first: $first, after: $after, sortKey: $sort, reverse: $reverse,
           filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    facets {
      categories { category { slug name } count }
      options { name values { value count } }
      priceRanges { min { amount } max { amount } count }
      inStockAtStores { location { code } count }
    }
    edges { cursor node {
      id slug name availableForSale here: availableForSale(locationId: $store)
      priceRange { min { amount currency } max { amount } }
      featuredImage { url altText width height }
      category { slug }
      options { name values }
      variants { id compareAtPrice { amount } price { amount } }
    } }
  }
  category: products(first: 0, filter: {categorySlug: $slug}) { totalCount }
}
"""

PRODUCT_PAGE = """
query Product($slug: String!, $store: ID, $chosen: [SelectedOptionInput!]!) {
  product(slug: $slug) {
    id name description availableForSale tags
    priceRange { min { amount currency } max { amount currency } }
    media { url altText width height position }
    options { id name values }
    selected: variantBySelectedOptions(selectedOptions: $chosen) {
      id sku price { amount currency } compareAtPrice { amount currency }
      availableForSale inStore: availableForSale(locationId: $store) quantityAvailable(locationId: $store)
      selectedOptions { name value }
    }
    variants { id sku selectedOptions { name value } availableForSale price { amount } }
  }
}
"""


async def _store(gql: Any, code: str = "ST-WAW") -> str:
    locations = (await gql.data("{ locations(kind: STORE) { id code } }"))["locations"]
    return next(loc["id"] for loc in locations if loc["code"] == code)


def _variables(store: str, first: int, sort: str = "PRICE", **more: Any) -> dict[str, Any]:
    return {"slug": "kitchen", "first": first, "sort": sort, "store": store, **more}


async def test_a_category_page_and_a_product_page_cost_a_fixed_number_of_statements(gql, count_statements):
    store = await _store(gql)
    await gql.data("{ channels { code } }")  # warm the channel directory
    counts = {}
    for first in (3, 40):
        with count_statements as counter:
            data = await gql.data(CATEGORY_PAGE, _variables(store, first, filter={"categorySlug": "kitchen"}))
        assert len(data["products"]["edges"]) == min(first, data["products"]["totalCount"])
        counts[first] = counter.count
        counter.count = 0
    # page, count, 4 facets, category count; products' categories, media, options, variants,
    # prices, stock, the products loader (variant availability): one statement each
    assert counts[3] == counts[40], counts

    product_counts = {}
    for slug in ("product-3", "product-8"):  # one variant; six (three sizes by two colours)
        with count_statements as counter:
            data = await gql.data(
                PRODUCT_PAGE, {"slug": slug, "store": store, "chosen": [{"name": "Size", "value": "S"}]}
            )
        assert data["product"]["name"]
        product_counts[slug] = counter.count
        counter.count = 0
    assert product_counts["product-3"] == product_counts["product-8"], product_counts

    collection_page = """query($first: Int) { collection(handle: "editors-picks") { title
        products(first: $first) { edges { node { name availableForSale featuredImage { url }
        variants { price { amount } compareAtPrice { amount } selectedOptions { name value }
        product { slug } } } } } } }"""
    collection_counts = {}
    for first in (2, 6):
        with count_statements as counter:
            data = await gql.data(collection_page, {"first": first})
        assert len(data["collection"]["products"]["edges"]) == first
        collection_counts[first] = counter.count
        counter.count = 0
    assert collection_counts[2] == collection_counts[6], collection_counts
    # the figures today, so that a new statement is a deliberate change
    assert (counts[3], product_counts["product-3"], collection_counts[2]) == (14, 9, 8)


async def test_a_product_page_shows_media_options_the_chosen_variant_and_its_sale_price(gql):
    store = await _store(gql)
    chosen = [{"name": "Size", "value": "M"}, {"name": "Colour", "value": "Sand"}]
    product = (await gql.data(PRODUCT_PAGE, {"slug": "product-20", "store": store, "chosen": chosen}))["product"]
    assert [o["name"] for o in product["options"]] == ["Size", "Colour"]
    assert product["options"][0]["values"] == ["S", "M", "L"] and product["options"][1]["values"] == ["Black", "Sand"]
    assert len(product["variants"]) == 6  # a variant per size and colour
    combos = {tuple((s["name"], s["value"]) for s in v["selectedOptions"]) for v in product["variants"]}
    assert len(combos) == 6
    assert [m["position"] for m in product["media"]] == sorted(m["position"] for m in product["media"])
    assert all(
        m["url"].startswith("https://") and m["width"] and m["height"] and m["altText"] for m in product["media"]
    )

    selected = product["selected"]
    assert selected["selectedOptions"] == [{"name": "Size", "value": "M"}, {"name": "Colour", "value": "Sand"}]
    # product 20 is on sale: the regular price is shown struck through, above the price
    assert Decimal(selected["compareAtPrice"]["amount"]) > Decimal(selected["price"]["amount"])
    assert selected["compareAtPrice"]["currency"] == "PLN" and "sale" in product["tags"]
    assert selected["inStore"] == (selected["quantityAvailable"] > 0)
    amounts = [Decimal(v["price"]["amount"]) for v in product["variants"]]
    assert Decimal(product["priceRange"]["min"]["amount"]) == min(amounts)
    assert Decimal(product["priceRange"]["max"]["amount"]) == max(amounts)

    regular = await gql.data(
        PRODUCT_PAGE, {"slug": "product-3", "store": store, "chosen": [{"name": "Size", "value": "S"}]}
    )
    assert regular["product"]["selected"]["compareAtPrice"] is None
    none = await gql.data(
        PRODUCT_PAGE, {"slug": "product-3", "store": store, "chosen": [{"name": "Size", "value": "XL"}]}
    )
    assert none["product"]["selected"] is None


async def test_available_for_sale_follows_stock_somewhere_and_at_the_chosen_store(gql, engine):
    store = await _store(gql)
    query = """query($store: ID) { product(slug: "product-3") { availableForSale here: availableForSale(locationId: $store)
        variants { id availableForSale here: availableForSale(locationId: $store) } } }"""
    product = (await gql.data('{ product(slug: "product-3") { variants { id } } }'))["product"]
    assert len(product["variants"]) == 1
    variant_key = int(from_global_id(product["variants"][0]["id"], "ProductVariant")[1])
    async with engine.begin() as conn:
        await conn.execute(update(StockLevel).where(StockLevel.variant_id == variant_key).values(on_hand=0, reserved=0))
    before = (await gql.data(query, {"store": store}))["product"]
    sold_out = {"id": product["variants"][0]["id"], "availableForSale": False, "here": False}
    assert before == {"availableForSale": False, "here": False, "variants": [sold_out]}
    async with engine.begin() as conn:  # stock arrives at the warehouse only
        await conn.execute(
            update(StockLevel)
            .where(StockLevel.variant_id == variant_key, StockLevel.location_id == 1)
            .values(on_hand=4)
        )
    after = (await gql.data(query, {"store": store}))["product"]
    assert after["availableForSale"] is True and after["here"] is False
    assert after["variants"][0]["availableForSale"] is True and after["variants"][0]["here"] is False


async def _all_pages(gql: Any, sort: str, reverse: bool, first: int = 7, **filters: Any) -> list[dict[str, Any]]:
    query = """query($first: Int, $after: String, $sort: ProductSortKeys!, $reverse: Boolean, $filter: ProductFilter,
        $search: String) { products(first: $first, after: $after, sortKey: $sort, reverse: $reverse, filter: $filter,
        search: $search) { totalCount pageInfo { hasNextPage endCursor } edges { node { id name
        priceRange { min { amount } } } } } }"""
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await gql.data(query, {"first": first, "after": after, "sort": sort, "reverse": reverse, **filters}))[
            "products"
        ]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            assert len(seen) == page["totalCount"]
            return seen
        after = page["pageInfo"]["endCursor"]


async def test_every_sort_order_pages_through_everything_in_order_without_gaps_or_repeats(gql):
    by_price = await _all_pages(gql, "PRICE", False)
    prices = [Decimal(p["priceRange"]["min"]["amount"]) for p in by_price]
    assert prices == sorted(prices) and len({p["id"] for p in by_price}) == 60
    by_price_desc = await _all_pages(gql, "PRICE", True)
    assert [Decimal(p["priceRange"]["min"]["amount"]) for p in by_price_desc] == sorted(prices, reverse=True)
    by_name = await _all_pages(gql, "TITLE", False)
    assert [p["name"].lower() for p in by_name] == sorted(p["name"].lower() for p in by_name)
    newest = await _all_pages(gql, "CREATED_AT", True)
    assert newest[0]["name"].endswith(" 60") and len({p["id"] for p in newest}) == 60
    relevant = await _all_pages(gql, "RELEVANCE", False, first=3, search="kettle")
    assert relevant and all("kettle" in p["name"].lower() for p in relevant)


async def test_a_cursor_stays_valid_when_products_change_and_is_refused_with_another_sort(gql, engine):
    query = """query($after: String, $sort: ProductSortKeys!) { products(first: 5, after: $after, sortKey: $sort) {
        pageInfo { endCursor } edges { node { id priceRange { min { amount } } } } } }"""
    first = (await gql.data(query, {"sort": "PRICE"}))["products"]
    cursor = first["pageInfo"]["endCursor"]
    from commerce.pricing.models import Price

    async with engine.begin() as conn:  # a product on the first page gets dearer
        await conn.execute(update(Price).where(Price.variant_id == 1).values(amount=Decimal("999.99")))
    second = (await gql.data(query, {"after": cursor, "sort": "PRICE"}))["products"]
    last = Decimal(first["edges"][-1]["node"]["priceRange"]["min"]["amount"])
    assert all(Decimal(e["node"]["priceRange"]["min"]["amount"]) >= last for e in second["edges"])
    moved = to_global_id("Product", 1)  # variant 1's product: now dearer, so it comes again later, rightly
    assert not {e["node"]["id"] for e in second["edges"]} & ({e["node"]["id"] for e in first["edges"]} - {moved})
    wrong = await gql.execute(query, {"after": cursor, "sort": "TITLE"})
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_facets_count_what_the_filter_matches_and_filters_narrow_by_them(gql):
    store = await _store(gql)
    data = await gql.data(CATEGORY_PAGE, _variables(store, 100, filter={}))
    facets = data["products"]["facets"]
    assert sum(f["count"] for f in facets["categories"]) == 60
    assert sum(f["count"] for f in facets["priceRanges"]) == 60
    sizes = next(f for f in facets["options"] if f["name"] == "Size")
    assert {v["value"]: v["count"] for v in sizes["values"]}["S"] == 60  # every product comes in S
    colours = next(f for f in facets["options"] if f["name"] == "Colour")
    waw = next(f for f in facets["inStockAtStores"] if f["location"]["code"] == "ST-WAW")
    edges = data["products"]["edges"]
    assert waw["count"] == sum(1 for e in edges if e["node"]["here"])

    black = await gql.data(
        CATEGORY_PAGE, _variables(store, 100, filter={"options": [{"name": "Colour", "value": "Black"}]})
    )
    assert black["products"]["totalCount"] == {v["value"]: v["count"] for v in colours["values"]}["Black"]
    assert all("Colour" in [o["name"] for o in e["node"]["options"]] for e in black["products"]["edges"])

    bucket = facets["priceRanges"][1]  # 50 up to 100
    ranged = await gql.data(
        CATEGORY_PAGE,
        _variables(store, 100, filter={"priceMin": bucket["min"]["amount"], "priceMax": "99.99"}),
    )
    assert ranged["products"]["totalCount"] == bucket["count"]
    at_store = await gql.data(
        CATEGORY_PAGE, _variables(store, 100, filter={"availableForSale": True, "availableAtLocationId": store})
    )
    assert at_store["products"]["totalCount"] == waw["count"]


async def test_collections_manual_in_the_merchandisers_order_and_rule_based(gql):
    listed = (await gql.data("{ collections { edges { node { id handle title } } } }"))["collections"]["edges"]
    assert [e["node"]["handle"] for e in listed] == ["sale", "under-100", "editors-picks"]
    query = """query($handle: String!, $sort: ProductCollectionSortKeys!, $after: String) {
        collection(handle: $handle) { title products(first: 4, sortKey: $sort, after: $after) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { node { slug tags priceRange { min { amount } } } } } } }"""
    picks = (await gql.data(query, {"handle": "editors-picks", "sort": "MANUAL"}))["collection"]["products"]
    rest = await gql.data(query, {"handle": "editors-picks", "sort": "MANUAL", "after": picks["pageInfo"]["endCursor"]})
    slugs = [e["node"]["slug"] for e in picks["edges"] + rest["collection"]["products"]["edges"]]
    assert slugs == ["product-7", "product-3", "product-12", "product-1", "product-25", "product-40"]

    sale = (await gql.data(query, {"handle": "sale", "sort": "MANUAL"}))["collection"]["products"]
    assert sale["totalCount"] == 12 and all("sale" in e["node"]["tags"] for e in sale["edges"])
    cheap = (await gql.data(query, {"handle": "under-100", "sort": "PRICE"}))["collection"]["products"]
    assert cheap["totalCount"] > 0
    assert all(Decimal(e["node"]["priceRange"]["min"]["amount"]) <= 100 for e in cheap["edges"])
    node = await gql.data(
        "query($id: ID!) { node(id: $id) { ... on Collection { handle } } }", {"id": listed[0]["node"]["id"]}
    )
    assert node["node"] == {"handle": "sale"}
