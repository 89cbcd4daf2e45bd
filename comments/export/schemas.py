"""Shapes of the export feature: formats, filters, the imported record and the reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from comments.models import CommentStatus


class ExportFormat(enum.StrEnum):
    """What `comments export --format` and `GET /api/sites/{site}/export?format=` produce."""

    jsonl = "jsonl"
    csv = "csv"
    wxr = "wxr"


class ImportFormat(enum.StrEnum):
    """What `comments import --format` reads."""

    wxr = "wxr"
    disqus = "disqus"
    jsonl = "jsonl"


# One record of the JSON Lines and CSV exports, in column order. JSONL import reads the same names.
RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "site",
    "thread_key",
    "thread_title",
    "thread_url",
    "thread_is_open",
    "parent_id",
    "root_id",
    "depth",
    "status",
    "reason",
    "spam_score",
    "author_name",
    "author_email",
    "author_url",
    "ip",
    "user_agent",
    "content_raw",
    "content_html",
    "source_id",
    "created_at",
    "updated_at",
    "moderated_at",
    "moderated_by",
)

# Dropped by `--no-personal-data`: what identifies a reader beyond the name they chose to publish.
PERSONAL_COLUMNS: frozenset[str] = frozenset({"author_email", "ip", "user_agent"})


@dataclass(frozen=True)
class ExportOptions:
    """Which comments an export holds; every filter is optional (default: the whole site)."""

    statuses: tuple[CommentStatus, ...] = ()
    thread_keys: tuple[str, ...] = ()
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    personal_data: bool = True


def parse_moment(value: str, *, end_of_day: bool = False) -> datetime:
    """An ISO date or date-time as UTC (naive means UTC); with `end_of_day`, a bare date means the next midnight.

    The export's `until` is exclusive, so `until=2026-11-30` then includes the whole of that day.

    Raises:
        ValueError: neither an ISO date (2026-11-25) nor an ISO date-time (2026-11-25T10:00:00Z).
    """
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: 9999-12-31 plus a day, year 1 minus an offset
        raise ValueError(f"{value[:40]!r} is not an ISO date (2026-11-25) or time (2026-11-25T10:00:00Z)") from exc


@dataclass(slots=True)
class ImportedThread:
    """An article as an import file describes it; matched to a thread by key."""

    key: str
    title: str | None = None
    url: str | None = None
    is_open: bool = True


@dataclass(slots=True)
class ImportedComment:
    """One comment read from an import file, before sanitizing; `where` locates it in the file for errors."""

    source_id: str
    parent_source_id: str | None
    thread: ImportedThread
    status: CommentStatus
    author_name: str
    author_email: str
    author_url: str | None
    content_raw: str
    created_at: datetime
    where: str
    ip: str | None = None
    user_agent: str | None = None
    reason: str | None = None
    updated_at: datetime | None = None
    moderated_at: datetime | None = None


@dataclass
class ImportReport:
    """What an import did: counts for the operator, the touched threads for bookkeeping."""

    created: int = 0
    skipped_existing: int = 0
    skipped_other: int = 0  # pingbacks, trackbacks
    threads_created: int = 0
    orphans: int = 0  # replies whose parent is neither in the file nor on the site: kept as top-level comments
    thread_ids: set[int] = field(default_factory=set)


@dataclass
class ErasureReport:
    """What a personal-data erasure changed."""

    anonymized: int = 0
    deleted: int = 0
    threads: int = 0


class PersonalDataRequest(BaseModel):
    """Body of `POST /api/sites/{site}/privacy/export`: whose data to gather."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=254, description="The address, matched case-insensitively.")


class ErasureRequest(BaseModel):
    """Body of `POST /api/sites/{site}/privacy/erase`: whose comments, and whether to delete them."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=254, description="The address, matched case-insensitively.")
    delete: bool = Field(default=False, description="Delete the comments instead of anonymizing them.")
