"""Every table of the service, in one module so Alembic sees them all with one import."""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from comments.db import metadata  # noqa: F401  (registers the naming convention before any table)


def utcnow() -> datetime:
    """Current time, timezone-aware in UTC: the only clock the models use."""
    return datetime.now(UTC)


def ident(row: SQLModel) -> int:
    """The primary key of a stored row; the type checker cannot know a flushed row has one."""
    value = getattr(row, "id", None)
    if not isinstance(value, int):
        raise RuntimeError(f"{type(row).__name__} is not stored yet")
    return value


def text_digest(text: str) -> str:
    """A comment text's content_hash: equal texts, equal digests (duplicate detection looks them up)."""
    return hashlib.sha256(text.encode()).hexdigest()


def content_digest(context: Any) -> str:
    """The content_hash of a row being inserted (a context-sensitive column default)."""
    return text_digest(context.get_current_parameters()["content_raw"])


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Stores UTC and always hands back aware datetimes, also on SQLite (which keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(*, index: bool = False, nullable: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)
    return Field(default_factory=utcnow, sa_type=UTCDateTime, index=index)


def _enum(enum_cls: type[enum.Enum], name: str) -> Any:
    # Non-native enums (VARCHAR + CHECK) keep migrations identical on SQLite and PostgreSQL.
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=16,
        create_constraint=True,
        name=name,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


class CommentStatus(enum.StrEnum):
    """Life cycle of a comment: only `approved` is ever public."""

    pending = "pending"
    approved = "approved"
    spam = "spam"
    trash = "trash"


class Role(enum.StrEnum):
    """What a member may do on a site: owners everything, moderators the queue."""

    owner = "owner"
    moderator = "moderator"


class DisallowedAction(enum.StrEnum):
    """Where a comment with a disallowed keyword goes."""

    spam = "spam"
    trash = "trash"


class Site(SQLModel, table=True):
    """A website embedding the widget, with its WordPress-style discussion settings."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    origins: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    max_depth: int = Field(default=5)
    auto_approve_known: bool = Field(default=False)
    hold_links: int = Field(default=2)
    moderation_keywords: str = Field(default="", sa_type=sa.Text)
    disallowed_keywords: str = Field(default="", sa_type=sa.Text)
    disallowed_action: DisallowedAction = Field(
        default=DisallowedAction.spam, sa_type=_enum(DisallowedAction, "disallowed_action")
    )
    webhook_url: str | None = Field(default=None, max_length=500)
    webhook_secret: str | None = Field(default=None, max_length=200)
    # Query parameters that identify an article (e.g. "p" for WordPress's ?p=123); all others are noise.
    thread_query_params: list[str] = Field(
        default_factory=list, sa_type=sa.JSON, sa_column_kwargs={"server_default": "[]"}
    )
    # Spam filter: at or above `spam_threshold` a new comment goes to spam, at or above `spam_hold` it is held.
    spam_threshold: float = Field(default=0.9, sa_column_kwargs={"server_default": "0.9"})
    spam_hold: float = Field(default=0.5, sa_column_kwargs={"server_default": "0.5"})
    # Retention: forget IP and user agent after N days; purge spam and trash after N days (None = keep).
    retention_personal_days: int | None = Field(default=None)
    retention_purge_days: int | None = Field(default=None)
    created_at: datetime = _time()


class Thread(SQLModel, table=True):
    """One article's comment section; `version` is bumped whenever its public view changes (the ETag)."""

    __table_args__ = (sa.UniqueConstraint("site_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", ondelete="CASCADE")
    key: str = Field(max_length=500)
    title: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, max_length=2000)
    is_open: bool = Field(default=True)
    approved_count: int = Field(default=0)
    version: int = Field(default=1)
    created_at: datetime = _time()


class PostedComment(Protocol):
    """What the answer to a post, its log line and the moderators' notice read of a comment.

    A Comment has all of it; so does the lighter record a new post answers with
    (submission.service.NewComment), because building the ORM object cost more than storing it.
    """

    @property
    def id(self) -> int | None: ...
    @property
    def thread_id(self) -> int: ...
    @property
    def parent_id(self) -> int | None: ...
    @property
    def depth(self) -> int: ...
    @property
    def status(self) -> CommentStatus: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def author_name(self) -> str: ...
    @property
    def author_email(self) -> str: ...
    @property
    def author_url(self) -> str | None: ...
    @property
    def content_raw(self) -> str: ...
    @property
    def content_html(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


class Comment(SQLModel, table=True):
    """A reader's reply: raw text and the html sanitized once at write time, side by side."""

    __table_args__ = (
        # Public read: approved comments of a thread, grouped by root, in time order.
        sa.Index("ix_comment_thread_status_root", "thread_id", "status", "root_id", "created_at", "id"),
        # Moderation queue: one site's comments of one status, newest first.
        sa.Index("ix_comment_site_status_created", "site_id", "status", "created_at", "id"),
        # Flood control and author history look up by author and by network.
        sa.Index("ix_comment_author_email_created", "author_email", "created_at"),
        sa.Index("ix_comment_ip_created", "ip", "created_at"),
        # Duplicate detection: one index probe however many comments the author already has.
        sa.Index("ix_comment_content_hash", "content_hash"),
        sa.UniqueConstraint("site_id", "idempotency_key"),
        sa.UniqueConstraint("site_id", "source_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", ondelete="CASCADE")
    thread_id: int = Field(foreign_key="thread.id", ondelete="CASCADE")
    parent_id: int | None = Field(default=None, foreign_key="comment.id", ondelete="SET NULL")
    root_id: int | None = Field(default=None)
    depth: int = Field(default=0)
    status: CommentStatus = Field(default=CommentStatus.pending, sa_type=_enum(CommentStatus, "comment_status"))
    reason: str | None = Field(default=None, max_length=200)
    author_name: str = Field(max_length=245)
    author_email: str = Field(max_length=100)
    author_url: str | None = Field(default=None, max_length=200)
    content_raw: str = Field(sa_type=sa.Text)
    content_html: str = Field(sa_type=sa.Text)
    # SHA-256 of content_raw, filled on every insert (ORM or Core) by the column default below.
    content_hash: str | None = Field(default=None, max_length=64, sa_column_kwargs={"default": content_digest})
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=500)
    submitter_hash: str | None = Field(default=None, max_length=64, index=True)
    idempotency_key: str | None = Field(default=None, max_length=64)
    source_id: str | None = Field(default=None, max_length=200)
    spam_score: float | None = Field(default=None)
    trained_as: str | None = Field(default=None, max_length=8)  # "spam" | "ham": what the filter learned from it
    created_at: datetime = _time()
    updated_at: datetime = _time()
    moderated_at: datetime | None = _time(nullable=True)
    moderated_by: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")


class User(SQLModel, table=True):
    """A moderator or owner account; the password is an argon2id hash."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=200)
    is_active: bool = Field(default=True)
    created_at: datetime = _time()


class Membership(SQLModel, table=True):
    """A user's role on one site; every moderator query is scoped through it."""

    __table_args__ = (sa.UniqueConstraint("user_id", "site_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    site_id: int = Field(foreign_key="site.id", ondelete="CASCADE", index=True)
    role: Role = Field(sa_type=_enum(Role, "role"))


class LoginSession(SQLModel, table=True):
    """A server-side login session, so logins survive restarts and work across instances."""

    __tablename__ = "login_session"

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE", index=True)
    created_at: datetime = _time()
    expires_at: datetime = _time(index=True)


class AuditEvent(SQLModel, table=True):
    """Who did what to which comment and when, before and after; kept when the comment is deleted."""

    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_event_site_created", "site_id", "created_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int | None = Field(default=None, foreign_key="site.id", ondelete="CASCADE")
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    action: str = Field(max_length=64)
    comment_id: int | None = Field(default=None, index=True)
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    created_at: datetime = _time()


class RateEvent(SQLModel, table=True):
    """One hit against a named limit (e.g. logins per IP), shared by every app instance."""

    __tablename__ = "rate_event"
    __table_args__ = (sa.Index("ix_rate_event_bucket_created", "bucket", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    bucket: str = Field(max_length=200)
    created_at: datetime = _time()


class ThreadAlias(SQLModel, table=True):
    """An old key of a merged thread, so links and embeds using it still find the comments."""

    __tablename__ = "thread_alias"
    __table_args__ = (sa.UniqueConstraint("site_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", ondelete="CASCADE")
    key: str = Field(max_length=500)
    thread_id: int = Field(foreign_key="thread.id", ondelete="CASCADE", index=True)


class SpamToken(SQLModel, table=True):
    """How often a feature appeared in comments moderators marked spam or approved, per site."""

    __tablename__ = "spam_token"

    site_id: int = Field(foreign_key="site.id", ondelete="CASCADE", primary_key=True)
    token: str = Field(max_length=64, primary_key=True)
    spam: int = Field(default=0)
    ham: int = Field(default=0)


class SpamModel(SQLModel, table=True):
    """Per-site document totals of the spam filter (the priors)."""

    __tablename__ = "spam_model"

    site_id: int = Field(foreign_key="site.id", ondelete="CASCADE", primary_key=True)
    spam_docs: int = Field(default=0)
    ham_docs: int = Field(default=0)


class JobLease(SQLModel, table=True):
    """Who runs a periodic job right now, so only one of several app instances does."""

    __tablename__ = "job_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=100)
    expires_at: datetime = _time()
