"""Disqus XML export (`<disqus>` with `<thread>`s, then `<post>`s) as import source."""

from __future__ import annotations

from typing import TYPE_CHECKING

from comments.errors import ImportFailed
from comments.export import safexml
from comments.export.schemas import ImportedComment, ImportedThread
from comments.models import CommentStatus
from comments.submission import abuse

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO
    from xml.etree.ElementTree import Element

DSQ_ID = "{http://disqus.com/disqus-internals}id"


def parse_disqus(source: BinaryIO) -> Iterator[ImportedComment | None]:
    """Posts of a Disqus export; threads must precede the posts that use them, as Disqus writes them.

    Deleted posts become trash, spam stays spam, unapproved posts are pending, the rest approved.

    Raises:
        ImportFailed: malformed XML, or a post without id, date or known thread; the message names the element.
        UnsafeXML: the file declares a DTD or entities.
    """
    threads: dict[str, ImportedThread] = {}
    depth = 0
    root: Element | None = None
    posts = 0
    for event, element in safexml.iterparse(source, "the Disqus file"):
        if event == "start":
            depth += 1
            root = root or element
            continue
        depth -= 1
        if depth != 1 or root is None:
            continue
        name = safexml.local_name(element.tag)
        if name == "thread":
            thread_id = element.get(DSQ_ID, "")
            threads[thread_id] = _thread(element, thread_id)
        elif name == "post":
            posts += 1
            yield _post(element, threads, where=f"<post> #{posts} (dsq:id {element.get(DSQ_ID, '?')})")
        root.remove(element)


def _thread(element: Element, thread_id: str) -> ImportedThread:
    link = safexml.child_text(element, "link")
    return ImportedThread(
        key=safexml.child_text(element, "id") or link or f"disqus-{thread_id}",
        title=safexml.child_text(element, "title") or None,
        url=link or None,
        is_open=safexml.child_text(element, "isClosed") != "true",
    )


def _reference(element: Element, name: str) -> str:
    for child in element:
        if safexml.local_name(child.tag) == name:
            return child.get(DSQ_ID, "")
    return ""


def _post(element: Element, threads: dict[str, ImportedThread], *, where: str) -> ImportedComment:
    post_id = element.get(DSQ_ID, "")
    if not post_id:
        raise ImportFailed(f"{where} has no dsq:id attribute. Nothing was imported.")
    thread = threads.get(_reference(element, "thread"))
    if thread is None:
        raise ImportFailed(f"{where} refers to a thread that is not defined before it. Nothing was imported.")
    created = safexml.parse_utc(safexml.child_text(element, "createdAt"))
    if created is None:
        raise ImportFailed(f"{where} has no valid <createdAt>. Nothing was imported.")
    author = next((child for child in element if safexml.local_name(child.tag) == "author"), None)
    name = safexml.child_text(author, "name") if author is not None else ""
    email = safexml.child_text(author, "email") if author is not None else ""
    if safexml.child_text(element, "isDeleted") == "true":
        status = CommentStatus.trash
    elif safexml.child_text(element, "isSpam") == "true":
        status = CommentStatus.spam
    elif safexml.child_text(element, "isApproved") == "false":
        status = CommentStatus.pending
    else:
        status = CommentStatus.approved
    parent = _reference(element, "parent")
    return ImportedComment(
        source_id=safexml.make_source_id("disqus", "", post_id),
        parent_source_id=safexml.make_source_id("disqus", "", parent) if parent else None,
        thread=thread,
        status=status,
        author_name=name,
        author_email=email,
        author_url=None,
        content_raw=safexml.raw_child_text(element, "message"),
        created_at=created,
        where=where,
        ip=abuse.anonymize_ip(safexml.child_text(element, "ipAddress")),
    )
