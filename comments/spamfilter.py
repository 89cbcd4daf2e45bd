"""A local spam filter that learns from the moderators' own decisions, per site.

Naive Bayes over binary features (words, word pairs, character 4-grams, link
domains, author traits). The counts live in the database (spam_token, spam_model),
so every app instance scores with the same model and it survives restarts. No
network, no third-party service: the text of a comment never leaves the server.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, update

from comments.models import CommentStatus, SpamModel, SpamToken

if TYPE_CHECKING:
    from sqlmodel import Session
    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.models import Comment, Site

MIN_DOCS_PER_CLASS = 20  # below this the filter scores but does not act (cold start; see bench)
MAX_FEATURES = 400
_WORD = re.compile(r"[a-z0-9][a-z0-9'_-]{1,29}")
_LINK = re.compile(r"https?://([a-z0-9.-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """The filter's score for a comment, and whether the model has seen enough decisions to act on it."""

    score: float
    trained: bool


def features(*, name: str, email: str, url: str | None, content: str) -> list[str]:
    """The binary features of a comment, strongest kinds first, capped at MAX_FEATURES."""
    text = content.lower()
    words = _WORD.findall(text)
    domains = [d.lower().removeprefix("www.") for d in _LINK.findall(content)]
    author = [
        "ed:" + email.rpartition("@")[2].lower(),
        f"links:{min(len(domains), 3)}",
        f"len:{min(len(content) // 200, 5)}",
        "nm:" + ("has_digits" if any(ch.isdigit() for ch in name) else "plain"),
    ]
    if url:
        author += ["au:has_url", *(f"ad:{d.lower().removeprefix('www.')}" for d in _LINK.findall(url))]
    squeezed = " ".join(text.split())
    ordered = [
        *author,
        *(f"d:{d}" for d in domains),
        *(f"w:{w}" for w in words),
        *(f"b:{a} {b}" for a, b in itertools.pairwise(words)),
        *(f"c:{squeezed[i : i + 4]}" for i in range(0, max(0, len(squeezed) - 3), 2)),
    ]
    return list(dict.fromkeys(_fit(token) for token in ordered))[:MAX_FEATURES]


def _fit(token: str) -> str:
    # Keys are at most 64 characters; long ones are replaced by a digest (collisions do not matter here).
    return token if len(token) <= 60 else "h:" + hashlib.blake2b(token.encode(), digest_size=16).hexdigest()


_TOKEN: Any = SpamToken.__table__  # type: ignore[attr-defined]
_MODEL: Any = SpamModel.__table__  # type: ignore[attr-defined]
_TOKENS = sa.bindparam("tokens", type_=sa.String)  # a JSON array of the features


def _score_query(listed: Any) -> Any:
    """The feature counts of the listed tokens, plus the site's document totals under the empty token."""
    return (
        sa.select(_TOKEN.c.token, _TOKEN.c.spam, _TOKEN.c.ham)
        .where(_TOKEN.c.site_id == sa.bindparam("site_id"), _TOKEN.c.token.in_(sa.select(listed.c.value)))
        .union_all(
            sa.select(sa.literal("", sa.String), _MODEL.c.spam_docs, _MODEL.c.ham_docs).where(
                _MODEL.c.site_id == sa.bindparam("site_id")
            )
        )
    )


# Built once, one per backend. The tokens go in as one JSON array that the database unpacks:
# an IN list of 300 bound parameters is rewritten into the SQL on every execution, which
# cost three times as much as running the query.
_SCORE_QUERIES = {
    "sqlite": _score_query(sa.func.json_each(_TOKENS).table_valued("value")),
    "postgresql": _score_query(sa.func.json_array_elements_text(sa.cast(_TOKENS, sa.JSON)).table_valued("value")),
}


def score(session: Session, *, site_id: int, tokens: list[str]) -> Verdict:
    """P(spam) for these features under the site's model (0.5 before any decision).

    One round trip: the feature counts and, under the empty token (no feature is empty),
    the site's document totals.
    """
    query = _SCORE_QUERIES[session.get_bind().dialect.name]
    rows: list[Any] = list(
        session.connection().execute(query, {"site_id": site_id, "tokens": json.dumps(tokens)}).all()
    )
    spam_docs, ham_docs = next(((spam, ham) for token, spam, ham in rows if token == ""), (0, 0))
    logit = math.log((spam_docs + 1) / (ham_docs + 1))
    for _token, spam, ham in (row for row in rows if row[0] != ""):
        # Laplace-smoothed per-class document frequencies; unseen features carry no evidence.
        logit += math.log((spam + 1) / (spam_docs + 2)) - math.log((ham + 1) / (ham_docs + 2))
    probability = 1 / (1 + math.exp(-max(-50.0, min(50.0, logit))))
    return Verdict(score=probability, trained=min(spam_docs, ham_docs) >= MIN_DOCS_PER_CLASS)


def comment_tokens(comment: Comment) -> list[str]:
    """The features of a stored comment."""
    return features(
        name=comment.author_name, email=comment.author_email, url=comment.author_url, content=comment.content_raw
    )


async def learn_from_status(session: AsyncSession, comment: Comment) -> None:
    """Teach the filter what a moderator decided: approved is ham, spam is spam; other statuses teach nothing.

    A decision that is reversed (approved, then marked spam) is unlearned first, so
    each comment counts once, as what it was last judged to be.
    """
    label = {CommentStatus.approved: "ham", CommentStatus.spam: "spam"}.get(comment.status)
    if label is None or comment.trained_as == label:
        return
    tokens = comment_tokens(comment)
    if comment.trained_as is not None:
        await _count(session, site_id=comment.site_id, tokens=tokens, label=comment.trained_as, step=-1)
    await _count(session, site_id=comment.site_id, tokens=tokens, label=label, step=1)
    comment.trained_as = label


async def _count(session: AsyncSession, *, site_id: int, tokens: list[str], label: str, step: int) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    docs_column = "spam_docs" if label == "spam" else "ham_docs"
    model_table: Any = SpamModel.__table__  # type: ignore[attr-defined]
    token_table: Any = SpamToken.__table__  # type: ignore[attr-defined]
    start = max(step, 0)
    await session.exec(
        insert(model_table)
        .values(site_id=site_id, spam_docs=start if label == "spam" else 0, ham_docs=start if label == "ham" else 0)
        .on_conflict_do_update(index_elements=["site_id"], set_={docs_column: model_table.c[docs_column] + step})
    )
    if not tokens:
        return
    if step > 0:
        rows = [
            {"site_id": site_id, "token": t, "spam": int(label == "spam"), "ham": int(label == "ham")} for t in tokens
        ]
        statement = insert(token_table).values(rows)
        await session.exec(
            statement.on_conflict_do_update(index_elements=["site_id", "token"], set_={label: token_table.c[label] + 1})
        )
    else:
        await session.exec(
            update(SpamToken)
            .where(col(SpamToken.site_id) == site_id, col(SpamToken.token).in_(tokens))
            .values({label: getattr(SpamToken, label) - 1})
        )


def decide(site: Site, verdict: Verdict, status: CommentStatus, reason: str) -> tuple[CommentStatus, str]:
    """Apply the site's thresholds to the rules' decision; a cold model never overrides the rules."""
    if not verdict.trained or status in (CommentStatus.spam, CommentStatus.trash):
        return status, reason
    label = f"spam_score:{verdict.score:.2f}"
    if verdict.score >= site.spam_threshold:
        return CommentStatus.spam, label
    if verdict.score >= site.spam_hold and status == CommentStatus.approved:
        return CommentStatus.pending, label
    return status, reason
