"""CORS for the public reader API: only a site's own origins (and this service's pages) may read or post."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comments import sites

if TYPE_CHECKING:
    from litestar import Request

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
