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
    ordered = [
        "ed:" + email.rpartition("@")[2].lower(),
        f"links:{min(len(domains), 3)}",
        f"len:{min(len(content) // 200, 5)}",
        "nm:" + ("has_digits" if any(ch.isdigit() for ch in name) else "plain"),
    ]
    if url:
        ordered += ["au:has_url", *["ad:" + d.lower().removeprefix("www.") for d in _LINK.findall(url)]]
    squeezed = " ".join(text.split())
    ordered += ["d:" + d for d in domains]
    ordered += ["w:" + w for w in words]
    ordered += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    ordered += ["c:" + squeezed[i : i + 4] for i in range(0, len(squeezed) - 3, 2)]
    # A comment has hundreds of features and almost none is long: test before calling _fit.
    return list(dict.fromkeys(t if len(t) <= _MAX_PLAIN else _fit(t) for t in ordered))[:MAX_FEATURES]


_MAX_PLAIN = 60


def _fit(token: str) -> str:
    # Keys are at most 64 characters; long ones are replaced by a digest (collisions do not matter here).
    return token if len(token) <= _MAX_PLAIN else "h:" + hashlib.blake2b(token.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Model:
    """A site's document totals: how many comments its moderators have approved (ham) and marked spam."""

    site_id: int
    spam_docs: int
    ham_docs: int


_TOKEN: Any = SpamToken.__table__  # type: ignore[attr-defined]
_MODEL: Any = SpamModel.__table__  # type: ignore[attr-defined]
_TOTALS = sa.select(_MODEL.c.spam_docs, _MODEL.c.ham_docs).where(_MODEL.c.site_id == sa.bindparam("site_id"))

# The counts of the listed features, built once per backend. The features go in as one JSON
# array that the database unpacks: an IN list of 300 bound parameters is rewritten into the
# SQL on every execution, which cost three times as much as running the query. On SQLite,
# CROSS JOIN makes the array the outer loop, one index probe per feature (13 us on an empty
# table, 115 us with 30k tokens), where IN (SELECT ...) first builds a temporary index of the
# array on every call (42 and 160 us).
_COUNTS: dict[str, Any] = {
    "sqlite": sa.text(
        "SELECT t.token, t.spam, t.ham FROM json_each(:tokens) AS j CROSS JOIN spam_token AS t"
        " WHERE t.site_id = :site_id AND t.token = j.value"
    ).columns(_TOKEN.c.token, _TOKEN.c.spam, _TOKEN.c.ham),
    "postgresql": sa.select(_TOKEN.c.token, _TOKEN.c.spam, _TOKEN.c.ham).where(
        _TOKEN.c.site_id == sa.bindparam("site_id"),
        _TOKEN.c.token.in_(
            sa.select(
                sa.func.json_array_elements_text(sa.cast(sa.bindparam("tokens", type_=sa.String), sa.JSON))
                .table_valued("value")
                .c.value
            )
        ),
    ),
}


def load_model(session: Session, *, site_id: int) -> Model:
    """The site's document totals (zero before any decision)."""
    row = session.connection().execute(_TOTALS, {"site_id": site_id}).first()
    return Model(site_id, row.spam_docs, row.ham_docs) if row is not None else Model(site_id, 0, 0)


def score(session: Session, *, model: Model, tokens: list[str]) -> Verdict:
    """P(spam) for these distinct features under the site's model (0.5 before any decision).

    The model comes from load_model, so a batch of posts reads the site's totals once.
    """
    params = {"site_id": model.site_id, "tokens": json.dumps(tokens)}
    counts = session.connection().execute(_COUNTS[session.get_bind().dialect.name], params).all()
    spam_docs, ham_docs = model.spam_docs, model.ham_docs
    logit = math.log((spam_docs + 1) / (ham_docs + 1))
    for _token, spam, ham in counts:
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
