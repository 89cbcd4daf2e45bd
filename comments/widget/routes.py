"""What readers load: thread JSON, counts, the widget assets and the demo article."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get, route
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, Parameter
from litestar.response import File, Template
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import cors, security, sites
from comments.errors import CommentsError, error_body, error_responses
from comments.widget import service
from comments.widget.schemas import ThreadCounts, ThreadPage

STATIC = Path(__file__).resolve().parent / "static"
PUBLIC = {"exclude_from_csrf": True}
CACHE_CONTROL = "public, max-age=5, must-revalidate"
DEMO_THREAD = "/demo"
# Thread keys are text: no NUL byte (PostgreSQL cannot store one, so no thread can have it). The pattern is
# documented here and enforced by the service, which says so in words (msgspec would quote the regex).
NO_NUL = {"pattern": "^[^\\u0000]*$"}
ThreadKey = Annotated[str, Parameter(schema_extra=NO_NUL)]


def _etag(*parts: object) -> str:
    return '"' + hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=12).hexdigest() + '"'


@get(
    "/api/comments",
    opt=PUBLIC,
    summary="Read a thread's approved comments",
    responses={
        200: ResponseSpec(
            data_container=ThreadPage, description="One page, in display order.", generate_examples=False
        ),
        304: ResponseSpec(data_container=None, description="Unchanged since the ETag you sent."),
        **error_responses(400, 404),
    },
)
async def list_thread(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    state: State,
    site: Annotated[str, Parameter(min_length=1, max_length=64)],
    thread: Annotated[str, Parameter(min_length=1, max_length=500, schema_extra=NO_NUL)],
    cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    limit: Annotated[int, Parameter(ge=1, le=service.MAX_PAGE)] = service.DEFAULT_PAGE,
    token: Annotated[str | None, HeaderParameter(name="X-Comment-Token", max_length=100)] = None,
) -> Response[Any]:
    """Approved comments of a thread in display order (roots paginated, replies nested), with its count.

    An unknown thread of a known site reads as an open thread with no comments.
    With the submitter token (`X-Comment-Token`) the submitter's own pending comments
    appear too, flagged `pending`. Public answers carry a strong ETag (304 on `If-None-Match`).
    """
    origin = cors.request_origin(request)
    own = sites.origin_of(state.settings.base_url)
    allowed: list[str] = []
    try:
        current = await service.thread_state(db_session, site_slug=site, key=thread)
        allowed = current.origins
        headers = cors.cors_headers(origin, allowed, own_origin=own)
        if token:
            page = await service.load_page(
                db_session, state=current, cursor=cursor, limit=limit, submitter_hash=security.token_hash(token)
            )
            headers["Cache-Control"] = "private, no-store"
            return Response(service.encode_page(page), media_type=MediaType.JSON, headers=headers)
        etag = _etag(current.site_id, current.thread_id, current.version, cursor, limit)
        headers |= {"ETag": etag, "Cache-Control": CACHE_CONTROL}
        if request.headers.get("if-none-match") == etag:
            return Response(None, status_code=304, headers=headers)
        body = await service.read_page(db_session, state.page_cache, state=current, cursor=cursor, limit=limit)
        return Response(body, media_type=MediaType.JSON, headers=headers)
    except CommentsError as exc:
        headers = cors.cors_headers(origin, allowed, own_origin=own)
        return Response(error_body(exc), status_code=exc.status_code, headers=headers)


@get(
    "/api/counts",
    opt=PUBLIC,
    summary="Public comment counts for listing pages",
    responses={
        200: ResponseSpec(data_container=ThreadCounts, description="Counts keyed by thread.", generate_examples=False),
        **error_responses(400, 404),
    },
)
async def count_threads(
    request: Request[Any, Any, Any],
    db_session: NamedDependency[AsyncSession],
    state: State,
    site: Annotated[str, Parameter(min_length=1, max_length=64)],
    thread: Annotated[list[ThreadKey], Parameter(max_items=service.MAX_COUNT_THREADS)],
) -> Response[Any]:
    """Approved counts for up to 100 threads (`?thread=A&thread=B`); unknown threads count 0."""
    counts = await service.count_threads(db_session, site_slug=site, keys=thread)
    origins = (await sites.get_site(db_session, slug=site)).origins
    headers = cors.cors_headers(
        cors.request_origin(request), origins, own_origin=sites.origin_of(state.settings.base_url)
    )
    headers["Cache-Control"] = CACHE_CONTROL
    return Response(counts, headers=headers)


@route(["/api/counts"], http_method=[HttpMethod.OPTIONS], opt=PUBLIC, include_in_schema=False)
async def preflight_counts(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], state: State
) -> Response[None]:
    """CORS preflight for counts."""
    origin = cors.request_origin(request)
    own = sites.origin_of(state.settings.base_url)
    known = origin is not None and await sites.origin_is_known(db_session, origin=origin, own_origin=own)
    return Response(None, status_code=204, headers=cors.preflight_headers(origin, allowed=known))


@get("/widget.js", include_in_schema=False, cache=3600)
async def widget_script() -> File:
    """The embeddable widget (plain JS, no framework)."""
    return File(
        STATIC / "widget.js",
        content_disposition_type="inline",
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@get("/widget.css", include_in_schema=False)
async def widget_styles() -> File:
    """The widget's stylesheet; hosts override its --comments-* custom properties."""
    return File(
        STATIC / "widget.css",
        content_disposition_type="inline",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@get("/pages.css", include_in_schema=False)
async def page_styles() -> File:
    """Styles of the pages this service renders (demo article, form error page); inline styles break the CSP."""
    return File(
        STATIC / "pages.css",
        content_disposition_type="inline",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@get("/demo", include_in_schema=False)
async def demo_article(state: State) -> Template:
    """A placeholder article that embeds the widget, so a newcomer sees the whole flow."""
    return Template(
        template_name="demo.html",
        context={"site": sites.DEMO_SLUG, "thread": DEMO_THREAD, "base_url": state.settings.base_url.rstrip("/")},
    )


ROUTES = [preflight_counts, list_thread, count_threads, widget_script, widget_styles, page_styles, demo_article]
