"""Owners edit the discussion rules and the members of their site; the rules apply to the next comment."""

from __future__ import annotations

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import AuditEvent, CommentStatus, Membership, Role, Site
from comments.submission.rules import Draft, decide_status
from tests.moderation.conftest import LoginAs, World

pytestmark = pytest.mark.anyio
SETTINGS = "/api/moderation/sites/alpha/settings"
MEMBERS = "/api/moderation/sites/alpha/members"


async def test_owner_reads_and_changes_the_rules(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    current = (await owner.get(SETTINGS)).json()
    assert current["auto_approve_known"] is False
    assert current["hold_links"] == 2
    assert current["webhook_secret_set"] is False
    changes = {
        "auto_approve_known": True,
        "hold_links": 3,
        "moderation_keywords": "casino\npoker",
        "disallowed_keywords": "viagra",
        "disallowed_action": "trash",
        "webhook_url": "https://hooks.example/comments",
        "webhook_secret": "s3cret",
    }
    response = await owner.send("PATCH", SETTINGS, json=changes)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["webhook_secret_set"] is True
    assert "s3cret" not in response.text
    assert {k: body[k] for k in changes if k != "webhook_secret"} == {
        k: v for k, v in changes.items() if k != "webhook_secret"
    }
    await session.commit()
    site = (
        await session.exec(select(Site).where(col(Site.slug) == "alpha").execution_options(populate_existing=True))
    ).one()
    draft = Draft(name="X", email="x@example.org", url=None, content="VIAGRA", html="<p>VIAGRA</p>", ip=None)
    assert (await session.run_sync(decide_status, site=site, draft=draft)).status == CommentStatus.trash
    event = (await session.exec(select(AuditEvent))).one()
    assert event.action == "settings"
    assert event.after is not None
    assert event.after["webhook_secret"] == "set"  # the secret itself never reaches the audit log
    assert event.before is not None
    assert event.before["hold_links"] == 2


@pytest.mark.parametrize(
    "bad",
    [{"hold_links": -1}, {"webhook_url": "javascript:alert(1)"}, {"disallowed_action": "delete"}, {"unknown": 1}],
)
async def test_invalid_settings_are_refused(login_as: LoginAs, world: World, bad: dict[str, object]) -> None:
    owner = await login_as("owner@alpha.example")
    response = await owner.send("PATCH", SETTINGS, json=bad)
    assert response.status_code == 400, response.text


async def test_members_are_managed_by_owners(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    listed = (await owner.get(MEMBERS)).json()
    assert [(m["email"], m["role"]) for m in listed] == [
        ("owner@alpha.example", "owner"),
        ("mod@alpha.example", "moderator"),
    ]
    no_password = await owner.send("POST", MEMBERS, json={"email": "new@alpha.example", "role": "moderator"})
    assert no_password.status_code == 400
    created = await owner.send(
        "POST", MEMBERS, json={"email": "New@Alpha.example", "role": "moderator", "password": "a long password"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "new@alpha.example"
    again = await owner.send("POST", MEMBERS, json={"email": "new@alpha.example", "role": "owner"})
    assert again.status_code == 409
    # An existing account of another site joins without a password.
    joined = await owner.send("POST", MEMBERS, json={"email": "owner@beta.example", "role": "moderator"})
    assert joined.status_code == 201
    user_id = created.json()["user_id"]
    promoted = await owner.send("PATCH", f"{MEMBERS}/{user_id}", json={"role": "owner"})
    assert promoted.json()["role"] == "owner"
    assert (await owner.send("DELETE", f"{MEMBERS}/{user_id}")).status_code == 200
    assert (await owner.send("DELETE", f"{MEMBERS}/{user_id}")).status_code == 404
    await session.commit()
    actions = (await session.exec(select(AuditEvent.action).order_by(col(AuditEvent.id)))).all()
    assert actions == ["member_add", "member_add", "member_role", "member_remove"]


async def test_a_site_keeps_at_least_one_owner(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    url = f"{MEMBERS}/{world.owner.id}"
    assert (await owner.send("PATCH", url, json={"role": "moderator"})).status_code == 409
    assert (await owner.send("DELETE", url)).status_code == 409
    await session.commit()
    role = (await session.exec(select(Membership.role).where(col(Membership.user_id) == world.owner.id))).one()
    assert role == Role.owner
