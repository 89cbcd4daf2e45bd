"""CSV: the JSON Lines columns, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import enum
import io
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


class CsvWriter:
    """A header row, then one row per comment (RFC 4180 quoting, CRLF line ends)."""

    media_type = MEDIA_TYPE
    extension = EXTENSION

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def _take(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.encode()

    def begin(self) -> bytes:
        """The header row (UTF-8 without BOM)."""
        self._writer.writerow(self.columns)
        return self._take()

    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """The rows of one batch."""
        self._writer.writerows([[cell(value) for value in row] for row in rows])
        return self._take()

    def end(self) -> bytes:
        """Nothing follows the last row."""
        return b""
