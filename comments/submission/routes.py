"""POST /api/comments: the Leave-a-Reply form, from the widget (JSON) or a plain HTML form post."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import msgspec
from litestar import MediaType, Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Parameter, Schema
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_408_REQUEST_TIMEOUT
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import cors, sites
from comments.errors import CommentsError, error_body, error_responses
from comments.models import CommentStatus
from comments.submission import service
from comments.submission.schemas import REPLY_REQUEST_BODY, ReplyCreate, ReplyCreated
from comments.widget import render
from comments.widget.service import public_comment

if TYPE_CHECKING:
    from comments.models import Site

log = logging.getLogger("comments.submission")
MAX_FORM_FIELDS = 100  # the form has ten; a body of thousands of empty fields is only a way to burn CPU
PUBLIC = {"exclude_from_csrf": True}
ERROR_CODES = (400, 403, 404, 408, 409, 413, 429)
HTML_PAGE = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, description="An HTML page listing the errors."))


@dataclass
class ReplyOperation(Operation):
    """OpenAPI for `create_reply`, which decodes its body itself (JSON or form), so Litestar cannot infer it."""

    def __post_init__(self) -> None:
        """Document the body, the optional headers, and the HTML error page a form post gets."""
        self.request_body = REPLY_REQUEST_BODY
        self.parameters = [
            *(self.parameters or []),
            Parameter(
                name="X-Comment-Token",
                param_in="header",
                schema=Schema(type=OpenAPIType.STRING),
                description=(
                    "The submitter token of an earlier reply, so all of a reader's comments share it; "
                    "one this service cannot have issued (not 20-100 ASCII characters) is ignored."
                ),
            ),
            Parameter(
                name="Idempotency-Key",
                param_in="header",
                schema=Schema(type=OpenAPIType.STRING, max_length=service.MAX_IDEMPOTENCY_KEY),
                description="A retry with the same key answers with the first reply instead of storing another.",
            ),
        ]
        for code in ERROR_CODES:
            response = (self.responses or {}).get(str(code))
            if isinstance(response, OpenAPIResponse) and response.content is not None and code not in (408, 413):
                response.content["text/html"] = HTML_PAGE


async def _read_reply(request: Request[Any, Any, Any], *, read_seconds: float) -> tuple[ReplyCreate, bool]:
    """Decode the body as JSON or as a classic form post; the flag says which.

    Anything that is not valid UTF-8 text, or JSON nested past the decoder's depth,
    is a 400: it is refused, never repaired (U+FFFD would silently alter what was typed).
    A body still incomplete after `read_seconds` is a 408: uvicorn has no read timeout
    of its own, and a client trickling a body byte by byte would otherwise hold the
    request open indefinitely. (No database connection is taken before the body is in.)
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        with anyio.fail_after(read_seconds):
            if content_type == "multipart/form-data":
                form = await request.form()
                fields: dict[str, str] | None = {k: v for k, v in form.items() if isinstance(v, str)}
            elif content_type == "application/x-www-form-urlencoded":
                fields = _parse_urlencoded(await request.body())
            else:
                fields, body = None, await request.body()
        if fields is not None:
            if fields.get("parent_id", "").strip() in ("", "0"):
                fields.pop("parent_id", None)
            return msgspec.convert(fields, ReplyCreate, strict=False), True
        return msgspec.json.decode(body, type=ReplyCreate), False
    except TimeoutError as exc:
        raise HTTPException(
            status_code=HTTP_408_REQUEST_TIMEOUT, detail="The request body arrived too slowly."
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValidationException("Invalid request body: it is not valid UTF-8 text.") from exc
    except RecursionError as exc:
        raise ValidationException("Invalid request body: it is nested too deeply.") from exc
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValidationException(f"Invalid request body: {exc}") from exc


def _parse_urlencoded(body: bytes) -> dict[str, str]:
    """A urlencoded form, decoded strictly (the last of repeated fields wins).

    Raises:
        UnicodeDecodeError: the body or a percent-encoded value is not UTF-8.
        ValidationException: more fields than the form has.
    """
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:
        if isinstance(exc, UnicodeDecodeError):
            raise
        raise ValidationException(f"Invalid request body: more than {MAX_FORM_FIELDS} form fields.") from exc
    return dict(pairs)


def _client(request: Request[Any, Any, Any]) -> service.ClientInfo:
    return service.ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        origin=cors.request_origin(request),
        token=request.headers.get("x-comment-token"),
        idempotency_key=request.headers.get("idempotency-key"),
    )


@post(
    "/api/comments",
    opt=PUBLIC,
    status_code=201,
    summary="Post a reply (JSON or classic form post)",
    operation_class=ReplyOperation,
    responses={
        201: ResponseSpec(
            data_container=ReplyCreated, description="Stored; normally pending moderation.", generate_examples=False
        ),
        303: ResponseSpec(data_container=None, description="Form post stored: back to the article."),
        **error_responses(*ERROR_CODES),
    },
)
async def create_reply(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], state: State
) -> Response[Any]:
    """Post a reply: validated, sanitized, stored as pending; answers 201 with a submitter token.

    JSON bodies answer JSON (with CORS headers for the site's origins, errors included).
    A urlencoded form post (the no-JavaScript path) answers 303 back to the article at
    `#comment-ID`, or an HTML page that lists the errors with a link back.
    """
    data, is_form = await _read_reply(request, read_seconds=state.settings.body_timeout_seconds)
    client = _client(request)
    own_origin = sites.origin_of(state.settings.base_url)
    submitted = await service.post_reply(db_session, settings=state.settings, data=data, client=client)
    if isinstance(submitted, service.Refusal):
        exc, site = submitted.error, submitted.site
        if is_form:
            return _form_error_page(exc, back=_back_link(request, data, site, own_origin))
        headers = cors.cors_headers(client.origin, site.origins if site else [], own_origin=own_origin)
        return Response(error_body(exc), status_code=exc.status_code, headers={**exc.headers, **headers})
    comment, site = submitted.comment, submitted.site
    log.info(
        "comment %s stored on %s (thread %s) as %s: %s",
        comment.id,
        site.slug,
        comment.thread_id,
        comment.status,
        comment.reason,
    )
    if is_form:
        target = _back_link(request, data, site, own_origin) or f"{state.settings.base_url.rstrip('/')}/demo"
        if comment.status != CommentStatus.approved:
            # Not public yet, so #comment-ID would point at nothing: the signed flag lets the
            # server-rendered thread (demo, /embed) say "awaiting moderation" there instead.
            target = _with_query(target, render.pending_query(state.settings.secret_key, comment.id or 0))
        return Redirect(f"{target.split('#')[0]}#comment-{comment.id}", status_code=303)
    body = ReplyCreated(comment=public_comment(comment), token=submitted.token, message=submitted.message)
    headers = cors.cors_headers(client.origin, site.origins, own_origin=own_origin)
    return Response(msgspec.json.encode(body), status_code=201, media_type=MediaType.JSON, headers=headers)


def _back_link(
    request: Request[Any, Any, Any], data: ReplyCreate, site: Site | None, own_origin: str | None
) -> str | None:
    """Where a form post returns to: the article URL, else the referring page, when on the site's origins.

    Never an arbitrary address, so the form cannot be used as an open redirect.
    """
    if site is None:
        return None
    for candidate in (data.thread_url, request.headers.get("referer")):
        if candidate and sites.allows_origin(site, sites.origin_of(candidate), own_origin=own_origin):
            return candidate
    return None


def _with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` set in its query (replacing earlier values of the same names), without its #fragment."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()]), fragment=""))


def _form_error_page(exc: CommentsError, *, back: str | None) -> Template:
    """A plain page that lists every error with a link back, like WordPress's wp-comments-post.php."""
    return Template(
        template_name="form_error.html",
        context={"error": error_body(exc), "back": back, "labels": render.FIELD_LABELS},
        status_code=exc.status_code,
        headers=exc.headers,
    )


ROUTES = [create_reply]
