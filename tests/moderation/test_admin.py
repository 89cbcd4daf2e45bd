"""The /admin pages over plain HTTP: forms carry the CSRF token and work without JavaScript."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import Comment, CommentStatus, Site
from tests.moderation.conftest import PASSWORD, LoginAs, Moderator, World

pytestmark = pytest.mark.anyio


def form_token(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "form without CSRF token"
    return match.group(1)


async def post_form(moderator: Moderator, url: str, page: str, fields: dict[str, str | list[str]]):
    """Submit like a browser without JavaScript: the token comes from the page's hidden field, not a header."""
    data = {**fields, "_csrf_token": form_token(page)}
    return await moderator.client.post(url, data=data, follow_redirects=False)


async def test_login_form_round_trip(client: AsyncTestClient[Litestar], world: World) -> None:
    page = await client.get("/admin/login?next=/admin/queue%3Fsite%3Dalpha")
    assert page.status_code == 200
    token = form_token(page.text)
    wrong = await client.post(
        "/admin/login", data={"email": "owner@alpha.example", "password": "nope", "_csrf_token": token}
    )
    assert wrong.status_code == 401
    assert "Wrong email or password." in wrong.text
    right = await client.post(
        "/admin/login",
        data={
            "email": "owner@alpha.example",
            "password": PASSWORD,
            "next": "/admin/queue?site=alpha",
            "_csrf_token": token,
        },
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/admin/queue?site=alpha"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"])
async def test_login_never_redirects_off_site(client: AsyncTestClient[Litestar], world: World, target: str) -> None:
    response = await client.post(
        "/admin/login",
        data={"email": "owner@alpha.example", "password": PASSWORD, "next": target},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/admin"


async def test_every_form_carries_the_csrf_token(login_as: LoginAs, world: World) -> None:
    owner = await login_as("owner@alpha.example")
    for url in ["/admin/queue?site=alpha", "/admin/sites/alpha/settings", "/admin/audit?site=alpha"]:
        html = (await owner.get(url)).text
        forms = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', html, flags=re.S)
        assert forms, url
        assert all('name="_csrf_token"' in form for form in forms), url


async def test_queue_page_shows_entries_and_escapes_author_fields(
    login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    comment = (await session.exec(select(Comment).where(col(Comment.id) == world.pending.id))).one()
    comment.author_name = '<img src=x onerror="alert(1)">'
    comment.author_url = "javascript:alert(1)"
    session.add(comment)
    await session.commit()
    owner = await login_as("owner@alpha.example")
    html = (await owner.get("/admin/queue?site=alpha")).text
    assert "&lt;img src=x" in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert "bob@example.org" in html
    assert 'href="https://alpha.example/1"' in html  # the thread link
    assert 'data-count="pending">1<' in html


async def test_bulk_and_single_actions_work_as_plain_forms(
    login_as: LoginAs, world: World, session: AsyncSession
) -> None:
    moderator = await login_as("mod@alpha.example")
    page = (await moderator.get("/admin/queue?site=alpha&status=approved")).text
    response = await post_form(
        moderator,
        f"/admin/comments/{world.approved.id}/status",
        page,
        {"status": "trash", "next": "/admin/queue?site=alpha&status=approved"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/queue?site=alpha&status=approved"
    response = await post_form(
        moderator,
        "/admin/bulk",
        page,
        {
            "ids": [str(world.pending.id), str(world.approved.id)],
            "bulk_status": "spam",
            "next": "/admin/queue?site=alpha",
        },
    )
    assert response.status_code == 303
    await session.commit()
    statuses = (await session.exec(select(Comment.status).where(col(Comment.site_id) == world.alpha.id))).all()
    assert set(statuses) == {CommentStatus.spam}
    nothing = await post_form(moderator, "/admin/bulk", page, {"bulk_status": "spam"})
    assert nothing.status_code == 400
    assert "Tick at least one comment first." in nothing.text


async def test_settings_form_saves_rules(login_as: LoginAs, world: World, session: AsyncSession) -> None:
    owner = await login_as("owner@alpha.example")
    page = (await owner.get("/admin/sites/alpha/settings")).text
    fields = {
        "name": "Alpha Blog",
        "auto_approve_known": "on",
        "hold_links": "4",
        "max_depth": "3",
        "moderation_keywords": "casino",
        "disallowed_keywords": "",
        "disallowed_action": "trash",
        "webhook_url": "",
    }
    response = await post_form(owner, "/admin/sites/alpha/settings", page, fields)
    assert response.status_code == 303
    assert "saved=true" in response.headers["location"]
    await session.commit()
    site = (
        await session.exec(select(Site).where(col(Site.slug) == "alpha").execution_options(populate_existing=True))
    ).one()
    assert (site.name, site.auto_approve_known, site.hold_links, site.max_depth) == ("Alpha Blog", True, 4, 3)
    bad = await post_form(owner, "/admin/sites/alpha/settings", page, {**fields, "hold_links": "-3"})
    assert bad.status_code == 400
    assert "hold_links" in bad.text


async def test_wrong_site_pages_are_an_html_404(login_as: LoginAs, world: World) -> None:
    stranger = await login_as("owner@beta.example")
    response = await stranger.get("/admin/queue?site=alpha")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Unknown site" in response.text
