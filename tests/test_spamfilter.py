"""The spam filter learns from moderators' decisions, acts only once trained, and lives in the database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import db, spamfilter
from comments.models import Comment, CommentStatus, SpamModel, ident
from tests.factories import make_comment, make_site, make_thread, reply_body

pytestmark = pytest.mark.anyio

SPAM = [
    "Cheap viagra and casino bonus at http://pills-{i}.example.biz buy now limited offer",
    "Best casino bonus codes, win money fast http://casino-{i}.example.biz click here now",
    "Buy cheap pills online no prescription http://pharma-{i}.example.biz discount offer",
]
HAM = [
    "I disagree with the second paragraph: the council vote was in {i}, not later.",
    "Thanks for the article, my grandmother lived on that street for {i} years.",
    "Could you add a source for the figures in the chart? The {i} numbers look off.",
]


async def train(session: AsyncSession, *, spam: int, ham: int) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    for i in range(spam):
        comment = await make_comment(
            session, thread=thread, status=CommentStatus.spam, email=f"bot{i}@spam.biz", content=SPAM[i % 3].format(i=i)
        )
        await spamfilter.learn_from_status(session, comment)
    for i in range(ham):
        comment = await make_comment(
            session,
            thread=thread,
            status=CommentStatus.approved,
            email=f"reader{i}@example.org",
            content=HAM[i % 3].format(i=i),
        )
        await spamfilter.learn_from_status(session, comment)
    await session.commit()


async def post(make_client: Any, session: AsyncSession, **fields: Any) -> Comment:
    async with make_client(flood_seconds=0) as client:
        response = await client.post("/api/comments", json=reply_body(**fields))
    assert response.status_code == 201
    await session.rollback()  # end the read snapshot (SQLite WAL) so the server's commits show
    comment = await session.get(Comment, response.json()["comment"]["id"])
    assert comment is not None
    session.expunge(comment)  # a snapshot: later rollbacks must not expire it
    return comment


async def test_after_similar_spam_the_next_one_goes_to_spam_with_its_score(
    session: AsyncSession, make_client: Any
) -> None:
    await train(session, spam=21, ham=21)
    spam = await post(
        make_client,
        session,
        email="new@spam.biz",
        content="Casino bonus and cheap pills http://casino-99.example.biz buy now",
    )
    ham = await post(
        make_client,
        session,
        email="kim@example.org",
        content="The council vote was in 2019; thanks for the correction in the article.",
    )
    assert spam.status == CommentStatus.spam
    assert spam.reason is not None
    assert spam.reason.startswith("spam_score:")
    assert float(spam.reason.split(":")[1]) >= 0.9
    assert ham.status == CommentStatus.pending
    assert ham.reason == "manual_approval"
    assert ham.spam_score is not None
    assert ham.spam_score < 0.5


async def test_a_cold_filter_scores_but_does_not_act(session: AsyncSession, make_client: Any) -> None:
    await train(session, spam=19, ham=19)
    comment = await post(
        make_client,
        session,
        email="new@spam.biz",
        content="Casino bonus and cheap pills http://casino-99.example.biz buy now",
    )
    assert comment.status == CommentStatus.pending
    assert comment.reason == "manual_approval"
    assert comment.spam_score is not None
    assert comment.spam_score > 0.5


async def test_the_model_survives_a_restart(session: AsyncSession, engine: AsyncEngine, settings: Any) -> None:
    await train(session, spam=21, ham=21)
    tokens = spamfilter.features(name="x", email="a@spam.biz", url=None, content="cheap casino bonus buy now")
    fresh = db.create_engine(settings)
    try:
        async with db.session_maker(fresh)() as other:
            site_id = (await other.exec(select(SpamModel))).one().site_id
            model = await other.run_sync(spamfilter.load_model, site_id=site_id)
            verdict = await other.run_sync(spamfilter.score, model=model, tokens=tokens)
    finally:
        await fresh.dispose()
    assert verdict.trained
    assert verdict.score > 0.9


async def test_a_reversed_decision_is_unlearned(session: AsyncSession) -> None:
    site = await make_site(session)
    thread = await make_thread(session, site=site)
    comment = await make_comment(session, thread=thread, content="honest words here")
    await spamfilter.learn_from_status(session, comment)
    comment.status = CommentStatus.spam
    await spamfilter.learn_from_status(session, comment)
    await spamfilter.learn_from_status(session, comment)  # the same decision twice counts once
    await session.commit()
    model = await session.get(SpamModel, ident(site))
    assert model is not None
    await session.refresh(model)
    assert (model.spam_docs, model.ham_docs) == (1, 0)
    assert comment.trained_as == "spam"


@pytest.mark.parametrize(
    ("score", "trained", "status", "expected"),
    [
        (0.95, True, CommentStatus.pending, CommentStatus.spam),
        (0.95, True, CommentStatus.approved, CommentStatus.spam),
        (0.6, True, CommentStatus.approved, CommentStatus.pending),
        (0.6, True, CommentStatus.pending, CommentStatus.pending),
        (0.1, True, CommentStatus.approved, CommentStatus.approved),
        (0.99, False, CommentStatus.approved, CommentStatus.approved),
        (0.99, True, CommentStatus.trash, CommentStatus.trash),
    ],
)
def test_thresholds(score: float, trained: bool, status: CommentStatus, expected: CommentStatus) -> None:
    from comments.models import Site

    site = Site(slug="s", name="s")
    assert spamfilter.decide(site, spamfilter.Verdict(score, trained), status, "rule")[0] == expected


def test_features_are_bounded_and_short() -> None:
    tokens = spamfilter.features(
        name="n", email="e@x.org", url="https://www.example.org/x", content="word " * 5000 + "x" * 500
    )
    assert len(tokens) <= spamfilter.MAX_FEATURES
    assert all(len(t) <= 64 for t in tokens)
    assert "ad:example.org" in tokens
