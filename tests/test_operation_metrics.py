"""Operations are counted by their errors' codes however they end, on the untraced path (no operation span)."""

from __future__ import annotations

from tests.test_metrics import scrape, scraped, value  # noqa: F401  (scraped: the fixture)

OPERATIONS = "omnigate_graphql_operations_total"
ERRORS = "omnigate_graphql_errors_total"


async def test_variables_that_do_not_fit_count_the_operation_in_error(scraped):  # noqa: F811
    _, client = scraped
    query = "query Page($first: Int!) { products(first: $first) { edges { node { name } } } }"
    body = await client.execute(query, {"first": "many"})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    too_long = await client.execute(
        "query Search($q: String!) { products(first: 1, search: $q) { edges { node { name } } } }", {"q": "x" * 100_000}
    )
    code = too_long["errors"][0]["extensions"]["code"]
    samples = await scrape(client)
    assert value(samples, OPERATIONS, graphql_operation_name="Page", error_type="BAD_USER_INPUT") == 1
    assert value(samples, ERRORS, graphql_operation_name="Page", error_type="BAD_USER_INPUT") == 1
    assert value(samples, OPERATIONS, graphql_operation_name="Search", error_type=code) == 1


async def test_an_operation_without_errors_is_counted_without_an_error_type(scraped):  # noqa: F811
    _, client = scraped
    await client.data("query Names { products(first: 1) { edges { node { name } } } }")
    samples = await scrape(client)
    assert value(samples, OPERATIONS, graphql_operation_name="Names") == 1
    assert not any(labels.get("error_type") for labels, _ in samples[OPERATIONS])
    assert value(samples, ERRORS, graphql_operation_name="Names") == 0
    assert value(samples, "omnigate_graphql_operation_duration_seconds_count", graphql_operation_name="Names") == 1
