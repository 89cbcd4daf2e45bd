"""Auto-moderation: which status a new comment gets, and why (the site's Discussion settings).

The rules run in WordPress's order of precedence: a disallowed keyword wins over
everything, then anything that holds a comment (moderation keywords, too many
links), and only then can a known author be approved automatically. Reasons are
machine-readable (`links>=2`, `moderation_keyword:"casino"`,
`disallowed_keyword:"viagra"`, `known_author`, `manual_approval`) and shown to moderators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import col, select

from comments.models import Comment, CommentStatus, DisallowedAction

if TYPE_CHECKING:
    from sqlmodel import Session

    from comments.models import Site

REASON_MAX = 200
# In the sanitized html every link, typed or linkified, is an <a>; in the raw text we also count
# bare URLs that are not an attribute value, so a link survives whichever form the caller passes.
_HTML_LINK = re.compile(r"<a\b", re.IGNORECASE)
_RAW_LINK = re.compile(r"<a\b|(?<![=\"'/])\b(?:https?://|www\.)", re.IGNORECASE)


@dataclass(frozen=True)
class Draft:
    """A validated, not yet stored comment: what the rules look at."""

    name: str
    email: str
    url: str | None
    content: str
    html: str
    ip: str | None


@dataclass(frozen=True)
class Decision:
    """The status a comment enters with and the rule that chose it (shown to moderators)."""

    status: CommentStatus
    reason: str


def keywords(text: str) -> list[str]:
    """The site's keyword list: one per line, blank lines ignored, compared case-insensitively."""
    return [line.strip().lower() for line in text.splitlines() if line.strip()]


def count_links(draft: Draft) -> int:
    """Links in a comment: `<a>` tags and bare URLs, whichever of raw text or html shows more."""
    return max(len(_HTML_LINK.findall(draft.html)), len(_RAW_LINK.findall(draft.content)))


def matching_keyword(words: list[str], draft: Draft) -> str | None:
    """The first keyword found in the content, name, email, website or IP of the draft."""
    haystacks = [draft.content, draft.name, draft.email, draft.url or "", draft.ip or ""]
    lowered = [h.lower() for h in haystacks]
    return next((word for word in words if any(word in h for h in lowered)), None)


def _reason(kind: str, word: str) -> str:
    quoted = word.replace('"', "'")
    return f'{kind}:"{quoted[: REASON_MAX - len(kind) - 3]}"'


def is_known_author(session: Session, *, site: Site, draft: Draft) -> bool:
    """True when this name and email already have an approved comment on the site."""
    emails = {draft.email, draft.email.lower()}
    found = session.exec(
        select(Comment.id)
        .where(
            col(Comment.site_id) == site.id,
            col(Comment.author_email).in_(emails),
            col(Comment.author_name) == draft.name,
            col(Comment.status) == CommentStatus.approved,
        )
        .limit(1)
    )
    return found.first() is not None


def decide_status(session: Session, *, site: Site, draft: Draft) -> Decision:
    """Pick the status for a new comment; manual approval of everything is the default."""
    if word := matching_keyword(keywords(site.disallowed_keywords), draft):
        target = CommentStatus.trash if site.disallowed_action == DisallowedAction.trash else CommentStatus.spam
        return Decision(target, _reason("disallowed_keyword", word))
    if word := matching_keyword(keywords(site.moderation_keywords), draft):
        return Decision(CommentStatus.pending, _reason("moderation_keyword", word))
    if site.hold_links > 0 and count_links(draft) >= site.hold_links:
        return Decision(CommentStatus.pending, f"links>={site.hold_links}")
    if site.auto_approve_known and is_known_author(session, site=site, draft=draft):
        return Decision(CommentStatus.approved, "known_author")
    return Decision(CommentStatus.pending, "manual_approval")
