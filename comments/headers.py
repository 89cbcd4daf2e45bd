"""Security headers on every answer, error pages and unknown routes included.

Registered as a Litestar `before_send` hook, which sees every response start, even the
ones exception handlers and the router's own 404/405 produce (route middleware would not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.datastructures import MutableScopeHeaders

if TYPE_CHECKING:
    from litestar.types import Message, Scope

# Server-rendered pages (/demo, /admin, the form's error page): only our own scripts, styles and
# endpoints; no inline script or style, no plugins, no <base> rewriting, never inside a frame.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
# Everything else (JSON, scripts, styles): if a browser ever renders one as a document, nothing runs.
RESOURCE_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
ALWAYS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}
# The interactive API docs load their renderer from a CDN with inline start-up code; they get the
# headers above but not PAGE_POLICY, which would leave them blank. They show nothing private.
DOCS_PATH = "/schema"


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Add nosniff, the referrer policy, framing refusal and a Content-Security-Policy to a response.

    A handler that sets its own Content-Security-Policy keeps it; if that policy names
    `frame-ancestors`, the page is meant to be framed there and gets no X-Frame-Options.
    """
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in ALWAYS.items():
        headers[name] = value
    own_policy = headers.get("content-security-policy")
    if own_policy is None or "frame-ancestors" not in own_policy:
        headers["x-frame-options"] = "DENY"
    if own_policy is not None:
        return
    if headers.get("content-type", "").startswith("text/html"):
        path = scope.get("path", "")
        if path != DOCS_PATH and not path.startswith(DOCS_PATH + "/"):
            headers["content-security-policy"] = PAGE_POLICY
    else:
        headers["content-security-policy"] = RESOURCE_POLICY
