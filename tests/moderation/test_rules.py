"""The auto-moderation rules of a site (WordPress "Discussion" settings)."""

from __future__ import annotations

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.models import CommentStatus, DisallowedAction, Site
from comments.submission.rules import Decision, Draft, count_links, decide_status, keywords
from tests.factories import make_comment, make_site, make_thread

pytestmark = pytest.mark.anyio


def draft(content: str = "Nice post.", *, name: str = "Ada", email: str = "ada@example.org", **kw: object) -> Draft:
    values: dict[str, object] = {"url": None, "html": f"<p>{content}</p>", "ip": "203.0.113.0", **kw}
    return Draft(name=name, email=email, content=content, **values)  # type: ignore[arg-type]


async def configured(session: AsyncSession, **settings: object) -> Site:
    site = await make_site(session)
    for key, value in settings.items():
        setattr(site, key, value)
    session.add(site)
    await session.commit()
    return site


async def test_manual_approval_is_the_default(session: AsyncSession) -> None:
    site = await make_site(session)
    assert await session.run_sync(decide_status, site=site, draft=draft()) == Decision(
        CommentStatus.pending, "manual_approval"
    )


async def test_known_author_is_approved_only_when_enabled(session: AsyncSession) -> None:
    site = await configured(session, auto_approve_known=False)
    await make_comment(session, thread=await make_thread(session, site=site), status=CommentStatus.approved)
    assert (await session.run_sync(decide_status, site=site, draft=draft())).status == CommentStatus.pending
    site.auto_approve_known = True
    assert await session.run_sync(decide_status, site=site, draft=draft()) == Decision(
        CommentStatus.approved, "known_author"
    )


@pytest.mark.parametrize(
    ("name", "email", "status"),
    [
        pytest.param("Ada", "ada@example.org", CommentStatus.pending, id="only-pending-before"),
        pytest.param("Ada", "ada@example.org", CommentStatus.spam, id="only-spam-before"),
        pytest.param("Mallory", "ada@example.org", CommentStatus.approved, id="same-email-other-name"),
        pytest.param("Ada", "mallory@example.org", CommentStatus.approved, id="same-name-other-email"),
    ],
)
async def test_known_author_needs_same_name_email_and_an_approved_comment(
    session: AsyncSession, name: str, email: str, status: CommentStatus
) -> None:
    site = await configured(session, auto_approve_known=True)
    await make_comment(session, thread=await make_thread(session, site=site), status=status, name=name, email=email)
    assert (await session.run_sync(decide_status, site=site, draft=draft())).reason == "manual_approval"


async def test_known_author_on_another_site_does_not_count(session: AsyncSession) -> None:
    other = await make_site(session, slug="other")
    await make_comment(session, thread=await make_thread(session, site=other), status=CommentStatus.approved)
    site = await make_site(session, slug="mine")
    site.auto_approve_known = True
    assert (await session.run_sync(decide_status, site=site, draft=draft())).status == CommentStatus.pending


@pytest.mark.parametrize(
    ("content", "html", "links"),
    [
        ("no links here", "<p>no links here</p>", 0),
        ("see https://a.example and www.b.example", '<p>see <a href="https://a.example">x</a> www.b.example</p>', 2),
        ('<a href="http://a.example">a</a> and http://b.example', "<p>a and b</p>", 2),
        ("one http://www.a.example link", "<p>one</p>", 1),
    ],
)
def test_count_links(content: str, html: str, links: int) -> None:
    assert count_links(draft(content, html=html)) == links


async def test_too_many_links_are_held_even_for_known_authors(session: AsyncSession) -> None:
    site = await configured(session, auto_approve_known=True, hold_links=2)
    await make_comment(session, thread=await make_thread(session, site=site), status=CommentStatus.approved)
    one = draft("read https://a.example")
    two = draft("read https://a.example and https://b.example")
    assert (await session.run_sync(decide_status, site=site, draft=one)).status == CommentStatus.approved
    assert await session.run_sync(decide_status, site=site, draft=two) == Decision(CommentStatus.pending, "links>=2")


async def test_hold_links_zero_turns_the_rule_off(session: AsyncSession) -> None:
    site = await configured(session, hold_links=0)
    many = draft(" ".join(f"https://{n}.example" for n in range(9)))
    assert (await session.run_sync(decide_status, site=site, draft=many)).reason == "manual_approval"


def test_keywords_are_one_per_line_and_case_insensitive() -> None:
    assert keywords("  Casino \n\n\tPoker\n") == ["casino", "poker"]


@pytest.mark.parametrize(
    "where",
    [
        {"content": "Visit the CASINO now"},
        {"name": "Casino King"},
        {"email": "king@casino.example"},
        {"url": "https://casino.example"},
        {"ip": "198.51.100.7"},
    ],
)
async def test_moderation_keyword_holds_whatever_field_it_is_in(session: AsyncSession, where: dict[str, str]) -> None:
    site = await configured(session, auto_approve_known=True, moderation_keywords="casino\n198.51.100.")
    await make_comment(session, thread=await make_thread(session, site=site), status=CommentStatus.approved)
    values = {"content": "hello", **where}
    content = values.pop("content")
    decision = await session.run_sync(decide_status, site=site, draft=draft(content, **values))  # type: ignore[arg-type]
    assert decision.status == CommentStatus.pending
    assert decision.reason.startswith("moderation_keyword:")


async def test_disallowed_keyword_goes_to_spam_or_trash_as_configured(session: AsyncSession) -> None:
    site = await configured(session, disallowed_keywords="viagra", moderation_keywords="viagra")
    bad = draft("Cheap VIAGRA here")
    assert await session.run_sync(decide_status, site=site, draft=bad) == Decision(
        CommentStatus.spam, 'disallowed_keyword:"viagra"'
    )
    site.disallowed_action = DisallowedAction.trash
    assert (await session.run_sync(decide_status, site=site, draft=bad)).status == CommentStatus.trash


async def test_reason_quotes_and_length_stay_machine_readable(session: AsyncSession) -> None:
    word = 'a"' + "x" * 300
    site = await configured(session, moderation_keywords=word)
    decision = await session.run_sync(decide_status, site=site, draft=draft(word))
    assert len(decision.reason) <= 200
    assert decision.reason.startswith("moderation_keyword:\"a'x")
    assert decision.reason.endswith('"')
