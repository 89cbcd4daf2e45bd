"""Request and response shapes of the moderation API (moderators see what the public never does)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from comments.models import AuditEvent, Comment, CommentStatus, DisallowedAction, Role, Site, Thread, User

MAX_CONTENT_CHARS = 65_525


class LoginRequest(BaseModel):
    """Credentials for `POST /api/auth/login`."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class SiteRole(BaseModel):
    """A site the user may moderate, and their role there."""

    slug: str
    name: str
    role: Role


class Account(BaseModel):
    """The logged-in user and the sites they belong to."""

    id: int
    email: str
    name: str
    sites: list[SiteRole]


class ThreadRef(BaseModel):
    """Where a comment was posted."""

    id: int
    key: str
    title: str | None
    url: str | None


class AuthorDetail(BaseModel):
    """The author as moderators see them, email included."""

    name: str
    email: str
    url: str | None


class AuthorHistory(BaseModel):
    """How many other comments this email address has on the site, per status."""

    approved: int = 0
    pending: int = 0
    spam: int = 0
    trash: int = 0


class StatusCounts(BaseModel):
    """Comments per status on a site (the "12 pending" badge)."""

    pending: int = 0
    approved: int = 0
    spam: int = 0
    trash: int = 0


class CommentModeration(BaseModel):
    """One comment with everything a moderator needs to decide: email, IP, user agent, raw text, history."""

    id: int
    site: str
    thread: ThreadRef
    parent_id: int | None
    depth: int
    status: CommentStatus
    reason: str | None
    spam_score: float | None
    author: AuthorDetail
    ip: str | None
    user_agent: str | None
    content_raw: str
    html: str
    created_at: datetime
    updated_at: datetime
    moderated_at: datetime | None
    moderated_by: int | None
    history: AuthorHistory

    @classmethod
    def build(cls, comment: Comment, *, site: Site, thread: Thread, history: AuthorHistory) -> CommentModeration:
        """Assemble the moderator view of a stored comment."""
        return cls(
            id=int(comment.id or 0),
            site=site.slug,
            thread=ThreadRef(id=int(thread.id or 0), key=thread.key, title=thread.title, url=thread.url),
            parent_id=comment.parent_id,
            depth=comment.depth,
            status=comment.status,
            reason=comment.reason,
            spam_score=comment.spam_score,
            author=AuthorDetail(name=comment.author_name, email=comment.author_email, url=comment.author_url),
            ip=comment.ip,
            user_agent=comment.user_agent,
            content_raw=comment.content_raw,
            html=comment.content_html,
            created_at=comment.created_at,
            updated_at=comment.updated_at,
            moderated_at=comment.moderated_at,
            moderated_by=comment.moderated_by,
            history=history,
        )


class QueuePage(BaseModel):
    """A page of the queue, newest first; pass `next_cursor` as `cursor` for the next page."""

    comments: list[CommentModeration]
    next_cursor: str | None
    counts: StatusCounts


class CommentUpdate(BaseModel):
    """`PATCH` body: a new status (approve, spam, trash, back to pending) and/or new content."""

    model_config = ConfigDict(extra="forbid")

    status: CommentStatus | None = None
    content: str | None = Field(default=None, min_length=1, max_length=MAX_CONTENT_CHARS)


class BulkUpdate(BaseModel):
    """Set one status on many comments at once; all or nothing."""

    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=500)
    status: CommentStatus


class BulkResult(BaseModel):
    """Which comments the bulk action changed."""

    ids: list[int]
    status: CommentStatus


class AuditUser(BaseModel):
    """The moderator or owner who acted (None once their account is gone)."""

    id: int
    email: str
    name: str


class AuditEntry(BaseModel):
    """One audit event: who did what to which comment, before and after."""

    id: int
    site: str
    user: AuditUser | None
    action: str
    comment_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def build(cls, event: AuditEvent, *, site: Site, user: User | None) -> AuditEntry:
        """Assemble the API view of a stored event."""
        who = AuditUser(id=int(user.id or 0), email=user.email, name=user.name) if user else None
        return cls(
            id=int(event.id or 0),
            site=site.slug,
            user=who,
            action=event.action,
            comment_id=event.comment_id,
            before=event.before,
            after=event.after,
            created_at=event.created_at,
        )


class AuditPage(BaseModel):
    """A page of the audit log, newest first."""

    events: list[AuditEntry]
    next_cursor: str | None


class SiteSettings(BaseModel):
    """A site's discussion settings (the secret is write-only: only whether one is set is shown)."""

    slug: str
    name: str
    max_depth: int
    auto_approve_known: bool
    hold_links: int
    moderation_keywords: str
    disallowed_keywords: str
    disallowed_action: DisallowedAction
    webhook_url: str | None
    webhook_secret_set: bool
    thread_query_params: list[str]
    spam_threshold: float
    spam_hold: float
    retention_personal_days: int | None
    retention_purge_days: int | None

    @classmethod
    def build(cls, site: Site) -> SiteSettings:
        """The settings view of a site."""
        return cls(
            slug=site.slug,
            name=site.name,
            max_depth=site.max_depth,
            auto_approve_known=site.auto_approve_known,
            hold_links=site.hold_links,
            moderation_keywords=site.moderation_keywords,
            disallowed_keywords=site.disallowed_keywords,
            disallowed_action=site.disallowed_action,
            webhook_url=site.webhook_url,
            webhook_secret_set=bool(site.webhook_secret),
            thread_query_params=list(site.thread_query_params),
            spam_threshold=site.spam_threshold,
            spam_hold=site.spam_hold,
            retention_personal_days=site.retention_personal_days,
            retention_purge_days=site.retention_purge_days,
        )


class SiteSettingsUpdate(BaseModel):
    """Fields to change; omitted ones stay. `hold_links: 0` turns the link rule off; empty webhook_url removes it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    max_depth: int | None = Field(default=None, ge=0, le=50)
    auto_approve_known: bool | None = None
    hold_links: int | None = Field(default=None, ge=0, le=1000)
    moderation_keywords: str | None = Field(default=None, max_length=20_000)
    disallowed_keywords: str | None = Field(default=None, max_length=20_000)
    disallowed_action: DisallowedAction | None = None
    webhook_url: str | None = Field(default=None, max_length=500)
    webhook_secret: str | None = Field(default=None, max_length=200)
    thread_query_params: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=50
    )
    spam_threshold: float | None = Field(default=None, ge=0, le=1)
    spam_hold: float | None = Field(default=None, ge=0, le=1)
    retention_personal_days: int | None = Field(default=None, ge=1, le=36500)
    retention_purge_days: int | None = Field(default=None, ge=1, le=36500)


class ThreadMerge(BaseModel):
    """Move every comment of `source` into `target`; `source` keeps resolving to `target`."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=2000)
    target: str = Field(min_length=1, max_length=2000)


class MemberInfo(BaseModel):
    """A member of a site."""

    user_id: int
    email: str
    name: str
    role: Role


class MemberAdd(BaseModel):
    """Give an account a role on the site; a new account needs an initial password."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254)
    role: Role
    password: str | None = Field(default=None, max_length=1024)


class MemberUpdate(BaseModel):
    """Change a member's role."""

    model_config = ConfigDict(extra="forbid")

    role: Role
