"""Personal-data requests: export everything about an address, erase it (anonymize or delete), audit it."""

from __future__ import annotations

import msgspec
import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.errors import InvalidInput
from comments.export import privacy
from comments.models import AuditEvent, Comment, CommentStatus, Role, Site, Thread
from comments.moderation import accounts
from tests.export.conftest import Populated, populate

pytestmark = pytest.mark.anyio

ADA = "ada@example.org"


async def audit_of(session: AsyncSession) -> list[AuditEvent]:
    return list((await session.exec(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


async def test_export_holds_every_comment_account_and_audit_event(session: AsyncSession, populated: Populated) -> None:
    other = await populate(session, slug="other")
    await accounts.add_user(session, email=ADA, password="correct horse battery", site=populated.site, role=Role.owner)
    c0 = populated.comments[0]
    session.add(AuditEvent(site_id=c0.site_id, action="approve", comment_id=c0.id, before={"status": "pending"}))
    await session.commit()

    data = await privacy.export_personal_data(session, email=" ADA@example.org ")
    assert data["email"] == ADA
    ours = [c for c in populated.comments + other.comments if c.author_email.lower() == ADA]
    assert [c["id"] for c in data["comments"]] == [c.id for c in ours]
    assert len(ours) == 6  # three per site, one typed as Ada@Example.org
    first = data["comments"][0]
    assert (first["site"], first["thread_key"], first["ip"], first["user_agent"]) == (
        "blog", "/2026/11/first", "203.0.113.0", "Mozilla/5.0 (X11; Linux x86_64)",
    )  # fmt: skip
    assert data["account"]["email"] == ADA
    assert data["account"]["memberships"] == [{"site": "blog", "role": Role.owner}]
    assert "password_hash" not in data["account"]
    assert [e["action"] for e in data["audit_events"]] == ["approve"]
    encoded = msgspec.json.encode(data)  # what the CLI writes
    assert b"argon2" not in encoded
    assert b"eve@example.org" not in encoded

    scoped = await privacy.export_personal_data(session, email=ADA, site=other.site)
    assert {c["site"] for c in scoped["comments"]} == {"other"}


async def test_erase_anonymizes_audits_and_scrubs_the_log(session: AsyncSession, populated: Populated) -> None:
    other = await populate(session, slug="other")
    c0 = populated.comments[0]
    session.add(
        AuditEvent(
            site_id=c0.site_id, action="edit", comment_id=c0.id,
            before={"content_raw": "old", "author_name": "Ada", "author_email": ADA}, after={"author_url": "https://x"},
        )
    )  # fmt: skip
    await session.commit()
    versions = {t.id: t.version for t in populated.threads}
    site_id, other_id = populated.site.id, other.site.id
    ids = [x.id for x in populated.comments]

    report = await privacy.erase_personal_data(session, email=ADA, site=populated.site)
    await session.commit()
    assert (report.anonymized, report.deleted, report.threads) == (3, 0, 2)
    session.expire_all()
    rows = (await session.exec(select(Comment).order_by(col(Comment.id)))).all()
    erased = [c for c in rows if c.id in {ids[0], ids[2], ids[5]}]
    for comment in erased:
        assert (comment.author_name, comment.author_email, comment.author_url) == ("Anonymous", "", None)
        assert (comment.ip, comment.user_agent, comment.submitter_hash) == (None, None, None)
        assert comment.content_raw  # the text stays, without a name on it
    untouched = [c for c in rows if c.site_id == other_id and c.author_email.lower() == ADA]
    assert len(untouched) == 3  # --site limits the erasure
    assert {c.author_name for c in rows if c.author_email == "eve@example.org"} == {'=HYPERLINK("http://evil")'}

    events = await audit_of(session)
    edit = next(e for e in events if e.action == "edit")
    assert (edit.before, edit.after) == ({"content_raw": "old"}, {})
    erasures = [e for e in events if e.action == "privacy.erase"]
    assert sorted(e.comment_id for e in erasures) == sorted(c.id for c in erased)  # type: ignore[type-var]
    assert ADA not in repr([(e.before, e.after) for e in events]).lower()
    for thread in (await session.exec(select(Thread).where(col(Thread.site_id) == site_id))).all():
        assert thread.version > versions[thread.id]

    site = await session.get(Site, site_id)
    assert (await privacy.export_personal_data(session, email=ADA, site=site))["comments"] == []


async def test_erase_delete_keeps_replies_of_others(session: AsyncSession, populated: Populated) -> None:
    c = [x.id for x in populated.comments]
    report = await privacy.erase_personal_data(session, email=ADA, delete_comments=True)
    await session.commit()
    assert (report.deleted, report.anonymized) == (3, 0)
    session.expire_all()
    left = {x.id: x for x in (await session.exec(select(Comment))).all()}
    assert set(left) == {c[1], c[3], c[4], c[6]}
    # Eve replied to Ada's deleted comment: her reply moves up and becomes a top-level comment.
    assert (left[c[1]].parent_id, left[c[1]].depth, left[c[1]].root_id) == (None, 0, c[1])
    threads = {t.key: t for t in (await session.exec(select(Thread))).all()}
    assert threads["/2026/11/first"].approved_count == 1
    assert threads["post-42"].approved_count == 1
    actions = [(e.action, e.comment_id, e.after) for e in await audit_of(session)]
    assert sorted(actions, key=repr) == sorted([("privacy.delete", c[i], None) for i in (0, 2, 5)], key=repr)


async def test_erase_refuses_an_empty_address(session: AsyncSession, populated: Populated) -> None:
    await privacy.erase_personal_data(session, email=ADA)
    with pytest.raises(InvalidInput):
        await privacy.erase_personal_data(session, email="  ")  # would match every erased comment
    with pytest.raises(InvalidInput):
        await privacy.export_personal_data(session, email="")


async def test_erase_unknown_address_changes_nothing(session: AsyncSession, populated: Populated) -> None:
    report = await privacy.erase_personal_data(session, email="nobody@example.org")
    assert (report.anonymized, report.deleted, report.threads) == (0, 0, 0)
    assert await audit_of(session) == []
    statuses = [x.status for x in (await session.exec(select(Comment))).all()]
    assert statuses.count(CommentStatus.approved) == 4
