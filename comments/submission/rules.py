"""Auto-moderation: which status a new comment gets, and why (the site's Discussion settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from comments.models import CommentStatus

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.models import Site


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


async def decide_status(session: AsyncSession, *, site: Site, draft: Draft) -> Decision:
    """Pick the status for a new comment; manual approval of everything is the default."""
    return Decision(CommentStatus.pending, "manual_approval")
