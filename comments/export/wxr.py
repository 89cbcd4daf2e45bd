"""WordPress eXtended RSS (WXR 1.2): export one `item` per thread with its `wp:comment`s, and import it back.

The writer follows WordPress's own exporter (wp-admin/includes/export.php): text in CDATA,
`]]>` split across two sections exactly as `wxr_cdata()` does, which the WordPress importer's
regex parser undoes. Characters XML 1.0 forbids (most C0 controls, U+FFFE/U+FFFF, lone
surrogates) are dropped, since no XML parser accepts them even escaped. XML parsers turn a
carriage return inside CDATA into a line feed, so CR LF comes back as LF. Times are UTC
to the second; `comment_date` equals `comment_date_gmt` because a site has no time zone here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

from comments.errors import ImportFailed
from comments.export import safexml
from comments.export.schemas import ImportedComment, ImportedThread
from comments.models import CommentStatus
from comments.submission import abuse

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import BinaryIO
    from xml.etree.ElementTree import Element

    from comments.models import Site

MEDIA_TYPE = "application/rss+xml; charset=utf-8"
EXTENSION = "xml"
WP_NS = "http://wordpress.org/export/1.2/"
# Our own extension element: the thread key, which WordPress has no field for. Importers ignore unknown namespaces.
COMMENTS_NS = "urn:x-comments:wxr:1"

# The export's columns (names as in the JSON Lines record, plus thread id and creation time).
COLUMNS: tuple[str, ...] = (
    "thread_id",
    "thread_key",
    "thread_title",
    "thread_url",
    "thread_is_open",
    "thread_created_at",
    "id",
    "parent_id",
    "status",
    "author_name",
    "author_email",
    "author_url",
    "ip",
    "content_raw",
    "created_at",
)

APPROVED = {
    CommentStatus.approved: "1",
    CommentStatus.pending: "0",
    CommentStatus.spam: "spam",
    CommentStatus.trash: "trash",
}
APPROVED_CDATA = {status.value: f"<![CDATA[{value}]]>" for status, value in APPROVED.items()}
FROM_APPROVED = {"1": CommentStatus.approved, "approve": CommentStatus.approved, "0": CommentStatus.pending}
FROM_APPROVED |= {"spam": CommentStatus.spam, "trash": CommentStatus.trash, "post-trashed": CommentStatus.trash}

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_chars(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry at all (not even as `&#...;`)."""
    return _NOT_XML.sub("", text)


EMPTY_CDATA = "<![CDATA[]]>"
_strip_not_xml = _NOT_XML.sub


def cdata(text: str | None) -> str:
    """A CDATA section safe for any text: `]]>` is split over two sections, as WordPress's `wxr_cdata()` does.

    Forbidden characters go first, so removing one can never create a `]]>` that was not split.
    """
    if not text:
        return EMPTY_CDATA
    return "<![CDATA[" + _strip_not_xml("", text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text(value: str | None) -> str:
    """Escaped character data."""
    return escape(xml_chars(value)) if value else ""


def wp_date(value: str | None) -> str:
    """WordPress's `YYYY-MM-DD HH:MM:SS` from the export's RFC 3339 UTC text."""
    return f"{value[:10]} {value[11:19]}" if value else "0000-00-00 00:00:00"


class WxrWriter:
    """Streams the channel header, one item per thread (rows come ordered by thread, then id) and the footer."""

    media_type = MEDIA_TYPE
    extension = EXTENSION

    def __init__(self, columns: Sequence[str], site: Site) -> None:
        self.columns = tuple(columns)
        self.site = site
        self._index = {name: i for i, name in enumerate(self.columns)}
        self._thread_id: int | None = None

    def begin(self) -> bytes:
        """The XML declaration, the `rss` element with the WordPress namespaces, the channel header."""
        base = self.site.origins[0] if self.site.origins else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<!-- WordPress eXtended RSS (WXR 1.2) exported by comments; importable with the WordPress Importer. -->\n"
            '<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"'
            ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
            ' xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
            f' xmlns:wp="{WP_NS}" xmlns:comments="{COMMENTS_NS}">\n'
            "<channel>\n"
            f"\t<title>{text(self.site.name)}</title>\n"
            f"\t<link>{text(base)}</link>\n"
            "\t<description></description>\n"
            f"\t<pubDate>{format_datetime(datetime.now(UTC))}</pubDate>\n"
            "\t<language>en</language>\n"
            "\t<wp:wxr_version>1.2</wp:wxr_version>\n"
            f"\t<wp:base_site_url>{text(base)}</wp:base_site_url>\n"
            f"\t<wp:base_blog_url>{text(base)}</wp:base_blog_url>\n"
            "\t<generator>comments</generator>\n"
        ).encode()

    def rows(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """Comments of one batch; opens a new item whenever the thread changes.

        Written for speed (a million rows): positions resolved once, dates and status are
        known-safe text and skip the CDATA treatment that reader-supplied fields get.
        """
        index = self._index
        i_thread, i_id, i_parent = index["thread_id"], index["id"], index["parent_id"]
        i_status, i_name, i_url = index["status"], index["author_name"], index["author_url"]
        i_content, i_created = index["content_raw"], index["created_at"]
        i_email, i_ip = index.get("author_email"), index.get("ip")
        get = _getter(index)
        parts: list[str] = []
        for row in rows:
            thread_id = row[i_thread]
            if thread_id != self._thread_id:
                if self._thread_id is not None:
                    parts.append("\t</item>\n")
                parts.append(self._item(row, get))
                self._thread_id = thread_id
            created = row[i_created]
            date = f"{created[:10]} {created[11:19]}"
            email = cdata(row[i_email]) if i_email is not None else EMPTY_CDATA
            ip = cdata(row[i_ip]) if i_ip is not None else EMPTY_CDATA
            url = row[i_url]
            parts.append(
                "\t\t<wp:comment>\n"
                f"\t\t\t<wp:comment_id>{row[i_id]}</wp:comment_id>\n"
                f"\t\t\t<wp:comment_author>{cdata(row[i_name])}</wp:comment_author>\n"
                f"\t\t\t<wp:comment_author_email>{email}</wp:comment_author_email>\n"
                f"\t\t\t<wp:comment_author_url>{text(url) if url else ''}</wp:comment_author_url>\n"
                f"\t\t\t<wp:comment_author_IP>{ip}</wp:comment_author_IP>\n"
                f"\t\t\t<wp:comment_date><![CDATA[{date}]]></wp:comment_date>\n"
                f"\t\t\t<wp:comment_date_gmt><![CDATA[{date}]]></wp:comment_date_gmt>\n"
                f"\t\t\t<wp:comment_content>{cdata(row[i_content])}</wp:comment_content>\n"
                f"\t\t\t<wp:comment_approved>{APPROVED_CDATA[row[i_status]]}</wp:comment_approved>\n"
                "\t\t\t<wp:comment_type><![CDATA[comment]]></wp:comment_type>\n"
                f"\t\t\t<wp:comment_parent>{row[i_parent] or 0}</wp:comment_parent>\n"
                "\t\t\t<wp:comment_user_id>0</wp:comment_user_id>\n"
                "\t\t</wp:comment>\n"
            )
        return "".join(parts).encode()

    def _item(self, row: Sequence[Any], get: Any) -> str:
        key = get(row, "thread_key")
        created = get(row, "thread_created_at")
        date = wp_date(created)
        return (
            "\t<item>\n"
            f"\t\t<title>{cdata(get(row, 'thread_title') or key)}</title>\n"
            f"\t\t<link>{text(get(row, 'thread_url'))}</link>\n"
            f"\t\t<pubDate>{format_datetime(datetime.fromisoformat(created)) if created else ''}</pubDate>\n"
            "\t\t<dc:creator><![CDATA[]]></dc:creator>\n"
            f"\t\t<guid isPermaLink={quoteattr('false')}>{text(key)}</guid>\n"
            "\t\t<description></description>\n"
            "\t\t<content:encoded><![CDATA[]]></content:encoded>\n"
            "\t\t<excerpt:encoded><![CDATA[]]></excerpt:encoded>\n"
            f"\t\t<wp:post_id>{get(row, 'thread_id')}</wp:post_id>\n"
            f"\t\t<wp:post_date>{cdata(date)}</wp:post_date>\n"
            f"\t\t<wp:post_date_gmt>{cdata(date)}</wp:post_date_gmt>\n"
            f"\t\t<wp:comment_status>{cdata('open' if get(row, 'thread_is_open') else 'closed')}</wp:comment_status>\n"
            "\t\t<wp:ping_status><![CDATA[closed]]></wp:ping_status>\n"
            "\t\t<wp:status><![CDATA[publish]]></wp:status>\n"
            "\t\t<wp:post_parent>0</wp:post_parent>\n"
            "\t\t<wp:menu_order>0</wp:menu_order>\n"
            "\t\t<wp:post_type><![CDATA[post]]></wp:post_type>\n"
            "\t\t<wp:post_password><![CDATA[]]></wp:post_password>\n"
            "\t\t<wp:is_sticky>0</wp:is_sticky>\n"
            f"\t\t<comments:thread_key>{cdata(key)}</comments:thread_key>\n"
        )

    def end(self) -> bytes:
        """Close the last item, the channel and the document."""
        closing = "\t</item>\n" if self._thread_id is not None else ""
        return (closing + "</channel>\n</rss>\n").encode()


def _getter(index: dict[str, int]) -> Any:
    """Column by name, None for columns left out of the export (personal data)."""

    def get(row: Sequence[Any], name: str) -> Any:
        position = index.get(name)
        return None if position is None else row[position]

    return get


def parse_wxr(source: BinaryIO) -> Iterator[ImportedComment | None]:
    """Comments of a WXR file (WordPress 3.0+ or ours), one item and one comment in memory at a time.

    Yields None for entries that are not reader comments (pingbacks, trackbacks).

    Raises:
        ImportFailed: malformed XML, or a comment without an id or a date; the message names the element.
        UnsafeXML: the file declares a DTD or entities.
    """
    origin = ""
    item: Element | None = None
    item_number = 0
    comment_number = 0
    thread: ImportedThread | None = None
    stack: list[Element] = []
    for event, element in safexml.iterparse(source, "the WXR file"):
        if event == "start":
            stack.append(element)
            if element.tag == "item":
                item, thread, item_number = element, None, item_number + 1
            continue
        stack.pop()
        name = safexml.local_name(element.tag)
        namespace = element.tag[1 : element.tag.find("}")] if element.tag.startswith("{") else ""
        is_wp = namespace.startswith("http://wordpress.org/export/")
        if is_wp and name == "base_site_url" and item is None:
            origin = (element.text or "").strip()
        elif is_wp and name == "comment" and item is not None and stack and stack[-1] is item:
            comment_number += 1
            thread = thread or _thread_of(item)
            where = f"<wp:comment> #{comment_number} (in <item> #{item_number}, {thread.key!r})"
            yield _comment(element, thread=thread, origin=_origin_key(origin), where=where)
            item.remove(element)
        if element.tag == "item":
            item = None
        if len(stack) == 2:  # a child of <channel> (item, wp:author, wp:term...): done with it
            stack[-1].remove(element)


def _origin_key(base_site_url: str) -> str:
    parts = urlsplit(base_site_url)
    return (parts.netloc + parts.path.rstrip("/")) if parts.netloc else base_site_url


def _thread_of(item: Element) -> ImportedThread:
    """The thread an item's comments belong to: our key if present, else the permalink (canonicalized later)."""
    link = safexml.child_text(item, "link")
    key = safexml.child_text(item, "thread_key") or link or safexml.child_text(item, "guid")
    return ImportedThread(
        key=key or f"wp-post-{safexml.child_text(item, 'post_id')}",
        title=safexml.child_text(item, "title") or None,
        url=link or None,
        is_open=safexml.child_text(item, "comment_status") != "closed",
    )


def _comment(element: Element, *, thread: ImportedThread, origin: str, where: str) -> ImportedComment | None:
    def field(name: str) -> str:
        return safexml.child_text(element, f"comment_{name}")

    comment_id = field("id")
    if not comment_id:
        raise ImportFailed(f"{where} has no <wp:comment_id>. Nothing was imported.")
    if field("type") in ("pingback", "trackback"):
        return None
    created = safexml.parse_utc(field("date_gmt")) or safexml.parse_utc(field("date"))
    if created is None:
        raise ImportFailed(f"{where} (wp:comment_id {comment_id}) has no valid <wp:comment_date_gmt>.")
    parent = field("parent")
    return ImportedComment(
        source_id=safexml.make_source_id("wxr", origin, comment_id),
        parent_source_id=safexml.make_source_id("wxr", origin, parent) if parent not in ("", "0") else None,
        thread=thread,
        status=FROM_APPROVED.get(field("approved"), CommentStatus.pending),
        author_name=safexml.raw_child_text(element, "comment_author"),
        author_email=field("author_email"),
        author_url=field("author_url") or None,
        content_raw=safexml.raw_child_text(element, "comment_content"),
        created_at=created,
        where=f"{where} (wp:comment_id {comment_id})",
        ip=abuse.anonymize_ip(field("author_IP")),
    )
