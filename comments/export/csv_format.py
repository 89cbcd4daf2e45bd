"""CSV: the JSON Lines columns, safe to open in a spreadsheet."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

MEDIA_TYPE = "text/csv; charset=utf-8"
EXTENSION = "csv"

# A cell starting with one of these is evaluated as a formula by Excel, LibreOffice and Google Sheets
# (OWASP "CSV injection"): `=HYPERLINK(...)` in a comment would run when the owner opens the file.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: str) -> str:
    """Prefix a would-be formula with `'`, which spreadsheets show as text and do not evaluate."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def cell(value: Any) -> str:
    """The text of one cell: empty for null, RFC 3339 for times, true/false for flags, neutralized strings."""
    if value is None:
        return ""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, str):
        return neutralize(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


# Columns that are never text: everything else may hold what a reader typed and is neutralized.
NOT_TEXT = frozenset(
    {"id", "parent_id", "root_id", "depth", "spam_score", "moderated_by", "thread_id", "thread_is_open"}
)
FLAGS = frozenset({"thread_is_open"})


class CsvWriter:
    """A header row, then one row per comment: RFC 4180 quoting (as the csv module's QUOTE_MINIMAL), CRLF.

    Rows are formatted here rather than by `csv.writer`, which copies every character one by one
    and took three quarters of a million-row export; `str` methods scan in C at memchr speed.
    """

    media_type = MEDIA_TYPE
    extension = EXTENSION

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self._text = [i for i, name in enumerate(self.columns) if name not in NOT_TEXT]
        self._flags = [i for i, name in enumerate(self.columns) if name in FLAGS]
        self._numbers = [i for i, name in enumerate(self.columns) if name in NOT_TEXT and name not in FLAGS]

    def begin(self) -> bytes:
        """The header row (UTF-8 without BOM)."""
        return (",".join(self.columns) + "\r\n").encode()

    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """The rows of one batch."""
        text, flags, numbers, prefixes = self._text, self._flags, self._numbers, FORMULA_PREFIXES
        lines = []
        for row in rows:
            values = list(row)
            for i in text:
                value = values[i]
                if not value:
                    values[i] = ""
                    continue
                if value.startswith(prefixes):
                    value = "'" + value
                if '"' in value or "," in value or "\n" in value or "\r" in value:
                    value = '"' + value.replace('"', '""') + '"'
                values[i] = value
            for i in numbers:
                value = values[i]
                values[i] = "" if value is None else str(value)
            for i in flags:
                values[i] = "true" if values[i] else "false"
            lines.append(",".join(values))
        lines.append("")
        return "\r\n".join(lines).encode()

    def end(self) -> bytes:
        """Nothing follows the last row."""
        return b""
