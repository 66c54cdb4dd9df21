"""GraphiQL works with no internet: every script and style comes from the gateway, under its CSP."""

from __future__ import annotations

import httpx
import pytest

from tests.console.browser import browser_page, screenshot
from tests.live_server import serving


async def test_graphiql_runs_a_query_with_the_network_cut_off(runtime, request: pytest.FixtureRequest):
    async with serving(runtime) as port, browser_page(port) as browser:
        page = browser.page
        await page.goto("/graphql")
        editor = page.locator(".graphiql-query-editor .CodeMirror").first
        await editor.wait_for(timeout=20_000)
        await page.evaluate(
            "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
            ".setValue('{ channels { code currency } }')"
        )
        await page.locator(".graphiql-execute-button").click()
        result = page.locator(".graphiql-response .CodeMirror")
        await result.get_by_text('"currency": "PLN"').first.wait_for(timeout=20_000)
        text = await page.evaluate("document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()")
        await screenshot(browser, request)
    assert '"code": "web"' in text and '"code": "call-center"' in text
    assert browser.blocked == []  # nothing was asked of another host
    assert browser.csp_violations == []


async def test_graphiql_page_sends_a_strict_content_security_policy(http: httpx.AsyncClient):
    response = await http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "https://" not in response.text and "<script>" not in response.text  # no other host, no inline script
    script = await http.get("/static/vendor/graphiql/graphiql.min.js")
    assert script.status_code == 200 and script.headers["x-content-type-options"] == "nosniff"


async def test_graphiql_can_be_switched_off(settings, clock):
    from gateway.app import create_app

    app = create_app(settings.replace(graphiql=False), clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 400 and "GraphiQL" not in response.text
