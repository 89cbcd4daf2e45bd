"""Thread identity (canonical keys, merges) and the tree bookkeeping every feature relies on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import threads
from comments.config import Settings
from comments.models import AuditEvent, Comment, CommentStatus, Thread, ThreadAlias
from tests.factories import make_comment, make_site, make_thread, reply_body
from tests.test_cli import cli_env, run_cli

pytestmark = pytest.mark.anyio

ARTICLE = "/2026/11/article"


@pytest.mark.parametrize(
    "variant",
    [
        "/2026/11/article",
        "/2026/11/article/",
        "//2026//11///article",
        "/2026/11/article/index.html",
        "/2026/11/article/INDEX.HTM",
        "/2026/11/article#comments",
        "/2026/11/article?utm_source=x&utm_medium=y&utm_campaign=z",
        "/2026/11/article?fbclid=abc&gclid=def",
        "https://blog.example.org/2026/11/article",
        "HTTPS://Blog.Example.ORG:443/2026/11/article/?utm_content=1#respond",
        "http://blog.example.org:80/2026/11/article",
        "https://www.blog.example.org/2026/11/article?mc_cid=1&mc_eid=2",
        "/2026/11/%61rticle",
    ],
)
def test_url_variants_of_one_article_have_one_key(variant: str) -> None:
    assert threads.canonical_key(variant) == ARTICLE


@pytest.mark.parametrize(
    ("raw", "keep", "expected"),
    [
        ("/?p=123&utm_source=feed", [], "/?p=123"),
        ("/?p=123&ref=home", ["p"], "/?p=123"),
        ("/?b=2&a=1", [], "/?a=1&b=2"),
        ("/", [], "/"),
        ("article-123", [], "article-123"),
        ("/café", [], "/caf%C3%A9"),
        ("/Case/Matters", [], "/Case/Matters"),
    ],
)
def test_query_parameters_that_matter_are_kept(raw: str, keep: list[str], expected: str) -> None:
    assert threads.canonical_key(raw, keep_params=keep) == expected


async def test_noisy_urls_land_in_one_thread(session: AsyncSession, make_client: Any) -> None:
    await make_site(session)
    async with make_client(flood_seconds=0) as client:
        for i, noisy in enumerate([ARTICLE, f"{ARTICLE}/?utm_source=tw", f"https://blog.example.org{ARTICLE}#c"]):
            response = await client.post("/api/comments", json=reply_body(thread=noisy, content=f"c{i}"))
            assert response.status_code == 201
        by_url = await client.post(
            "/api/comments",
            json=reply_body(
                thread="", thread_url=f"https://blog.example.org{ARTICLE}/index.html?fbclid=1", content="by url"
            ),
        )
        assert by_url.status_code == 201
    assert [t.key for t in (await session.exec(select(Thread))).all()] == [ARTICLE]


async def test_site_setting_lists_the_parameters_that_identify_articles(
    session: AsyncSession, make_client: Any
) -> None:
    site = await make_site(session)
    site.thread_query_params = ["p"]
    await session.commit()
    async with make_client(flood_seconds=0) as client:
        for i, key in enumerate(["/?p=1&ref=a", "/?p=1&ref=b", "/?p=2"]):
            assert (await client.post("/api/comments", json=reply_body(thread=key, content=f"c{i}"))).status_code == 201
        count = await client.get("/api/counts", params=[("site", "blog"), ("thread", "/?ref=x&p=1")])
    assert sorted(t.key for t in (await session.exec(select(Thread))).all()) == ["/?p=1", "/?p=2"]
    assert count.json() == {"counts": {"/?ref=x&p=1": 0}}


async def test_merge_keeps_every_comment_reachable_under_both_keys(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    old = await make_thread(session, site=site, key="/old-slug")
    new = await make_thread(session, site=site, key="/new-slug")
    await make_comment(session, thread=old, content="on the old page")
    await make_comment(session, thread=new, content="on the new page")
    assert site.id is not None
    await threads.merge_threads(session, site_id=site.id, source_key="/old-slug", target_key="/new-slug")
    await session.commit()
    for key in ("/old-slug", "/new-slug", "https://blog.example.org/old-slug/?utm_source=x"):
        body = (await client.get("/api/comments", params={"site": "blog", "thread": key})).json()
        assert sorted(c["html"] for c in body["comments"]) == ["<p>on the new page</p>", "<p>on the old page</p>"]
        assert body["thread"]["count"] == 2
    counts = await client.get("/api/counts?site=blog&thread=/old-slug&thread=/new-slug")
    assert counts.json() == {"counts": {"/old-slug": 2, "/new-slug": 2}}
    audit = (await session.exec(select(AuditEvent))).one()
    assert (audit.action, audit.after) == ("thread_merge", {"comments_moved": 1})


async def test_a_reply_through_an_old_key_lands_in_the_merged_thread(session: AsyncSession, client: Any) -> None:
    site = await make_site(session)
    await make_thread(session, site=site, key="/old")
    target = await make_thread(session, site=site, key="/new")
    assert site.id is not None
    await threads.merge_threads(session, site_id=site.id, source_key="/old", target_key="/new")
    await session.commit()
    assert (await client.post("/api/comments", json=reply_body(thread="/old"))).status_code == 201
    comment = (await session.exec(select(Comment))).one()
    assert comment.thread_id == target.id


async def test_merge_refuses_unknown_and_identical_threads(session: AsyncSession) -> None:
    from comments.errors import InvalidInput, NotFound

    site = await make_site(session)
    await make_thread(session, site=site, key="/a")
    assert site.id is not None
    with pytest.raises(NotFound):
        await threads.merge_threads(session, site_id=site.id, source_key="/a", target_key="/missing")
    with pytest.raises(InvalidInput):
        await threads.merge_threads(session, site_id=site.id, source_key="/a", target_key="/a")


async def test_merge_from_the_cli(settings: Settings, session: AsyncSession) -> None:
    site = await make_site(session)
    old = await make_thread(session, site=site, key="/old")
    await make_thread(session, site=site, key="/new")
    await make_comment(session, thread=old)
    result = run_cli(
        "thread", "merge", "--site", "blog", "https://blog.example.org/old/?utm_source=x", "/new", env=cli_env(settings)
    )
    assert result.returncode == 0, result.stderr
    assert "merged" in result.stdout
    session.expire_all()
    alias = (await session.exec(select(ThreadAlias))).one()
    assert alias.key == "/old"


async def test_deleting_a_comment_keeps_its_replies(session: AsyncSession) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    root = await make_comment(session, thread=thread, content="root")
    middle = await make_comment(session, thread=thread, parent=root, content="middle")
    await make_comment(session, thread=thread, parent=middle, content="leaf")
    middle_id, thread_id = middle.id, thread.id
    await threads.delete_comments(session, [root.id or 0])
    await session.commit()
    session.expire_all()
    rows = (await session.exec(select(Comment).order_by(col(Comment.id)))).all()
    assert [(c.content_raw, c.parent_id, c.depth, c.root_id) for c in rows] == [
        ("middle", None, 0, middle_id),
        ("leaf", middle_id, 1, middle_id),
    ]
    refreshed = await session.get(Thread, thread_id)
    assert refreshed is not None
    assert refreshed.approved_count == 2


def test_visibility_does_not_depend_on_row_order() -> None:
    approved, trash = CommentStatus.approved, CommentStatus.trash
    rows = [(5, 9, approved), (9, None, approved), (7, 8, approved), (8, None, trash), (6, 5, approved)]
    assert threads.visible_ids(rows) == {5, 6, 9}
    assert threads.visible_ids(list(reversed(rows))) == {5, 6, 9}
