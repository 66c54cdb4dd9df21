"""The storefront read path through the GraphQL API: products, variants, prices, stock."""

from __future__ import annotations

import gc

from core.ids import to_global_id

STOREFRONT = """
query Storefront($first: Int, $after: String) {
  products(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id slug name category { slug name }
      variants { id sku price { amount currency } quantityAvailable stock { available location { code kind } } } } }
  }
}
"""


async def test_products_page_through_the_whole_catalog_without_gaps_or_repeats(gql):
    seen: list[str] = []
    after = None
    total = None
    while True:
        data = await gql.data(STOREFRONT, {"first": 25, "after": after})
        page = data["products"]
        total = page["totalCount"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == total == 60


async def test_a_variant_has_the_same_price_in_every_channel(gql, token_for):
    query = "{ products(first: 3) { edges { node { variants { sku price { amount currency } } } } } }"
    # the tills' and the call center's channels are named by their operators only
    who = {"store": token_for("staff", location="ST-WAW"), "call-center": token_for("agent")}
    answers = []
    for channel in ("web", "mobile", "store", "call-center"):
        answers.append(await gql.data(query, headers={**who.get(channel, {}), "X-Channel": channel}))
    assert all(answer == answers[0] for answer in answers)
    amount = answers[0]["products"]["edges"][0]["node"]["variants"][0]["price"]["amount"]
    assert isinstance(amount, str) and "." in amount


async def test_quantity_available_is_on_hand_minus_reserved_per_location_and_summed(gql):
    data = await gql.data(STOREFRONT, {"first": 5})
    for edge in data["products"]["edges"]:
        for variant in edge["node"]["variants"]:
            assert variant["quantityAvailable"] == sum(level["available"] for level in variant["stock"])
            assert all(level["available"] >= 0 for level in variant["stock"])


async def test_quantity_available_at_one_location(gql, engine):
    locations = (await gql.data("{ locations(kind: STORE) { id code clickAndCollect } }"))["locations"]
    waw = next(loc for loc in locations if loc["code"] == "ST-WAW")
    query = """query($loc: ID) { products(first: 3) { edges { node { variants {
        all: quantityAvailable here: quantityAvailable(locationId: $loc) stock { available location { id } } } } } } }"""
    data = await gql.data(query, {"loc": waw["id"]})
    for edge in data["products"]["edges"]:
        for variant in edge["node"]["variants"]:
            expected = sum(s["available"] for s in variant["stock"] if s["location"]["id"] == waw["id"])
            assert variant["here"] == expected


async def test_filter_available_at_location_lists_only_what_is_on_that_shelf(gql):
    locations = (await gql.data("{ locations { id code } }"))["locations"]
    krk = next(loc for loc in locations if loc["code"] == "ST-KRK")
    query = """query($loc: ID!) { products(first: 100, filter: {availableAtLocationId: $loc}) {
        totalCount edges { node { variants { here: quantityAvailable(locationId: $loc) } } } } }"""
    data = await gql.data(query, {"loc": krk["id"]})
    edges = data["products"]["edges"]
    assert 0 < len(edges) < 60
    assert data["products"]["totalCount"] == len(edges)
    assert all(any(v["here"] > 0 for v in e["node"]["variants"]) for e in edges)


async def test_filter_by_category_and_search_by_name_or_sku(gql):
    by_category = await gql.data(
        '{ products(first: 100, filter: {categorySlug: "kitchen"}) { totalCount edges { node { category { slug } } } } }'
    )
    assert by_category["products"]["totalCount"] > 0
    assert {e["node"]["category"]["slug"] for e in by_category["products"]["edges"]} == {"kitchen"}

    by_sku = await gql.data('{ products(search: "sku-000007-m") { edges { node { slug } } } }')
    assert [e["node"]["slug"] for e in by_sku["products"]["edges"]] == ["product-7"]

    by_name = await gql.data('{ products(first: 100, search: "KETTLE") { edges { node { name } } } }')
    names = [e["node"]["name"] for e in by_name["products"]["edges"]]
    assert names and all("kettle" in n.lower() for n in names)

    nothing = await gql.data('{ products(search: "%") { totalCount } }')
    assert nothing["products"]["totalCount"] == 0


async def test_product_by_id_or_slug_and_node(gql):
    by_slug = (await gql.data('{ product(slug: "product-3") { id name variants { id sku } } }'))["product"]
    by_id = (await gql.data("query($id: ID) { product(id: $id) { id name } }", {"id": by_slug["id"]}))["product"]
    assert by_id == {"id": by_slug["id"], "name": by_slug["name"]}
    variant_id = by_slug["variants"][0]["id"]
    node = await gql.data(
        "query($p: ID!, $v: ID!) { p: node(id: $p) { __typename id ... on Product { slug } } "
        "v: node(id: $v) { __typename ... on ProductVariant { sku } } }",
        {"p": by_slug["id"], "v": variant_id},
    )
    assert node["p"] == {"__typename": "Product", "id": by_slug["id"], "slug": "product-3"}
    assert node["v"] == {"__typename": "ProductVariant", "sku": by_slug["variants"][0]["sku"]}
    assert (await gql.data('{ product(slug: "no-such-product") { id } }'))["product"] is None
    missing = to_global_id("Product", 999999)
    assert (await gql.data("query($id: ID!) { node(id: $id) { id } }", {"id": missing}))["node"] is None


async def test_channels_and_locations(gql):
    data = await gql.data("{ channels { code kind currency } locations { code kind city clickAndCollect } }")
    assert {c["code"] for c in data["channels"]} == {"web", "mobile", "store", "call-center"}
    assert {c["currency"] for c in data["channels"]} == {"PLN"}
    kinds = {loc["kind"] for loc in data["locations"]}
    assert kinds == {"WAREHOUSE", "STORE"}
    assert sum(1 for loc in data["locations"] if loc["clickAndCollect"]) >= 2


async def test_storefront_query_costs_the_same_number_of_statements_whatever_the_page_size(gql, count_statements):
    await gql.data("{ channels { code } }")  # warm the channel directory
    query = """query($first: Int) { products(first: $first) { edges { node { name category { name }
        variants { sku price { amount } quantityAvailable stock { available location { code } } } } } } }"""
    counts = {}
    for first in (5, 60):
        with count_statements as counter:
            data = await gql.data(query, {"first": first})
        assert len(data["products"]["edges"]) == first
        counts[first] = counter.count
        counter.count = 0
    # page, categories, variants, prices, stock, locations: one statement each, at any page size
    assert counts == {5: 6, 60: 6}


async def test_a_storefront_request_leaves_nothing_for_the_cyclic_garbage_collector(gql):
    """Everything a request loaded is freed when it ends, by reference counting alone.

    A cycle (a loader's fetch referring back to its `Loaders`, settle's runner and its last
    fetch) kept every row a page loaded alive until the cyclic collector ran: ~0.2 ms of a
    storefront request's CPU went to collecting them.
    """
    await gql.data(STOREFRONT, {"first": 24})  # plans and caches made once, before counting
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            await gql.data(STOREFRONT, {"first": 24})
        gc.collect()
        left = {type(o).__name__ for o in gc.garbage} & {
            "Loaders",
            "BatchLoader",
            "Variant",
            "PriceEntry",
            "Availability",
        }
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not left
