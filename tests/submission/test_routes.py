"""POST /api/comments as the widget and a plain HTML form use it: every Leave-a-Reply rule and message."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import Comment, CommentStatus, RateEvent, Thread
from comments.widget import render
from tests.factories import make_comment, make_site, make_thread, reply_body, with_client_ip

pytestmark = pytest.mark.anyio

REQUIRED = [
    {"field": "content", "message": "Please type your comment text."},
    {"field": "name", "message": "Please fill the required field: name."},
    {"field": "email", "message": "Please fill the required field: email."},
]


async def stored(session: AsyncSession) -> list[Comment]:
    await session.rollback()  # end the read snapshot (SQLite WAL) so the server's commits show
    return list((await session.exec(select(Comment).order_by(col(Comment.id)))).all())


async def test_valid_reply_is_stored_pending_with_a_token(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    async with make_client(lambda app: with_client_ip(app, "203.0.113.77")) as client:
        response = await client.post(
            "/api/comments",
            json=reply_body(url="Example.COM".join(["https://", "/x"])),
            headers={"User-Agent": "Mozilla/5.0 test"},
        )
    assert response.status_code == 201
    body = response.json()
    assert body["comment"]["status"] == "pending"
    assert body["message"] == "Your comment is awaiting moderation."
    assert body["comment"]["author"] == {"name": "Ada Lovelace", "url": "https://example.com/x"}
    assert body["comment"]["html"] == "<p>Great article, thanks!</p>"
    assert "email" not in body["comment"]
    assert len(body["token"]) >= 32
    [comment] = await stored(session)
    assert comment.status == CommentStatus.pending
    assert comment.reason == "manual_approval"
    assert comment.author_email == "ada@example.org"
    assert comment.ip == "203.0.113.0"
    assert comment.user_agent == "Mozilla/5.0 test"
    assert comment.content_raw == "Great article, thanks!"
    assert comment.submitter_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    assert comment.root_id == comment.id


async def test_ipv6_is_stored_as_its_48_network(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    async with make_client(lambda app: with_client_ip(app, "2001:db8:abcd:12:34::1")) as client:
        assert (await client.post("/api/comments", json=reply_body())).status_code == 201
    assert (await stored(session))[0].ip == "2001:db8:abcd::"


@pytest.mark.parametrize("blank", ["", "   ", "\n\t "])
async def test_every_missing_required_field_is_reported_at_once(session: AsyncSession, client: Any, blank: str) -> None:
    await make_site(session)
    response = await client.post("/api/comments", json=reply_body(content=blank, name=blank, email=blank))
    assert response.status_code == 400
    assert response.json()["errors"] == REQUIRED
    assert response.json()["code"] == "validation_error"
    assert await stored(session) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "n" * 246, "Your name is too long (the limit is 245 characters)."),
        ("email", "a" * 89 + "@example.org", "Your email address is too long (the limit is 100 characters)."),
        ("url", "https://example.org/" + "p" * 181, "Your website address is too long (the limit is 200 characters)."),
        ("content", "é" * 32763, "Your comment is too long (the limit is 65,525 bytes)."),
    ],
)
async def test_over_a_limit_is_an_error_naming_the_limit(
    session: AsyncSession, client: Any, field: str, value: str, message: str
) -> None:
    await make_site(session)
    response = await client.post("/api/comments", json=reply_body(**{field: value}))
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": field, "message": message}]
    assert await stored(session) == []


async def test_exactly_at_the_limits_is_accepted_uncut(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    content = "é" * 32762 + "a"  # 65,525 bytes
    response = await client.post(
        "/api/comments",
        json=reply_body(
            name="n" * 245, email="a" * 88 + "@example.org", url="https://example.org/" + "p" * 180, content=content
        ),
    )
    assert response.status_code == 201, response.text
    [comment] = await stored(session)
    assert comment.content_raw == content
    assert len(comment.author_name) == 245


@pytest.mark.parametrize(
    "email",
    [
        "plainaddress",
        "a@b",
        "ada@",
        "@example.org",
        "ada@exa mple.org",
        "ada@example.org\r\nBcc: victim@example.org",
        "ada@@example.org",
    ],
)
async def test_invalid_email_is_refused_without_echoing_it(session: AsyncSession, client: Any, email: str) -> None:
    await make_site(session)
    response = await client.post("/api/comments", json=reply_body(email=email))
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "email", "message": "Please enter a valid email address."}]
    assert email.split("@")[0] not in response.text or email.split("@")[0] in ("", "a")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "data:text/html,x",
        "ftp://example.org/",
        "http://user:pw@example.org/",
        "//example.org",
        "https://",
    ],
)
async def test_website_must_be_http_or_https(session: AsyncSession, client: Any, url: str) -> None:
    await make_site(session)
    response = await client.post("/api/comments", json=reply_body(url=url))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "url", "message": "Please enter a valid website address (http or https)."}
    ]


async def test_unknown_or_missing_site(session: AsyncSession, client: Any) -> None:
    unknown = await client.post("/api/comments", json=reply_body(site="nope"))
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Unknown site: 'nope'.", "code": "not_found"}
    missing = await client.post("/api/comments", json=reply_body(site=""))
    assert missing.status_code == 400
    assert missing.json()["errors"] == [{"field": "site", "message": "The site is missing."}]


async def test_first_comment_creates_the_thread_with_title_and_url(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    response = await client.post(
        "/api/comments",
        json=reply_body(thread_title="Some Article", thread_url="https://blog.example.org/2026/11/article"),
    )
    assert response.status_code == 201
    thread = (await session.exec(select(Thread))).one()
    assert (thread.key, thread.title, thread.url) == (
        "/2026/11/article",
        "Some Article",
        "https://blog.example.org/2026/11/article",
    )


async def test_a_later_comment_fills_in_a_missing_title_and_url_but_never_replaces_them(
    session: AsyncSession, make_client: Any
) -> None:
    await make_site(session)
    article = "https://blog.example.org/2026/11/article"
    async with make_client(flood_seconds=0) as client:
        assert (await client.post("/api/comments", json=reply_body(content="First."))).status_code == 201
        filled = reply_body(content="Second.", thread_title="Title", thread_url=article)
        assert (await client.post("/api/comments", json=filled)).status_code == 201
        other = reply_body(content="Third.", thread_title="Other", thread_url=f"{article}?x=1")
        assert (await client.post("/api/comments", json=other)).status_code == 201
    thread = (await session.exec(select(Thread))).one()
    assert (thread.title, thread.url) == ("Title", article)


async def test_thread_url_must_be_on_the_site_origins(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    response = await client.post("/api/comments", json=reply_body(thread_url="https://evil.example/phish"))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "thread_url", "message": "The article URL must be an http(s) address on one of this site's origins."}
    ]
    assert (await session.exec(select(func.count()).select_from(Thread))).one() == 0


async def test_closed_thread_refuses_new_comments(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    await make_thread(session, site=site, is_open=False)
    response = await client.post("/api/comments", json=reply_body())
    assert response.status_code == 409
    assert response.json() == {"detail": "Comments are closed on this article.", "code": "thread_closed"}
    assert await stored(session) == []


@pytest.mark.parametrize("parent_kind", ["pending", "other_thread", "missing", "negative", "huge"])
async def test_reply_parent_must_be_approved_and_in_the_same_thread(
    session: AsyncSession, make_client: Any, parent_kind: str
) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    other = await make_thread(session, site=site, key="/other")
    parents = {
        "pending": (await make_comment(session, thread=thread, status=CommentStatus.pending)).id,
        "other_thread": (await make_comment(session, thread=other)).id,
        "missing": 999_999,
        "negative": -1,
        "huge": 2**63,
    }
    async with make_client(flood_seconds=0) as client:
        response = await client.post("/api/comments", json=reply_body(parent_id=parents[parent_kind]))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "parent_id", "message": "The comment you are replying to does not exist or is not approved yet."}
    ]


async def test_reply_nests_under_its_parent_up_to_the_depth_cap(session: AsyncSession, make_client: Any) -> None:
    site = await make_site(session)
    site.max_depth = 2
    await session.commit()
    thread = await make_thread(session, site=site)
    root = await make_comment(session, thread=thread)
    async with make_client(flood_seconds=0) as client:
        reply = await client.post("/api/comments", json=reply_body(parent_id=root.id, content="reply"))
        assert reply.status_code == 201
        assert reply.json()["comment"]["depth"] == 1
        reply_id = reply.json()["comment"]["id"]
        await session.exec(select(Comment))  # make sure the session sees the new row
        stored_reply = await session.get(Comment, reply_id)
        assert stored_reply is not None
        stored_reply.status = CommentStatus.approved
        await session.commit()
        too_deep = await client.post("/api/comments", json=reply_body(parent_id=reply_id, content="deeper"))
    assert too_deep.status_code == 400
    assert too_deep.json()["errors"] == [
        {"field": "parent_id", "message": "Replies can be nested at most 2 levels deep."}
    ]
    assert stored_reply.root_id == root.id


async def test_content_is_sanitized_once_and_raw_text_kept(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    raw = 'Hi <script>alert(1)</script> <a href="javascript:alert(1)" onclick="x()">link</a>\n\nsee http://example.org'
    response = await client.post("/api/comments", json=reply_body(content=raw))
    assert response.status_code == 201
    [comment] = await stored(session)
    assert comment.content_raw == raw
    assert "<script" not in comment.content_html
    assert "javascript:" not in comment.content_html
    assert "onclick" not in comment.content_html
    assert '<a href="http://example.org" rel="nofollow ugc">http://example.org</a>' in comment.content_html
    assert comment.content_html.startswith("<p>Hi &lt;script&gt;")


async def test_honeypot_looks_like_success_but_is_stored_as_spam(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    response = await client.post("/api/comments", json=reply_body(leave_blank="http://spam.example"))
    assert response.status_code == 201
    assert response.json()["comment"]["status"] == "pending"
    assert response.json()["message"] == "Your comment is awaiting moderation."
    [comment] = await stored(session)
    assert (comment.status, comment.reason) == (CommentStatus.spam, "honeypot")


async def test_flood_control_per_email_and_per_ip(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    flood = {"detail": "You are posting comments too quickly. Slow down.", "code": "flood"}
    async with make_client(lambda app: with_client_ip(app, "198.51.100.1")) as first_ip:
        assert (await first_ip.post("/api/comments", json=reply_body())).status_code == 201
        same_ip = await first_ip.post("/api/comments", json=reply_body(email="bob@example.org", content="other"))
    assert same_ip.status_code == 429
    assert same_ip.json() == flood
    assert 1 <= int(same_ip.headers["retry-after"]) <= 16
    async with make_client(lambda app: with_client_ip(app, "192.0.2.9")) as other_ip:
        same_email = await other_ip.post("/api/comments", json=reply_body(content="again"))
    assert same_email.status_code == 429
    assert same_email.json() == flood
    assert len(await stored(session)) == 1


async def test_hourly_rate_limit_per_ip_is_shared_through_the_database(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    async with make_client(flood_seconds=0, rate_limit_per_hour=3) as client:
        codes = [
            (await client.post("/api/comments", json=reply_body(email=f"u{i}@example.org"))).status_code
            for i in range(4)
        ]
    assert codes == [201, 201, 201, 429]
    events = (await session.exec(select(RateEvent))).all()
    assert len(events) == 3
    assert all("testclient" not in e.bucket for e in events)


async def test_duplicate_comment_is_refused(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    async with make_client(flood_seconds=0) as client:
        assert (await client.post("/api/comments", json=reply_body())).status_code == 201
        again = await client.post("/api/comments", json=reply_body())
    assert again.status_code == 409
    assert again.json() == {
        "detail": "Duplicate comment detected; it looks as though you've already said that!",
        "code": "duplicate",
    }
    assert len(await stored(session)) == 1


async def test_origin_check_and_cors_for_browser_posts(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    async with make_client(flood_seconds=0) as client:
        evil = await client.post("/api/comments", json=reply_body(), headers={"Origin": "https://evil.example"})
        good = await client.post(
            "/api/comments", json=reply_body(content="from the blog"), headers={"Origin": "https://blog.example.org"}
        )
        bad_referer = await client.post(
            "/api/comments", json=reply_body(content="x"), headers={"Referer": "https://evil.example/page"}
        )
        invalid = await client.post(
            "/api/comments", json=reply_body(email="nope"), headers={"Origin": "https://blog.example.org"}
        )
    assert evil.status_code == 403
    assert evil.json()["code"] == "forbidden"
    assert "access-control-allow-origin" not in evil.headers
    assert good.status_code == 201
    assert good.headers["access-control-allow-origin"] == "https://blog.example.org"
    assert bad_referer.status_code == 403
    assert invalid.status_code == 400
    assert invalid.headers["access-control-allow-origin"] == "https://blog.example.org"
    assert len(await stored(session)) == 1


async def test_preflight_allows_known_origins_only(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    known = await client.options(
        "/api/comments", headers={"Origin": "https://blog.example.org", "Access-Control-Request-Method": "POST"}
    )
    unknown = await client.options(
        "/api/comments", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert known.status_code == 204
    assert known.headers["access-control-allow-origin"] == "https://blog.example.org"
    assert "X-Comment-Token" in known.headers["access-control-allow-headers"]
    assert "access-control-allow-origin" not in unknown.headers


async def test_idempotency_key_retry_gets_the_first_answer(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    async with make_client(flood_seconds=0) as client:
        first = await client.post("/api/comments", json=reply_body(), headers={"Idempotency-Key": "abc-123"})
        retry = await client.post("/api/comments", json=reply_body(), headers={"Idempotency-Key": "abc-123"})
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert len(await stored(session)) == 1


async def test_fifty_simultaneous_posts_to_one_thread_all_land_once(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    async with make_client(flood_seconds=0, rate_limit_per_hour=0) as client:
        responses = await asyncio.gather(
            *[
                client.post("/api/comments", json=reply_body(email=f"reader{i}@example.org", content=f"comment {i}"))
                for i in range(50)
            ]
        )
    assert [r.status_code for r in responses] == [201] * 50
    comments = await stored(session)
    assert sorted(c.content_raw for c in comments) == sorted(f"comment {i}" for i in range(50))
    assert len({c.id for c in comments}) == 50
    assert (await session.exec(select(func.count()).select_from(Thread))).one() == 1


async def test_form_post_redirects_back_to_the_article(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    form = {**reply_body(thread_url="https://blog.example.org/2026/11/article#respond"), "url": "", "parent_id": ""}
    response = await client.post("/api/comments", data=form, follow_redirects=False)
    assert response.status_code == 303
    [comment] = await stored(session)
    # Pending, so not in the public page: the signed flag lets the no-JS thread say so at #comment-ID.
    proof = render.pending_proof("test-secret-key-not-for-production", comment.id)
    assert response.headers["location"] == (
        f"https://blog.example.org/2026/11/article?unapproved={comment.id}&moderation-hash={proof}#comment-{comment.id}"
    )


async def test_form_post_errors_show_a_page_with_every_error_and_a_link_back(
    session: AsyncSession, client: Any
) -> None:
    await make_site(session)
    form = {**reply_body(content="", name="", email="", url=""), "thread_url": "https://blog.example.org/a?x=1&y=2"}
    response = await client.post("/api/comments", data=form)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    for item in REQUIRED:
        assert item["message"] in response.text
    assert 'href="https://blog.example.org/a?x=1&amp;y=2"' in response.text
    assert await stored(session) == []


async def test_form_post_never_redirects_off_the_site(session: AsyncSession, client: Any) -> None:
    await make_site(session)
    form = {**reply_body(), "url": ""}
    response = await client.post(
        "/api/comments", data=form, headers={"Referer": "https://evil.example/x"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "evil.example" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"content": 123, "name": "a", "email": "a@example.org", "site": "blog", "thread": "t"}',
        b'{"parent_id": "one"}',
        b"[]",
    ],
)
async def test_malformed_bodies_are_a_400(session: AsyncSession, client: Any, body: bytes) -> None:
    await make_site(session)
    response = await client.post("/api/comments", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert await stored(session) == []


async def test_duplicates_are_found_for_comments_stored_by_other_paths(session: AsyncSession, make_client: Any) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    stored_elsewhere = await make_comment(session, thread=thread, email="ada@example.org", content="Said before.")
    assert stored_elsewhere.content_hash == hashlib.sha256(b"Said before.").hexdigest()
    async with make_client(flood_seconds=0) as client:
        again = await client.post("/api/comments", json=reply_body(content="Said before."))
        other_author = await client.post(
            "/api/comments", json=reply_body(content="Said before.", email="bob@example.org")
        )
    assert again.status_code == 409
    assert other_author.status_code == 201
