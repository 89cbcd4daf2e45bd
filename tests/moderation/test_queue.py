"""The queue API: listing, filters, keyset pagination, actions, bulk, delete, counts and the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import AuditEvent, Comment, CommentStatus, Thread, utcnow
from tests.factories import make_comment
from tests.moderation.conftest import LoginAs, World

pytestmark = pytest.mark.anyio


async def thread_state(session: AsyncSession, thread_id: int) -> tuple[int, int]:
    await session.commit()  # end the read snapshot (commit keeps loaded objects, rollback would expire them)
    query = select(Thread.approved_count, Thread.version).where(col(Thread.id) == thread_id)
    count, version = (await session.exec(query)).one()
    return count, version


async def test_queue_shows_what_the_public_never_sees(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    await session.exec(
        update(Comment).where(col(Comment.id) == world.pending.id).values(ip="203.0.113.0", user_agent="UA/1.0")
    )
    await make_comment(
        session, thread=world.alpha_thread, status=CommentStatus.approved, name="Bob", email="bob@example.org"
    )
    await make_comment(
        session, thread=world.alpha_thread, status=CommentStatus.spam, name="Bob", email="bob@example.org"
    )
    moderator = await login_as("mod@alpha.example")
    response = await moderator.get("/api/moderation/comments", params={"site": "alpha"})
    assert response.status_code == 200
    page = response.json()
    assert [c["id"] for c in page["comments"]] == [world.pending.id]
    entry = page["comments"][0]
    assert entry["author"] == {"name": "Bob", "email": "bob@example.org", "url": None}
    assert entry["ip"] == "203.0.113.0"
    assert entry["user_agent"] == "UA/1.0"
    assert entry["content_raw"] == "Hi"
    assert entry["html"] == "<p>Hi</p>"
    assert entry["thread"] == {
        "id": world.alpha_thread.id,
        "key": "/post-1",
        "title": "Post one",
        "url": "https://alpha.example/1",
    }
    assert entry["history"] == {"approved": 1, "pending": 0, "spam": 1, "trash": 0}
    assert page["counts"] == {"pending": 1, "approved": 2, "spam": 1, "trash": 0}
    assert page["next_cursor"] is None


async def test_queue_filters(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    other = Thread(site_id=world.alpha.id, key="/post-2")  # type: ignore[arg-type]
    session.add(other)
    await session.commit()
    carol = await make_comment(
        session,
        thread=other,
        status=CommentStatus.pending,
        name="Carol",
        email="Carol@Example.org",
        content="About 100% of cats",
    )
    owner = await login_as("owner@alpha.example")

    async def ids(**params: str) -> list[int]:
        response = await owner.get("/api/moderation/comments", params={"site": "alpha", **params})
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["comments"]]

    assert await ids() == [carol.id, world.pending.id]
    assert await ids(thread="/post-2") == [carol.id]
    assert await ids(email="carol@example.ORG") == [carol.id]
    assert await ids(q="100%") == [carol.id]
    assert await ids(q="bob") == [world.pending.id]  # author name
    assert await ids(q="_") == []  # LIKE wildcards are literal
    assert await ids(status="approved") == [world.approved.id]
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert await ids(since=future) == []
    assert await ids(until=future) == [carol.id, world.pending.id]
    bad = await owner.get("/api/moderation/comments", params={"site": "alpha", "status": "deleted"})
    assert bad.status_code == 400


async def test_keyset_pagination_is_newest_first_and_stable(
    login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    base = utcnow() - timedelta(days=1)
    made = []
    for n in range(7):
        comment = await make_comment(session, thread=world.alpha_thread, status=CommentStatus.spam, content=f"#{n}")
        made.append(comment.id)
    # Two comments share a timestamp: the id breaks the tie, so none is skipped or repeated.
    stamps = [
        base,
        base,
        base + timedelta(minutes=1),
        base + timedelta(minutes=2),
        base + timedelta(minutes=3),
        base + timedelta(minutes=4),
        base + timedelta(minutes=5),
    ]
    for comment_id, stamp in zip(made, stamps, strict=True):
        await session.exec(update(Comment).where(col(Comment.id) == comment_id).values(created_at=stamp))
    await session.commit()
    owner = await login_as("owner@alpha.example")
    seen: list[int] = []
    cursor = None
    while True:
        params = {"site": "alpha", "status": "spam", "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = (await owner.get("/api/moderation/comments", params=params)).json()
        seen += [c["id"] for c in page["comments"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [made[6], made[5], made[4], made[3], made[2], made[1], made[0]]
    garbage = await owner.get("/api/moderation/comments", params={"site": "alpha", "cursor": "nonsense!"})
    assert garbage.status_code == 400
    assert garbage.json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("target", ["approved", "spam", "trash", "pending"])
async def test_status_changes_are_audited_and_refresh_the_thread(
    login_as: LoginAs, world: World, session: AsyncSession, target: str
) -> None:
    count_before, version_before = await thread_state(session, world.alpha_thread.id)
    moderator = await login_as("mod@alpha.example")
    response = await moderator.send("PATCH", f"/api/moderation/comments/{world.approved.id}", json={"status": target})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == target
    count, version = await thread_state(session, world.alpha_thread.id)
    if target == "approved":  # no change: no audit, no version bump
        assert (count, version) == (count_before, version_before)
        assert (await session.exec(select(AuditEvent))).all() == []
        return
    assert count == 0
    assert version == version_before + 1
    event = (await session.exec(select(AuditEvent))).one()
    assert (event.action, event.comment_id, event.user_id) == ("status", world.approved.id, world.moderator.id)
    assert event.before == {"status": "approved"}
    assert event.after == {"status": target}
    query = select(Comment.moderated_by, Comment.moderated_at).where(col(Comment.id) == world.approved.id)
    moderated_by, moderated_at = (await session.exec(query)).one()
    assert moderated_by == world.moderator.id
    assert moderated_at is not None


async def test_approving_makes_a_comment_public(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    moderator = await login_as("mod@alpha.example")
    await moderator.send("PATCH", f"/api/moderation/comments/{world.pending.id}", json={"status": "approved"})
    assert (await thread_state(session, world.alpha_thread.id))[0] == 2


async def test_a_reply_is_hidden_with_its_trashed_parent(
    login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    reply = await make_comment(session, thread=world.alpha_thread, parent=world.approved, status=CommentStatus.approved)
    await session.exec(update(Thread).values(approved_count=2))
    await session.commit()
    owner = await login_as("owner@alpha.example")
    await owner.send("PATCH", f"/api/moderation/comments/{world.approved.id}", json={"status": "trash"})
    assert (await thread_state(session, world.alpha_thread.id))[0] == 0
    listed = (await owner.get("/api/moderation/comments", params={"site": "alpha", "status": "approved"})).json()
    assert [c["id"] for c in listed["comments"]] == [reply.id]  # moderators still see it, with its parent id
    assert listed["comments"][0]["parent_id"] == world.approved.id
    await owner.send("PATCH", f"/api/moderation/comments/{world.approved.id}", json={"status": "approved"})
    assert (await thread_state(session, world.alpha_thread.id))[0] == 2


async def test_editing_sanitizes_again_and_is_audited(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    content = 'Fixed <script>alert(1)</script><a href="javascript:x()">link</a> see https://example.org'
    response = await owner.send("PATCH", f"/api/moderation/comments/{world.approved.id}", json={"content": content})
    assert response.status_code == 200
    body = response.json()
    assert body["content_raw"] == content
    assert "<script" not in body["html"]
    assert "javascript:" not in body["html"]
    assert 'href="https://example.org"' in body["html"]
    assert 'rel="nofollow ugc"' in body["html"]
    event = (await session.exec(select(AuditEvent))).one()
    assert event.action == "edit"
    assert event.before == {"content_raw": "Old and good"}
    empty = await owner.send("PATCH", f"/api/moderation/comments/{world.approved.id}", json={"content": "<b></b>"})
    assert empty.status_code == 400


async def test_bulk_is_all_or_nothing(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    ids = [world.pending.id, world.approved.id]
    mixed = await owner.send(
        "POST", "/api/moderation/comments/bulk", json={"ids": [*ids, world.beta_pending.id], "status": "spam"}
    )
    assert mixed.status_code == 404
    assert str(world.beta_pending.id) in mixed.json()["detail"]
    await session.commit()
    statuses = (await session.exec(select(Comment.status).where(col(Comment.id).in_(ids)))).all()
    assert sorted(statuses) == [CommentStatus.approved, CommentStatus.pending]
    response = await owner.send("POST", "/api/moderation/comments/bulk", json={"ids": ids, "status": "spam"})
    assert response.status_code == 200
    assert response.json() == {"ids": sorted(ids), "status": "spam"}
    await session.commit()
    events = (await session.exec(select(AuditEvent).order_by(col(AuditEvent.comment_id)))).all()
    assert [(e.comment_id, e.after) for e in events] == [(i, {"status": "spam", "via": "bulk"}) for i in sorted(ids)]
    assert (await thread_state(session, world.alpha_thread.id))[0] == 0
    too_many = await owner.send(
        "POST", "/api/moderation/comments/bulk", json={"ids": list(range(1, 502)), "status": "spam"}
    )
    assert too_many.status_code == 400


async def test_delete_needs_an_owner_and_spam_or_trash(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    moderator = await login_as("mod@alpha.example")
    url = f"/api/moderation/comments/{world.pending.id}"
    assert (await owner.send("DELETE", url)).status_code == 409  # still pending
    await owner.send("PATCH", url, json={"status": "spam"})
    refused = await moderator.send("DELETE", url)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    response = await owner.send("DELETE", url)
    assert response.status_code == 200
    assert response.json() == {"deleted": [world.pending.id]}
    await session.commit()
    assert (await session.exec(select(Comment.id).where(col(Comment.id) == world.pending.id))).first() is None
    deletion = (await session.exec(select(AuditEvent).where(col(AuditEvent.action) == "delete"))).one()
    assert deletion.before is not None
    assert deletion.before["content_raw"] == "Hi"
    assert (await owner.send("DELETE", url)).status_code == 404


async def test_delete_takes_the_replies_only_when_they_are_spam_or_trash(
    login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    parent = await make_comment(session, thread=world.alpha_thread, status=CommentStatus.trash)
    reply = await make_comment(session, thread=world.alpha_thread, parent=parent, status=CommentStatus.approved)
    owner = await login_as("owner@alpha.example")
    conflict = await owner.send("DELETE", f"/api/moderation/comments/{parent.id}")
    assert conflict.status_code == 409
    await owner.send("PATCH", f"/api/moderation/comments/{reply.id}", json={"status": "spam"})
    response = await owner.send("DELETE", f"/api/moderation/comments/{parent.id}")
    assert response.status_code == 200
    assert sorted(response.json()["deleted"]) == sorted([parent.id, reply.id])


async def test_counts_and_audit_log(login_as: LoginAs, world: World) -> None:
    owner = await login_as("owner@alpha.example")
    counts = await owner.get("/api/moderation/counts", params={"site": "alpha"})
    assert counts.json() == {"pending": 1, "approved": 1, "spam": 0, "trash": 0}
    await owner.send("PATCH", f"/api/moderation/comments/{world.pending.id}", json={"status": "approved"})
    await owner.send("PATCH", f"/api/moderation/comments/{world.pending.id}", json={"status": "trash"})
    log = (await owner.get("/api/moderation/audit", params={"site": "alpha"})).json()
    assert [(e["action"], e["after"]) for e in log["events"]] == [
        ("status", {"status": "trash"}),
        ("status", {"status": "approved"}),
    ]
    assert log["events"][0]["user"]["email"] == "owner@alpha.example"
    assert log["events"][0]["site"] == "alpha"
    one = (await owner.get("/api/moderation/audit", params={"site": "alpha", "comment_id": world.approved.id})).json()
    assert one["events"] == []
    paged = (await owner.get("/api/moderation/audit", params={"site": "alpha", "limit": 1})).json()
    assert len(paged["events"]) == 1
    rest = await owner.get("/api/moderation/audit", params={"site": "alpha", "cursor": paged["next_cursor"]})
    assert [e["after"] for e in rest.json()["events"]] == [{"status": "approved"}]


async def test_other_sites_comments_are_invisible(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    stranger = await login_as("owner@beta.example")
    url = f"/api/moderation/comments/{world.pending.id}"
    assert (await stranger.get(url)).status_code == 404
    assert (await stranger.send("PATCH", url, json={"status": "approved"})).status_code == 404
    assert (await stranger.send("DELETE", url)).status_code == 404
    listed = await stranger.get("/api/moderation/comments", params={"site": "alpha"})
    assert listed.status_code == 404
    assert listed.json()["detail"] == "Unknown site: 'alpha'."
    nowhere = await stranger.get("/api/moderation/comments", params={"site": "no-such-site"})
    assert nowhere.json() == listed.json() | {"detail": "Unknown site: 'no-such-site'."}
    await session.commit()
    assert (await session.exec(select(Comment.status).where(col(Comment.id) == world.pending.id))).one() == "pending"
