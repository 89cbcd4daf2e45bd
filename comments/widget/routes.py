"""What readers load: thread JSON, counts, the widget assets and the demo article."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, Parameter, QueryParameter
from litestar.response import File, Template
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import cors, security, sites
from comments.errors import CommentsError, NotFound, error_body, error_responses
from comments.widget import render, service
from comments.widget.schemas import ThreadCounts, ThreadPage

STATIC = Path(__file__).resolve().parent / "static"
PUBLIC = {"exclude_from_csrf": True}
CACHE_CONTROL = "public, max-age=5, must-revalidate"
DEMO_THREAD = "/demo"
DEMO_TITLE = "Why the comment section still matters"
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
    # No ORM session per request: the common case (304, or a page this process already
    # encoded for the current version) costs one indexed lookup on the StateReader.
    origin = cors.request_origin(request)
    own = sites.origin_of(state.settings.base_url)
    allowed: list[str] = []
    try:
        current = await state.state_reader.thread_state(site_slug=site, key=thread)
        allowed = current.origins
        headers = cors.cors_headers(origin, allowed, own_origin=own)
        # The answer depends on the token: without this a browser serves the cached public page
        # to a submitter who just posted, and their pending comment seems to vanish on reload.
        headers["Vary"] = "Origin, X-Comment-Token"
        if token:
            async with state.sessions() as db_session:
                current = await service.thread_state(db_session, site_slug=site, key=thread)
                page = await service.load_page(
                    db_session, state=current, cursor=cursor, limit=limit, submitter_hash=security.token_hash(token)
                )
            headers["Cache-Control"] = "private, no-store"
            return Response(service.encode_page(page), media_type=MediaType.JSON, headers=headers)
        etag = _etag(current.site_id, current.thread_id, current.version, cursor, limit)
        if request.headers.get("if-none-match") == etag:
            return Response(None, status_code=304, headers=headers | {"ETag": etag, "Cache-Control": CACHE_CONTROL})
        body = service.cached_page(state.page_cache, state=current, cursor=cursor, limit=limit)
        if body is None:
            # Build the page in one transaction with its own version read, so the body and
            # its ETag always belong to the same version.
            async with state.sessions() as db_session:
                current = await service.thread_state(db_session, site_slug=site, key=thread)
                body = await service.read_page(db_session, state.page_cache, state=current, cursor=cursor, limit=limit)
            etag = _etag(current.site_id, current.thread_id, current.version, cursor, limit)
        headers |= {"ETag": etag, "Cache-Control": CACHE_CONTROL}
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
    state: State,
    site: Annotated[str, Parameter(min_length=1, max_length=64)],
    thread: Annotated[list[ThreadKey], Parameter(max_items=service.MAX_COUNT_THREADS)],
) -> Response[Any]:
    """Approved counts for up to 100 threads (`?thread=A&thread=B`); unknown threads count 0."""
    counts, origins = await state.state_reader.counts(site_slug=site, keys=thread)
    headers = cors.cors_headers(
        cors.request_origin(request), origins, own_origin=sites.origin_of(state.settings.base_url)
    )
    headers["Cache-Control"] = CACHE_CONTROL
    return Response(counts, headers=headers)


# Public reads whose answers ReplayUnchanged may repeat while the database is unchanged.
REPLAYABLE = ("/api/comments", "/api/counts")


def _asset(name: str, media_type: str) -> File:
    return File(
        STATIC / name,
        content_disposition_type="inline",
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600"},
    )


@get("/widget.js", include_in_schema=False, cache=3600)
async def widget_script() -> File:
    """The embeddable widget (plain JS, no framework)."""
    return _asset("widget.js", "text/javascript")


@get("/widget.css", include_in_schema=False)
async def widget_styles() -> File:
    """The widget's stylesheet; hosts override its --comments-* custom properties."""
    return _asset("widget.css", "text/css")


@get("/page.css", include_in_schema=False)
async def page_styles() -> File:
    """Styles of the service's own pages (demo article, form error page): no inline styles, for a strict CSP."""
    return _asset("page.css", "text/css")


# The no-JS fragment's own links come back to the article page with these (WordPress's names).
CPage = Annotated[str | None, QueryParameter(name=render.PAGE_PARAM, max_length=200)]
ReplyTo = Annotated[int | None, QueryParameter(name=render.REPLY_PARAM, ge=1)]
Unapproved = Annotated[int | None, QueryParameter(name=render.UNAPPROVED_PARAM, ge=1)]
Proof = Annotated[str | None, QueryParameter(name=render.PROOF_PARAM, max_length=100)]


@get("/demo", include_in_schema=False)
async def demo_article(
    db_session: NamedDependency[AsyncSession],
    state: State,
    cpage: CPage = None,
    replytocom: ReplyTo = None,
    unapproved: Unapproved = None,
    proof: Proof = None,
) -> Template:
    """A placeholder article that embeds the widget, with the no-JS thread and form rendered inside it."""
    base_url = state.settings.base_url.rstrip("/")
    url = f"{base_url}{DEMO_THREAD}"
    try:
        thread: render.NoJsThread | None = await render.load_thread(
            db_session,
            secret_key=state.settings.secret_key,
            base_url=base_url,
            site=sites.DEMO_SLUG,
            thread=DEMO_THREAD,
            title=DEMO_TITLE,
            url=url,
            cursor=cpage,
            reply_to=replytocom,
            unapproved=unapproved,
            proof=proof,
        )
    except NotFound:
        thread = None  # no demo site in this database: the widget shows its own error
    return Template(
        template_name="demo.html",
        context={
            "site": sites.DEMO_SLUG,
            "thread": DEMO_THREAD,
            "title": DEMO_TITLE,
            "url": url,
            "base_url": base_url,
            "t": thread,
        },
    )


@get(
    "/embed",
    opt=PUBLIC,
    media_type=MediaType.HTML,
    summary="The thread and the Leave-a-Reply form as server-rendered HTML (no JavaScript)",
    responses=error_responses(400, 404),
)
async def embed_thread(
    db_session: NamedDependency[AsyncSession],
    state: State,
    site: Annotated[str, Parameter(min_length=1, max_length=64)],
    thread: Annotated[str, Parameter(min_length=1, max_length=500, schema_extra=NO_NUL)],
    title: Annotated[str | None, Parameter(max_length=500)] = None,
    url: Annotated[str | None, Parameter(max_length=2000)] = None,
    cpage: CPage = None,
    replytocom: ReplyTo = None,
    unapproved: Unapproved = None,
    proof: Proof = None,
) -> Template:
    """An HTML fragment for a server-side include inside `<div id="comments">`: the thread and a classic form.

    The form posts to `/api/comments`, which answers `303` back to `url` (the article) at
    `#comment-ID`. A comment that awaits moderation is not public, so that redirect adds
    `?unapproved=ID&moderation-hash=…`; passed on here, they render "Your comment is awaiting
    moderation." at `#comment-ID`. `cpage` and `replytocom` come from the fragment's own links
    ("Load more comments", "Reply"), which are relative to the article page.
    """
    fragment = await render.load_thread(
        db_session,
        secret_key=state.settings.secret_key,
        base_url=state.settings.base_url,
        site=site,
        thread=thread,
        title=title,
        url=url,
        cursor=cpage,
        reply_to=replytocom,
        unapproved=unapproved,
        proof=proof,
    )
    # A fragment that tells one reader about their pending comment is theirs alone.
    cache = "private, no-store" if fragment.pending_id else CACHE_CONTROL
    return Template(template_name="thread.html", context={"t": fragment}, headers={"Cache-Control": cache})


ROUTES = [
    list_thread,
    count_threads,
    widget_script,
    widget_styles,
    page_styles,
    demo_article,
    embed_thread,
]
