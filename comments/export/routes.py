"""The owners' export API: a site's comments as a download, and personal-data requests (JSON).

Every route needs the `comments_session` cookie of an owner of the site in the path; the two
POSTs also the CSRF token (cookie `csrftoken`, echoed in the `x-csrftoken` header). Refusals as
for the moderation API: 401 without a session, 404 for a site the caller is not a member of,
403 for its moderators and without a valid CSRF token. The personal-data routes take the email
address in the body, never in the URL, so it stays out of access logs and browser history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import anyio
from litestar import Controller, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
)
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import db
from comments.errors import FieldError, InvalidInput, error_responses
from comments.export import csv_format, jsonl, privacy, service, wxr
from comments.export.schemas import (
    ErasureReport,
    ErasureRequest,
    ExportFormat,
    ExportOptions,
    PersonalDataRequest,
    parse_moment,
)
from comments.models import CommentStatus, Site
from comments.moderation import guards
from comments.moderation import service as moderation

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from litestar.types import ControllerRouterHandler

OWNER = {"auth": "owner"}
API_ERRORS = error_responses(400, 401, 403, 404, 429)
MAX_THREADS = 100
# A download of personal data: no cache on the way may keep a copy.
NO_STORE = {"Cache-Control": "no-store"}

Statuses = Annotated[
    list[CommentStatus] | None, QueryParameter(description="Only these statuses; repeatable (default: all).")
]
ThreadKeys = Annotated[
    list[str] | None,
    QueryParameter(max_items=MAX_THREADS, description="Only these threads (key, path or URL); repeatable."),
]
Since = Annotated[
    str | None, QueryParameter(max_length=40, description="Created at or after this UTC date or time (ISO 8601).")
]
Until = Annotated[
    str | None,
    QueryParameter(max_length=40, description="Created before this UTC time; a bare date includes that whole day."),
]

PersonalData = Annotated[bool, QueryParameter(description="Include email, IP network and user agent.")]


def _moment(name: str, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_moment(value, end_of_day=end_of_day)
    except ValueError as exc:
        raise InvalidInput([FieldError(name, str(exc))]) from exc


def _attachment(filename: str) -> str:
    """A Content-Disposition for a download; a slug with non-ASCII letters also gets the RFC 6266 `filename*`."""
    plain = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    if plain == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename)}"


def _filters(fmt: ExportFormat, options: ExportOptions) -> dict[str, Any]:
    """What the audit log records about an export (thread keys and dates; no personal data)."""
    return {
        "format": fmt.value,
        "status": [s.value for s in options.statuses],
        "thread": list(options.thread_keys),
        "since": options.since.isoformat() if options.since else None,
        "until": options.until.isoformat() if options.until else None,
        "personal_data": options.personal_data,
    }


async def _own_session_export(
    engine: AsyncEngine, *, site: Site, writer: service.ExportWriter, fmt: ExportFormat, options: ExportOptions
) -> AsyncGenerator[bytes, None]:
    # The request's session is committed and closed when the response starts, before the body is sent,
    # so the rows come through a session of the stream's own, closed after the last chunk or when the
    # client goes away.
    session = db.session_maker(engine)()
    chunks = service.export_comments(session, site=site, writer=writer, options=options, fmt=fmt)
    try:
        while True:
            # Shielded, so a client going away never cancels a driver call half-way (which leaves the
            # connection unusable, dropped by the pool unclosed); it stops the stream at the next chunk.
            with anyio.CancelScope(shield=True):
                chunk = await anext(chunks, None)
            if chunk is None:
                break
            yield chunk
    finally:
        # A client that goes away cancels the response's task group, and anyio cancels every later await
        # in it too: shielded, the cursor and the session still close and the connection goes back to the
        # pool (unshielded it would be dropped mid-read, its SQLite read transaction left to the GC).
        with anyio.CancelScope(shield=True):
            await chunks.aclose()
            await session.close()


async def _prepend(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


@dataclass
class DownloadOperation(Operation):
    """The export's OpenAPI operation: its 200 is a file in one of three media types, not JSON."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.description = "The file, streamed; its type follows `format`."
            binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
            media_types = (jsonl.MEDIA_TYPE, csv_format.MEDIA_TYPE, wxr.MEDIA_TYPE)
            ok.content = {media_type: OpenAPIMediaType(schema=binary) for media_type in media_types}
            ok.headers = {
                "Content-Disposition": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING),
                    description='attachment; filename="comments-{site}-{date}.{jsonl|csv|xml}"',
                )
            }


async def _close(stream: AsyncGenerator[bytes, None]) -> None:
    # A plain coroutine function: Litestar would run a generator's builtin `aclose` as a sync callable.
    await stream.aclose()


class ExportController(Controller):
    """A site's comments and personal-data requests, for its owners."""

    path = "/api/sites/{site:str}"
    dependencies = guards.DEPENDENCIES
    tags = ["export"]  # noqa: RUF012

    @get("/export", responses=API_ERRORS, opt=OWNER, cache=False, operation_class=DownloadOperation)
    async def export_site(
        self,
        db_engine: NamedDependency[AsyncEngine],
        owner: NamedDependency[guards.Member],
        format: FromQuery[ExportFormat] = ExportFormat.jsonl,
        status: Statuses = None,
        thread: ThreadKeys = None,
        since: Since = None,
        until: Until = None,
        personal_data: PersonalData = True,
    ) -> Stream:
        """Download the site's comments as JSON Lines, CSV or WordPress WXR, streamed; every export is audited."""
        options = ExportOptions(
            statuses=tuple(dict.fromkeys(status or ())),
            thread_keys=tuple(thread or ()),
            since=_moment("since", since),
            until=_moment("until", until, end_of_day=True),
            personal_data=personal_data,
        )
        writer = service.make_writer(format, site=owner.site, personal_data=personal_data)
        chunks = _own_session_export(db_engine, site=owner.site, writer=writer, fmt=format, options=options)
        # The first chunk runs the query's set-up (the thread lookup), so an unknown thread is still a
        # 404 answer here rather than a download cut short after its headers went out.
        first = await anext(chunks)
        try:
            # Its own short write transaction: the request's is a reader (GET), which SQLite could not
            # upgrade to a writer under load, and the audit event must not depend on the download finishing.
            async with db.session_scope(db_engine) as audit:
                await db.begin_write(audit)
                await moderation.record_event(
                    audit, member=owner, action="export", before=None, after=_filters(format, options)
                )
        except BaseException:
            await chunks.aclose()
            raise
        filename = f"comments-{owner.site.slug}-{datetime.now(UTC).date().isoformat()}.{writer.extension}"
        # Litestar appends "; charset=utf-8" to every text/* type itself (CSV), so those go without it.
        media_type = writer.media_type.partition(";")[0] if writer.media_type.startswith("text/") else writer.media_type
        body = _prepend(first, chunks)
        return Stream(
            body,
            # Litestar stops iterating when the client goes away but leaves the generator open; closing it
            # afterwards returns its connection now, not whenever the garbage collector gets to it.
            background=BackgroundTask(_close, body),
            media_type=media_type,
            headers={"Content-Disposition": _attachment(filename), **NO_STORE},
        )

    @post("/privacy/export", responses=API_ERRORS, opt=OWNER, status_code=200)
    async def export_personal_data(
        self,
        db_session: NamedDependency[AsyncSession],
        owner: NamedDependency[guards.Member],
        data: JSONBody[PersonalDataRequest],
    ) -> dict[str, Any]:
        """Everything this site stores about an email address (comments, membership, audit log), as JSON."""
        found = await privacy.export_personal_data(db_session, email=data.email, site=owner.site)
        # The audit log says that a request was answered, and how much it held; never whose address it was.
        summary = {"comments": len(found["comments"]), "account": found["account"] is not None}
        await moderation.record_event(db_session, member=owner, action="privacy.export", before=None, after=summary)
        return found

    @post("/privacy/erase", responses=API_ERRORS, opt=OWNER, status_code=200)
    async def erase_personal_data(
        self,
        db_session: NamedDependency[AsyncSession],
        owner: NamedDependency[guards.Member],
        data: JSONBody[ErasureRequest],
    ) -> ErasureReport:
        """Anonymize (or delete) every comment written with an email address on this site; each is audited."""
        # `current_user` already opened this request's transaction as a writer (POST), as erasure needs.
        return await privacy.erase_personal_data(
            db_session, email=data.email, site=owner.site, delete_comments=data.delete, actor_id=owner.user_id
        )


ROUTES: list[ControllerRouterHandler] = [ExportController]
