"""Safe, streaming XML reading for the WXR and Disqus importers, plus helpers both share."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree

from comments.errors import ImportFailed, UnsafeXML

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO
    from xml.etree.ElementTree import Element

MAX_SOURCE_ID = 200  # Comment.source_id's column length


def iterparse(source: BinaryIO, what: str) -> Iterator[tuple[str, Element]]:
    """(event, element) for start and end tags, built incrementally so memory stays bounded.

    Callers must remove each element they are done with, or the tree grows with the file.
    Neither WordPress nor Disqus exports carry a DTD, so any DTD is refused outright: that
    closes external entities (file or network reads) and entity expansion (billion laughs)
    at once, instead of relying on each entity being caught one by one.

    Raises:
        UnsafeXML: the document has a DTD, entities or external references.
        ImportFailed: the document is not well-formed XML; the message has line and column.
    """
    try:
        yield from defusedxml.ElementTree.iterparse(source, events=("start", "end"), forbid_dtd=True)
    except defusedxml.DTDForbidden as exc:
        raise UnsafeXML(
            f"Refused {what}: it declares a DTD (<!DOCTYPE>), which can hide external-entity or "
            "entity-expansion attacks; exports never need one. Nothing was imported."
        ) from exc
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden) as exc:
        raise UnsafeXML(f"Refused {what}: it declares XML entities ({exc}). Nothing was imported.") from exc
    except ParseError as exc:
        line, column = exc.position
        raise ImportFailed(
            f"{what} is not well-formed XML at line {line}, column {column + 1}: {exc.msg}. Nothing was imported."
        ) from exc


def local_name(tag: str) -> str:
    """`{namespace}name` -> `name`."""
    return tag.rpartition("}")[2]


def child_text(element: Element, name: str) -> str:
    """Stripped text of the first child with this local name, or ''."""
    for child in element:
        if local_name(child.tag) == name:
            return (child.text or "").strip()
    return ""


def raw_child_text(element: Element, name: str) -> str:
    """Text of the first child with this local name, whitespace kept (comment bodies)."""
    for child in element:
        if local_name(child.tag) == name:
            return child.text or ""
    return ""


def make_source_id(kind: str, origin: str, ident: str) -> str:
    """`kind:origin:ident` (or `kind:ident`), unique per site; a long origin becomes its digest to fit."""
    value = f"{kind}:{origin}:{ident}" if origin else f"{kind}:{ident}"
    if len(value) <= MAX_SOURCE_ID:
        return value
    return f"{kind}:{hashlib.sha256(origin.encode()).hexdigest()[:32]}:{ident}"[:MAX_SOURCE_ID]


def parse_utc(value: str) -> datetime | None:
    """ISO 8601 or WordPress's `YYYY-MM-DD HH:MM:SS` as an aware UTC datetime; None when empty or zero."""
    value = value.strip()
    if not value or value.startswith("0000-00-00"):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
