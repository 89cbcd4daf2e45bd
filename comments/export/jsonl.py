"""JSON Lines: one comment per line, every stored field; our own lossless export and import format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from comments.errors import ImportFailed
from comments.export.schemas import ImportedComment, ImportedThread
from comments.models import CommentStatus

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import BinaryIO

MEDIA_TYPE = "application/x-ndjson"
EXTENSION = "jsonl"


class JsonlWriter:
    """Encodes batches of export rows, one JSON object per line, keys in column order."""

    media_type = MEDIA_TYPE
    extension = EXTENSION

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self._encoder = msgspec.json.Encoder()
        # A struct built positionally from each row encodes as an object several times faster than a dict.
        self._record = msgspec.defstruct("ExportRecord", [(name, Any) for name in self.columns])

    def begin(self) -> bytes:
        """Nothing precedes the first line."""
        return b""

    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """One line per row, each ending in a newline."""
        record = self._record
        return self._encoder.encode_lines([record(*row) for row in rows])

    def end(self) -> bytes:
        """Nothing follows the last line."""
        return b""


class _Record(msgspec.Struct, forbid_unknown_fields=False):
    """The fields an import needs; unknown fields are ignored so newer exports stay importable."""

    id: int | str
    thread_key: str
    content_raw: str
    created_at: datetime
    site: str = ""
    thread_title: str | None = None
    thread_url: str | None = None
    thread_is_open: bool = True
    parent_id: int | str | None = None
    status: CommentStatus = CommentStatus.pending
    reason: str | None = None
    author_name: str = ""
    author_email: str | None = ""
    author_url: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    updated_at: datetime | None = None
    moderated_at: datetime | None = None


def parse_jsonl(source: BinaryIO) -> Iterator[ImportedComment]:
    """Read our JSON Lines export, line by line.

    Source ids are `jsonl:<site>:<id>`: the id is only unique on the site it was exported from.

    Raises:
        ImportFailed: a line is not a JSON object with the required fields; the message names the line.
    """
    decoder = msgspec.json.Decoder(_Record)
    threads: dict[str, ImportedThread] = {}
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            record = decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise ImportFailed(f"line {number}: {exc}") from exc
        thread = threads.get(record.thread_key)
        if thread is None:
            thread = ImportedThread(
                key=record.thread_key, title=record.thread_title, url=record.thread_url, is_open=record.thread_is_open
            )
            threads[record.thread_key] = thread
        prefix = f"jsonl:{record.site}:"
        yield ImportedComment(
            source_id=f"{prefix}{record.id}",
            parent_source_id=f"{prefix}{record.parent_id}" if record.parent_id not in (None, "") else None,
            thread=thread,
            status=record.status,
            author_name=record.author_name,
            author_email=record.author_email or "",
            author_url=record.author_url,
            content_raw=record.content_raw,
            created_at=_utc(record.created_at),
            where=f"line {number}",
            ip=record.ip,
            user_agent=record.user_agent,
            reason=record.reason,
            updated_at=_utc(record.updated_at) if record.updated_at else None,
            moderated_at=_utc(record.moderated_at) if record.moderated_at else None,
        )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
