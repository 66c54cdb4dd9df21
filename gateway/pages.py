"""The pages the gateway serves to people: GraphiQL and the operators' console.

Everything they load comes from the gateway itself (vendored under `static/vendor`, see its
MANIFEST), so they work offline and behind a firewall, under a Content-Security-Policy that
allows no inline script and no other host. The pages hold no data of their own: their scripts
run GraphQL operations with the operator's token, so the policies and the audit log apply as
they do to any client.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC", "graphiql_page", "page_routes"]

STATIC = Path(__file__).with_name("static")
PAGES = STATIC / "pages"

# `style-src 'unsafe-inline'`: GraphiQL's editor and Chart.js set element styles at run time;
# scripts stay strictly our own files.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CONSOLE_PAGES = {"": "console.html", "dpo": "dpo.html", "store": "store.html", "reports": "reports.html"}


def _page(name: str) -> Response:
    return FileResponse(PAGES / name, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


def graphiql_page() -> Response:
    """GraphiQL, served with every script and style from this gateway."""
    return _page("graphiql.html")


async def console_page(request: Request) -> Response:
    name = CONSOLE_PAGES.get(request.path_params.get("page", ""))
    if name is None:
        return Response("No such console page.", status_code=404, media_type="text/plain")
    return _page(name)


async def console_root(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)


class _SecureStatic(StaticFiles):
    """Static files with the same headers as the pages (nosniff matters for scripts)."""

    def file_response(
        self, full_path: PathLike[str] | str, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update({k: v for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"})
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response


def page_routes(*, console: bool) -> list[Route | Mount]:
    """The static assets, and the console's pages when the console is on."""
    routes: list[Route | Mount] = [Mount("/static", app=_SecureStatic(directory=STATIC), name="static")]
    if console:
        routes += [
            Route("/console", console_root, methods=["GET"]),
            Route("/console/", console_page, methods=["GET"]),
            Route("/console/{page:str}", console_page, methods=["GET"]),
        ]
    return routes
