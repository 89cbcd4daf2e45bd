"""CORS for the public reader API: only a site's own origins (and this service's pages) may read or post."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, route
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import sites

ALLOWED_HEADERS = "Content-Type, X-Comment-Token, Idempotency-Key"
PREFLIGHT_MAX_AGE = "600"


def request_origin(request: Request[Any, Any, Any]) -> str | None:
    """The page origin a browser request comes from: the Origin header, else the Referer's origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return sites.origin_of(origin)
    referer = request.headers.get("referer")
    return sites.origin_of(referer) if referer else None


def cors_headers(origin: str | None, allowed: list[str], *, own_origin: str | None) -> dict[str, str]:
    """Headers that let the page at `origin` read the answer, when it is one of `allowed`."""
    headers = {"Vary": "Origin"}
    if origin is not None and (origin in allowed or origin == own_origin):
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = "ETag, Retry-After"
    return headers


def preflight_headers(origin: str | None, *, allowed: bool) -> dict[str, str]:
    """Answer to a CORS preflight: methods and headers the widget uses, for a known origin only."""
    if origin is None or not allowed:
        return {"Vary": "Origin"}
    return {
        "Vary": "Origin",
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }


# Registered before the GET/POST handlers of these paths: Litestar keeps the first OPTIONS handler of a path.
@route(
    ["/api/comments", "/api/counts"],
    http_method=[HttpMethod.OPTIONS],
    opt={"exclude_from_csrf": True},
    include_in_schema=False,
)
async def preflight(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], state: State
) -> Response[None]:
    """CORS preflight for the widget's reads, posts and counts: allowed for any site's origin."""
    origin = request_origin(request)
    own = sites.origin_of(state.settings.base_url)
    known = origin is not None and await sites.origin_is_known(db_session, origin=origin, own_origin=own)
    return Response(None, status_code=204, headers=preflight_headers(origin, allowed=known))
