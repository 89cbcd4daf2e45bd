"""Issue 9 in the moderators' hands: reasons shown and filterable, the filter learning from decisions,
likely-good-first order, the new site settings and thread merges."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import Comment, CommentStatus, SpamModel, Thread, ThreadAlias
from tests.factories import make_comment, make_thread, reply_body
from tests.moderation.conftest import LoginAs, World

pytestmark = pytest.mark.anyio


async def post(make_client: Any, **fields: Any) -> int:
    async with make_client(flood_seconds=0) as client:
        response = await client.post("/api/comments", json=reply_body(site="alpha", thread="/post-1", **fields))
    assert response.status_code == 201, response.text
    return int(response.json()["comment"]["id"])


async def test_each_reason_is_recorded_shown_and_filterable(
    login_as: LoginAs, world: World, session: AsyncSession, make_client: Any
) -> None:
    world.alpha.moderation_keywords = "casino"
    world.alpha.hold_links = 2
    await session.commit()
    links = await post(make_client, content="see http://a.example and http://b.example", email="l@example.org")
    keyword = await post(make_client, content="the casino by the river closed", email="k@example.org")
    manual = await post(make_client, content="plain words", email="m@example.org")
    owner = await login_as("owner@alpha.example")
    everything = (await owner.get("/api/moderation/comments", params={"site": "alpha"})).json()
    reasons = {c["id"]: c["reason"] for c in everything["comments"]}
    assert reasons[links] == "links>=2"
    assert reasons[keyword] == 'moderation_keyword:"casino"'
    assert reasons[manual] == "manual_approval"
    assert all(c["spam_score"] is not None for c in everything["comments"] if c["id"] in (links, keyword, manual))
    for wanted, expected in (("links", [links]), ("links>=2", [links]), ("moderation_keyword", [keyword])):
        page = (await owner.get("/api/moderation/comments", params={"site": "alpha", "reason": wanted})).json()
        assert [c["id"] for c in page["comments"]] == expected
    html = (await owner.get("/admin/queue", params={"site": "alpha"})).text
    assert "links&gt;=2" in html
    assert "moderation_keyword:&#34;casino&#34;" in html or 'moderation_keyword:"casino"' in html
    assert "spam score" in html
    filtered = (await owner.get("/admin/queue", params={"site": "alpha", "reason": "links"})).text
    assert f'data-comment-id="{links}"' in filtered
    assert f'data-comment-id="{keyword}"' not in filtered


async def test_moderator_decisions_teach_the_filter(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    spammy = await make_comment(
        session,
        thread=world.alpha_thread,
        status=CommentStatus.pending,
        content="cheap casino bonus http://win.example.biz",
    )
    moderator = await login_as("mod@alpha.example")
    assert (
        await moderator.send("PATCH", f"/api/moderation/comments/{spammy.id}", json={"status": "spam"})
    ).status_code == 200
    bulk = await moderator.send(
        "POST", "/api/moderation/comments/bulk", json={"ids": [world.pending.id], "status": "approved"}
    )
    assert bulk.status_code == 200
    await session.commit()
    model = (await session.exec(select(SpamModel).where(col(SpamModel.site_id) == world.alpha.id))).one()
    assert (model.spam_docs, model.ham_docs) == (1, 1)
    undo = await moderator.send("PATCH", f"/api/moderation/comments/{spammy.id}", json={"status": "approved"})
    assert undo.status_code == 200
    await session.commit()
    await session.refresh(model)
    assert (model.spam_docs, model.ham_docs) == (0, 2)


async def test_queue_sorts_likely_good_first_with_keyset_pages(
    login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    scores = [0.9, 0.1, 0.5, 0.3]
    for i, score in enumerate(scores):
        comment = await make_comment(
            session, thread=world.alpha_thread, status=CommentStatus.pending, content=f"c{i}", email=f"u{i}@example.org"
        )
        comment.spam_score = score
    world.pending.spam_score = 0.7
    session.add(world.pending)
    await session.commit()
    moderator = await login_as("mod@alpha.example")
    seen: list[float] = []
    cursor = None
    while True:
        params = {"site": "alpha", "sort": "score", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await moderator.get("/api/moderation/comments", params=params)).json()
        seen += [c["spam_score"] for c in page["comments"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [0.1, 0.3, 0.5, 0.7, 0.9]


async def test_owner_sets_spam_thread_and_retention_settings(login_as: LoginAs, world: World) -> None:
    owner = await login_as("owner@alpha.example")
    changes = {
        "spam_threshold": 0.95,
        "spam_hold": 0.6,
        "thread_query_params": ["p", " id "],
        "retention_personal_days": 30,
        "retention_purge_days": 90,
    }
    response = await owner.send("PATCH", "/api/moderation/sites/alpha/settings", json=changes)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in changes} == {**changes, "thread_query_params": ["id", "p"]}
    cleared = await owner.send("PATCH", "/api/moderation/sites/alpha/settings", json={"retention_purge_days": None})
    assert cleared.json()["retention_purge_days"] is None
    assert cleared.json()["retention_personal_days"] == 30
    refused = await owner.send("PATCH", "/api/moderation/sites/alpha/settings", json={"spam_threshold": 2})
    assert refused.status_code == 400


async def test_owner_merges_threads_by_api_and_the_old_key_resolves(
    login_as: LoginAs, world: World, session: AsyncSession, client: Any
) -> None:
    old = await make_thread(session, site=world.alpha, key="/old-post")
    await make_comment(session, thread=old, content="from the old URL")
    moderator = await login_as("mod@alpha.example")
    denied = await moderator.send(
        "POST", "/api/moderation/sites/alpha/threads/merge", json={"source": "/old-post", "target": "/post-1"}
    )
    assert denied.status_code == 403
    owner = await login_as("owner@alpha.example")
    merged = await owner.send(
        "POST",
        "/api/moderation/sites/alpha/threads/merge",
        json={"source": "https://alpha.example/old-post?utm_source=x", "target": "/post-1"},
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["key"] == "/post-1"
    await session.commit()
    assert (await session.exec(select(ThreadAlias.key))).all() == ["/old-post"]
    assert (await session.exec(select(Thread).where(col(Thread.key) == "/old-post"))).first() is None
    body = (await client.get("/api/comments", params={"site": "alpha", "thread": "/old-post"})).json()
    assert "<p>from the old URL</p>" in [c["html"] for c in body["comments"]]
    missing = await owner.send(
        "POST", "/api/moderation/sites/alpha/threads/merge", json={"source": "/nope", "target": "/post-1"}
    )
    assert missing.status_code == 404


async def test_admin_settings_page_edits_the_new_settings_and_merges(
    login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    owner = await login_as("owner@alpha.example")
    page = await owner.get("/admin/sites/alpha/settings")
    assert 'name="spam_threshold"' in page.text
    assert 'name="retention_purge_days"' in page.text
    form = {
        "name": "Alpha",
        "hold_links": "2",
        "max_depth": "5",
        "disallowed_action": "spam",
        "spam_threshold": "0.8",
        "spam_hold": "0.4",
        "thread_query_params": "p, id",
        "retention_personal_days": "14",
        "retention_purge_days": "",
    }
    saved = await owner.send("POST", "/admin/sites/alpha/settings", data=form, follow_redirects=False)
    assert saved.status_code == 303
    await session.commit()
    await session.refresh(world.alpha)
    assert (
        world.alpha.spam_threshold,
        world.alpha.thread_query_params,
        world.alpha.retention_personal_days,
        world.alpha.retention_purge_days,
    ) == (0.8, ["id", "p"], 14, None)
    await make_thread(session, site=world.alpha, key="/gone")
    merged = await owner.send(
        "POST",
        "/admin/sites/alpha/threads/merge",
        data={"source": "/gone", "target": "/post-1"},
        follow_redirects=False,
    )
    assert merged.status_code == 303
    await session.commit()
    assert (await session.exec(select(ThreadAlias.key))).all() == ["/gone"]
    assert (await session.exec(select(Comment).where(col(Comment.thread_id) == world.alpha_thread.id))).all()
