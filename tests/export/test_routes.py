"""The owners' export and personal-data API over HTTP: formats, filters, download headers, refusals, audit."""
# ruff: noqa: S314  (the standard library parser checks our own output; hostile input is tested in test_import)

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.app import create_app
from comments.config import Settings
from comments.export import routes, service
from comments.models import AuditEvent, Comment, Role
from tests.export.conftest import Populated, populate
from tests.moderation.conftest import LoginAs, Moderator, add_account

pytestmark = pytest.mark.anyio

WP = "{http://wordpress.org/export/1.2/}"
ADA = "ada@example.org"
OWNER = "owner@blog.example"
MODERATOR = "mod@blog.example"
OTHER_OWNER = "owner@other.example"


@pytest.fixture
async def sites(session: AsyncSession, populated: Populated) -> tuple[Populated, Populated]:
    """`blog` (an owner and a moderator) and `other` (its own owner), each holding the same seven comments."""
    other = await populate(session, slug="other")
    await add_account(session, OWNER, populated.site, Role.owner)
    await add_account(session, MODERATOR, populated.site, Role.moderator)
    await add_account(session, OTHER_OWNER, other.site, Role.owner)
    return populated, other


@pytest.fixture
async def owner(sites: tuple[Populated, Populated], login_as: LoginAs) -> Moderator:
    return await login_as(OWNER)


async def audit_of(session: AsyncSession, action: str) -> list[AuditEvent]:
    await session.rollback()  # a fresh snapshot: the app wrote through its own connections
    found = await session.exec(select(AuditEvent).where(col(AuditEvent.action) == action).order_by(col(AuditEvent.id)))
    return list(found.all())


def today() -> str:
    return datetime.now(UTC).date().isoformat()


async def test_owner_downloads_every_format(sites: tuple[Populated, Populated], owner: Moderator) -> None:
    blog, other = sites
    ids = [c.id for c in blog.comments]
    ada = blog.comments[0]

    jsonl = await owner.get("/api/sites/blog/export?format=jsonl")
    assert jsonl.status_code == 200, jsonl.text
    assert jsonl.headers["content-type"] == "application/x-ndjson"
    assert jsonl.headers["content-disposition"] == f'attachment; filename="comments-blog-{today()}.jsonl"'
    assert jsonl.headers["cache-control"] == "no-store"
    assert "content-length" not in jsonl.headers  # streamed, not built in memory first
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [r["id"] for r in records] == ids
    assert {r["site"] for r in records} == {"blog"}
    first = records[0]
    assert (first["author_name"], first["author_email"], first["author_url"]) == ("Ada", ADA, ada.author_url)
    assert (first["thread_key"], first["content_raw"], first["status"]) == (
        "/2026/11/first",
        ada.content_raw,
        "approved",
    )

    as_csv = await owner.get("/api/sites/blog/export?format=csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    assert as_csv.headers["content-disposition"] == f'attachment; filename="comments-blog-{today()}.csv"'
    rows = list(csv.DictReader(io.StringIO(as_csv.text, newline="")))
    assert [int(r["id"]) for r in rows] == ids
    assert (rows[0]["author_name"], rows[0]["author_email"], rows[0]["content_raw"]) == ("Ada", ADA, ada.content_raw)
    assert rows[1]["author_name"].startswith("'=")  # formula neutralized on the way out

    wxr = await owner.get("/api/sites/blog/export", params={"format": "wxr"})
    assert wxr.status_code == 200
    assert wxr.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert wxr.headers["content-disposition"] == f'attachment; filename="comments-blog-{today()}.xml"'
    comments = list(ET.fromstring(wxr.content).iter(f"{WP}comment"))
    assert sorted(int(c.findtext(f"{WP}comment_id") or 0) for c in comments) == sorted(ids)
    found = next(c for c in comments if c.findtext(f"{WP}comment_id") == str(ada.id))
    assert found.findtext(f"{WP}comment_author") == "Ada"
    assert found.findtext(f"{WP}comment_author_email") == ADA
    assert found.findtext(f"{WP}comment_approved") == "1"

    # The other site's seven comments (same authors, same texts) are in none of them.
    others = {c.id for c in other.comments}
    assert not others & {r["id"] for r in records}
    assert not others & {int(r["id"]) for r in rows}


async def test_default_format_is_json_lines(sites: tuple[Populated, Populated], owner: Moderator) -> None:
    response = await owner.get("/api/sites/blog/export")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert len(response.text.splitlines()) == 7


async def test_filters_status_thread_dates_and_personal_data(
    sites: tuple[Populated, Populated], owner: Moderator
) -> None:
    blog, _ = sites
    params: dict[str, Any] = {
        "status": ["approved", "trash"],
        "thread": "post-42",
        "since": "2026-11-05",
        "until": "2026-11-06",  # a bare date includes that day
        "personal_data": "false",
    }
    response = await owner.get("/api/sites/blog/export", params=params)
    assert response.status_code == 200, response.text
    records = [json.loads(line) for line in response.text.splitlines()]
    assert [r["id"] for r in records] == [blog.comments[4].id, blog.comments[5].id]
    assert all("author_email" not in r and "ip" not in r and "user_agent" not in r for r in records)

    approved = await owner.get("/api/sites/blog/export?format=csv&status=approved&since=2026-11-02T00:00:00Z")
    rows = list(csv.DictReader(io.StringIO(approved.text, newline="")))
    assert [int(r["id"]) for r in rows] == [blog.comments[i].id for i in (1, 5, 6)]
    assert rows[0]["author_email"] == "eve@example.org"  # personal data is included by default


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("thread=/no/such/post", 404, None),
        ("thread=a%00b", 400, "thread"),
        ("since=yesterday", 400, "since"),
        ("until=2026-13-01", 400, "until"),
        ("format=pdf", 400, "format"),
        ("status=deleted", 400, "status"),
    ],
)
async def test_bad_filters_are_refused_before_the_download_starts(
    sites: tuple[Populated, Populated], owner: Moderator, session: AsyncSession, query: str, status: int, field: str
) -> None:
    response = await owner.get(f"/api/sites/blog/export?{query}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "content-disposition" not in response.headers
    if field:
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await audit_of(session, "export") == []


async def test_every_export_is_audited_with_who_format_and_filters(
    sites: tuple[Populated, Populated], owner: Moderator, session: AsyncSession
) -> None:
    blog, _ = sites
    await owner.get("/api/sites/blog/export?format=wxr&status=spam&thread=post-42&since=2026-11-01&personal_data=0")
    await owner.get("/api/sites/blog/export")
    events = await audit_of(session, "export")
    user = (await session.exec(select(AuditEvent.user_id).where(col(AuditEvent.action) == "export"))).first()
    assert user is not None
    assert [(e.site_id, e.comment_id) for e in events] == [(blog.site.id, None)] * 2
    assert events[0].after == {
        "format": "wxr",
        "status": ["spam"],
        "thread": ["post-42"],
        "since": "2026-11-01T00:00:00+00:00",
        "until": None,
        "personal_data": False,
    }
    assert events[1].after is not None
    assert events[1].after["format"] == "jsonl"
    assert events[1].after["status"] == []


ROUTES = [
    ("GET", "/api/sites/{}/export", None),
    ("POST", "/api/sites/{}/privacy/export", {"email": ADA}),
    ("POST", "/api/sites/{}/privacy/erase", {"email": ADA, "delete": True}),
]


async def call(client: Moderator, method: str, path: str, body: dict[str, str] | None, slug: str = "blog") -> Any:
    return await client.send(method, path.format(slug), json=body) if body else await client.get(path.format(slug))


async def test_only_the_sites_owners_get_in(
    sites: tuple[Populated, Populated], login_as: LoginAs, make_client: Any, session: AsyncSession
) -> None:
    moderator = await login_as(MODERATOR)
    stranger = await login_as(OTHER_OWNER)
    async with make_client() as client:
        await client.get("/admin/login")  # a csrftoken cookie, so the refusal is about the session
        anonymous = Moderator(client)
        for method, path, body in ROUTES:
            refused = await call(anonymous, method, path, body)
            assert (refused.status_code, refused.json()["code"]) == (401, "not_authenticated"), path
    for method, path, body in ROUTES:
        forbidden = await call(moderator, method, path, body)
        assert (forbidden.status_code, forbidden.json()["code"]) == (403, "forbidden"), path
        hidden = await call(stranger, method, path, body)
        assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found"), path
        assert (await call(stranger, method, path, body, slug="nope")).json() == hidden.json() | {
            "detail": "Unknown site: 'nope'."
        }
    await session.rollback()
    assert (await session.exec(select(AuditEvent))).all() == []
    assert (await session.exec(select(Comment).where(col(Comment.author_name) == "Anonymous"))).all() == []


async def test_personal_data_posts_need_the_csrf_token(
    sites: tuple[Populated, Populated], owner: Moderator, session: AsyncSession
) -> None:
    for _method, path, body in ROUTES[1:]:
        missing = await owner.client.post(path.format("blog"), json=body)
        assert (missing.status_code, missing.json()["code"]) == (403, "forbidden")
        forged = await owner.client.post(path.format("blog"), json=body, headers={"x-csrftoken": "forged" * 10})
        assert forged.status_code == 403
    await session.rollback()
    assert (await session.exec(select(AuditEvent))).all() == []
    owner.client.cookies.delete("csrftoken")
    await owner.get("/api/sites/blog/export")  # a download hands out the token too (README's curl example)
    assert owner.client.cookies.get("csrftoken")
    accepted = await owner.send("POST", "/api/sites/blog/privacy/export", json={"email": ADA})
    assert accepted.status_code == 200


async def test_personal_data_export_holds_this_site_only(
    sites: tuple[Populated, Populated], owner: Moderator, session: AsyncSession
) -> None:
    blog, other = sites
    response = await owner.send("POST", "/api/sites/blog/privacy/export", json={"email": " ADA@Example.org "})
    assert response.status_code == 200, response.text
    data = response.json()
    assert (data["email"], data["site"], data["account"]) == (ADA, "blog", None)
    assert [c["id"] for c in data["comments"]] == [blog.comments[i].id for i in (0, 2, 5)]
    assert {c["site"] for c in data["comments"]} == {"blog"}
    assert data["comments"][0]["ip"] == "203.0.113.0"
    assert not {c.id for c in other.comments} & {c["id"] for c in data["comments"]}

    # A moderator's account: their membership of this site only, no login sessions, no other site's audit log.
    mod = await add_account(session, MODERATOR, other.site, Role.owner)
    session.add(AuditEvent(site_id=blog.site.id, user_id=mod.id, action="settings", after={"max_depth": 3}))
    session.add(AuditEvent(site_id=other.site.id, user_id=mod.id, action="settings", after={"max_depth": 4}))
    await session.commit()
    response = await owner.send("POST", "/api/sites/blog/privacy/export", json={"email": MODERATOR})
    moderator = response.json()
    assert moderator["account"]["memberships"] == [{"site": "blog", "role": "moderator"}]
    assert "login_sessions" not in moderator["account"]
    assert "password_hash" not in moderator["account"]
    assert moderator["comments"] == []
    assert [e["after"] for e in moderator["audit_events"]] == [{"max_depth": 3}]

    events = await audit_of(session, "privacy.export")
    assert [(e.site_id, e.after) for e in events] == [
        (blog.site.id, {"comments": 3, "account": False}),
        (blog.site.id, {"comments": 0, "account": True}),
    ]


async def test_erase_through_the_api_anonymizes_what_the_public_sees(
    sites: tuple[Populated, Populated], owner: Moderator, make_client: Any, session: AsyncSession
) -> None:
    blog, other = sites
    thread = "/api/comments?site=blog&thread=/2026/11/first"
    async with make_client() as public:
        before = (await public.get(thread)).json()["comments"]
        assert (before[0]["author"]["name"], before[0]["author"]["url"]) == ("Ada", blog.comments[0].author_url)

        response = await owner.send("POST", "/api/sites/blog/privacy/erase", json={"email": "Ada@example.org"})
        assert response.status_code == 200, response.text
        assert response.json() == {"anonymized": 3, "deleted": 0, "threads": 2}

        after = (await public.get(thread)).json()["comments"]
        assert [c["id"] for c in after] == [c["id"] for c in before]
        assert (after[0]["author"]["name"], after[0]["author"]["url"]) == ("Anonymous", None)
        assert "Ada" not in json.dumps(after)

    await session.rollback()
    personal = select(Comment.author_name, Comment.author_email, Comment.ip, Comment.user_agent)
    erased = (await session.exec(personal.where(col(Comment.id) == blog.comments[0].id))).one()
    assert tuple(erased) == ("Anonymous", "", None, None)
    # The same address on the other site is not this owner's to erase.
    untouched = (await session.exec(personal.where(col(Comment.id) == other.comments[0].id))).one()
    assert tuple(untouched)[:2] == ("Ada", ADA)
    events = await audit_of(session, "privacy.erase")
    assert len(events) == 3
    assert {e.user_id for e in events} == {(await owner.get("/api/auth/me")).json()["id"]}


async def test_erase_can_delete_the_comments(
    sites: tuple[Populated, Populated], owner: Moderator, session: AsyncSession
) -> None:
    blog, _ = sites
    response = await owner.send("POST", "/api/sites/blog/privacy/erase", json={"email": ADA, "delete": True})
    assert response.json() == {"anonymized": 0, "deleted": 3, "threads": 2}
    records = [json.loads(line) for line in (await owner.get("/api/sites/blog/export")).text.splitlines()]
    assert [r["id"] for r in records] == [blog.comments[i].id for i in (1, 3, 4, 6)]
    assert len(await audit_of(session, "privacy.delete")) == 3


@pytest.mark.parametrize("body", [{}, {"email": ""}, {"email": "not-an-address"}, {"email": "a@b", "extra": 1}])
async def test_personal_data_requests_validate_the_address(
    sites: tuple[Populated, Populated], owner: Moderator, body: dict[str, Any]
) -> None:
    for path in ("/api/sites/blog/privacy/export", "/api/sites/blog/privacy/erase"):
        response = await owner.send("POST", path, json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["code"] == "validation_error"


async def test_requested_addresses_reach_no_log_and_no_audit_event(
    sites: tuple[Populated, Populated], owner: Moderator, session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    asked = "Someone.Private@Hidden-Example.org"
    for path in ("/api/sites/blog/privacy/export", "/api/sites/blog/privacy/erase"):
        for email in (asked, ADA, "x" * 250 + "@" + "y" * 10):
            assert (await owner.send("POST", path, json={"email": email})).status_code in (200, 400)
    logged = "\n".join(record.getMessage() for record in caplog.records).lower()
    assert "hidden-example" not in logged
    assert ADA not in logged
    await session.rollback()
    stored = json.dumps([e.model_dump(mode="json") for e in (await session.exec(select(AuditEvent))).all()]).lower()
    assert "hidden-example" not in stored
    assert ADA not in stored


async def test_a_client_that_goes_away_mid_download_leaves_no_connection_behind(
    settings: Settings, sites: tuple[Populated, Populated], owner: Moderator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "EXPORT_BATCH", 1)  # seven batches: the client leaves after the first
    app = create_app(settings)
    pool = app.state.engine.sync_engine.pool
    out: list[Any] = []
    event.listen(pool, "checkout", lambda *_: out.append(1))
    event.listen(pool, "checkin", lambda *_: out.pop())
    cookies = "; ".join(f"{name}={value}" for name, value in owner.client.cookies.items())
    sent: list[dict[str, Any]] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) == 3:  # the start, the (empty) JSONL header, the first batch
            gone.set()
            await asyncio.sleep(0.05)  # the disconnect lands while this chunk is being sent

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/api/sites/blog/export", "raw_path": b"/api/sites/blog/export", "query_string": b"",
        "headers": [(b"host", b"testserver.local"), (b"cookie", cookies.encode())],
        "client": ("127.0.0.1", 1234), "server": ("testserver.local", 80), "root_path": "", "state": {},
    }  # fmt: skip
    async with AsyncTestClient(app=app, base_url="http://testserver.local"):  # runs the app's lifespan
        await app(scope, receive, send)  # type: ignore[arg-type]
        assert sent[0]["status"] == 200
        assert len(sent) < 9  # it stopped early
        assert out == []  # every connection is back in the pool before the app shuts down


def test_download_names_of_non_ascii_sites_have_an_ascii_fallback() -> None:
    assert routes._attachment("comments-blog-2026-11-25.csv") == 'attachment; filename="comments-blog-2026-11-25.csv"'
    assert routes._attachment("comments-blög-2026-11-25.csv") == (
        "attachment; filename=\"comments-bl_g-2026-11-25.csv\"; filename*=UTF-8''comments-bl%C3%B6g-2026-11-25.csv"
    )
