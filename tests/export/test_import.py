"""Import: round trips into an empty site, Disqus, idempotency, all-or-nothing on malformed or hostile files."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments import sanitize
from comments.errors import ImportFailed, UnsafeXML
from comments.export import service, wxr
from comments.export.schemas import ExportFormat, ImportFormat
from comments.models import Comment, CommentStatus, Site, Thread, ThreadAlias
from tests.export.conftest import Populated, export_bytes
from tests.factories import make_site

pytestmark = pytest.mark.anyio


async def run_import(session: AsyncSession, site: Site, fmt: ImportFormat, data: bytes) -> service.ImportReport:
    """As the CLI does it: one transaction, rolled back on any error."""
    try:
        report = await service.import_comments(session, site=site, fmt=fmt, source=io.BytesIO(data))
    except Exception:
        await session.rollback()
        await session.refresh(site)  # the rollback expired it; later checks use it again
        raise
    await session.commit()
    return report


async def comments_of(session: AsyncSession, site: Site) -> list[Comment]:
    return list(
        (await session.exec(select(Comment).where(col(Comment.site_id) == site.id).order_by(col(Comment.id)))).all()
    )


async def count(session: AsyncSession, model: type, site_id: int | None) -> int:
    """Rows of a site (by id: after a rollback the site object is expired)."""
    return int((await session.exec(select(func.count()).select_from(model).where(model.site_id == site_id))).one())


def snapshot(comments: list[Comment], threads: dict[int, Thread], *, seconds: bool = False, xml: bool = False) -> list:
    """A comparable view of a site's comments: parents by content, threads by key, times (to the second for WXR)."""
    by_id = {c.id: c for c in comments}

    def when(value: datetime | None) -> datetime | None:
        return value.replace(microsecond=0) if value and seconds else value

    def text(value: str) -> str:
        return wxr.xml_chars(value).replace("\r\n", "\n") if xml else value

    rows = []
    for c in comments:
        parent = by_id[c.parent_id] if c.parent_id else None
        rows.append(
            (
                threads[c.thread_id].key,
                c.status,
                c.author_name,
                c.author_email,
                c.author_url,
                c.ip,
                text(c.content_raw),
                when(c.created_at),
                text(parent.content_raw) if parent else None,
                c.depth,
            )
        )
    return sorted(rows, key=repr)


async def thread_map(session: AsyncSession, site: Site) -> dict[int, Thread]:
    return {t.id: t for t in (await session.exec(select(Thread).where(col(Thread.site_id) == site.id))).all()}  # type: ignore[misc]


async def test_jsonl_round_trip_into_an_empty_site(session: AsyncSession, populated: Populated) -> None:
    data = await export_bytes(session, populated.site, ExportFormat.jsonl)
    copy = await make_site(session, slug="copy")
    report = await run_import(session, copy, ImportFormat.jsonl, data)
    assert (report.created, report.threads_created, report.orphans) == (len(populated.comments), 2, 0)
    original = await comments_of(session, populated.site)
    imported = await comments_of(session, copy)
    assert snapshot(imported, await thread_map(session, copy)) == snapshot(
        original, await thread_map(session, populated.site)
    )
    for before, after in zip(original, imported, strict=True):
        assert after.content_hash is not None
        assert after.content_hash == before.content_hash  # so duplicate detection sees imported comments too
        assert (after.user_agent, after.updated_at, after.moderated_at) == (
            before.user_agent,
            before.updated_at,
            before.moderated_at,
        )
        assert after.root_id == (
            after.id if after.parent_id is None else next(c.root_id for c in imported if c.id == after.parent_id)
        )
    threads = {t.key: t for t in (await thread_map(session, copy)).values()}
    originals = {t.key: t for t in populated.threads}
    for key, thread in threads.items():
        assert (thread.title, thread.url, thread.is_open) == (
            originals[key].title,
            originals[key].url,
            originals[key].is_open,
        )
        assert thread.approved_count == (await session.get(Thread, originals[key].id)).approved_count  # type: ignore[union-attr]


async def test_wxr_round_trip_into_an_empty_site(session: AsyncSession, populated: Populated) -> None:
    data = await export_bytes(session, populated.site, ExportFormat.wxr)
    copy = await make_site(session, slug="copy")
    report = await run_import(session, copy, ImportFormat.wxr, data)
    assert report.created == len(populated.comments)
    expected = snapshot(
        await comments_of(session, populated.site), await thread_map(session, populated.site), seconds=True, xml=True
    )
    got = snapshot(await comments_of(session, copy), await thread_map(session, copy), seconds=True)
    assert got == expected
    assert {t.key for t in (await thread_map(session, copy)).values()} == {t.key for t in populated.threads}


async def test_reimport_creates_nothing_new(session: AsyncSession, populated: Populated) -> None:
    for fmt, import_fmt in ((ExportFormat.jsonl, ImportFormat.jsonl), (ExportFormat.wxr, ImportFormat.wxr)):
        data = await export_bytes(session, populated.site, fmt)
        copy = await make_site(session, slug=f"copy-{fmt}")
        first = await run_import(session, copy, import_fmt, data)
        versions = {t.id: t.version for t in (await thread_map(session, copy)).values()}
        second = await run_import(session, copy, import_fmt, data)
        assert first.created == len(populated.comments)
        assert (second.created, second.skipped_existing, second.threads_created) == (0, len(populated.comments), 0)
        assert await count(session, Comment, copy.id) == len(populated.comments)
        assert await count(session, Thread, copy.id) == 2
        assert {t.id: t.version for t in (await thread_map(session, copy)).values()} == versions


def wxr_file(comments: str, *, extra_item: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:wp="http://wordpress.org/export/1.2/" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Old blog</title>
  <wp:base_site_url>https://old.example.org</wp:base_site_url>
  <wp:author><wp:author_login>admin</wp:author_login></wp:author>
  <item>
    <title>Hello &amp; welcome</title>
    <link>https://old.example.org/2020/01/hello/</link>
    <guid isPermaLink="false">https://old.example.org/?p=5</guid>
    <wp:post_id>5</wp:post_id>
    <wp:comment_status>closed</wp:comment_status>
    {comments}
  </item>
  {extra_item}
</channel>
</rss>""".encode()


def wp_comment(
    comment_id: int, parent: int = 0, *, approved: str = "1", kind: str = "comment", content: str = "Hi"
) -> str:
    return f"""<wp:comment>
      <wp:comment_id>{comment_id}</wp:comment_id>
      <wp:comment_author><![CDATA[Reader {comment_id}]]></wp:comment_author>
      <wp:comment_author_email><![CDATA[r{comment_id}@example.org]]></wp:comment_author_email>
      <wp:comment_author_url>javascript:alert(1)</wp:comment_author_url>
      <wp:comment_author_IP><![CDATA[198.51.100.{comment_id}]]></wp:comment_author_IP>
      <wp:comment_date><![CDATA[2020-01-0{comment_id % 9 + 1} 14:00:00]]></wp:comment_date>
      <wp:comment_date_gmt><![CDATA[2020-01-0{comment_id % 9 + 1} 13:00:00]]></wp:comment_date_gmt>
      <wp:comment_content><![CDATA[{content}]]></wp:comment_content>
      <wp:comment_approved><![CDATA[{approved}]]></wp:comment_approved>
      <wp:comment_type><![CDATA[{kind}]]></wp:comment_type>
      <wp:comment_parent>{parent}</wp:comment_parent>
      <wp:comment_user_id>0</wp:comment_user_id>
    </wp:comment>"""


async def test_wordpress_export_with_children_before_parents(session: AsyncSession) -> None:
    site = await make_site(session)
    data = wxr_file(
        wp_comment(3, parent=2, content="grandchild")
        + wp_comment(2, parent=1, approved="0", content="child")
        + wp_comment(1, content="<script>alert(1)</script>parent ]]]]><![CDATA[> end")
        + wp_comment(4, approved="spam")
        + wp_comment(5, approved="trash")
        + wp_comment(6, kind="pingback")
        + wp_comment(7, parent=99, content="reply to a comment the export lost")
    )
    report = await run_import(session, site, ImportFormat.wxr, data)
    assert (report.created, report.skipped_other, report.orphans, report.threads_created) == (6, 1, 1, 1)
    stored = await comments_of(session, site)
    comments = {c.content_raw: c for c in stored}
    parent, child, grandchild = (
        comments["<script>alert(1)</script>parent ]]> end"],
        comments["child"],
        comments["grandchild"],
    )
    assert (child.parent_id, grandchild.parent_id) == (parent.id, child.id)
    assert (parent.depth, child.depth, grandchild.depth) == (0, 1, 2)
    assert parent.root_id == child.root_id == grandchild.root_id == parent.id
    assert comments["reply to a comment the export lost"].parent_id is None
    assert [c.status for c in (parent, child)] == [CommentStatus.approved, CommentStatus.pending]
    assert sorted(c.status for c in stored).count(CommentStatus.spam) == 1
    assert "<script>" not in parent.content_html
    assert parent.content_html == sanitize.clean(parent.content_raw)
    assert parent.author_url is None  # javascript: URLs are not kept
    assert parent.ip == "198.51.100.0"  # imported addresses are anonymized like new ones
    assert parent.created_at == datetime(2020, 1, 2, 13, 0, tzinfo=UTC)  # the GMT date wins
    assert parent.source_id == "wxr:old.example.org:1"
    thread = (await thread_map(session, site))[parent.thread_id]
    assert (thread.key, thread.title, thread.url, thread.is_open) == (
        "/2020/01/hello", "Hello & welcome", "https://old.example.org/2020/01/hello/", False,
    )  # fmt: skip
    # approved and not under a hidden parent: the parent (approved), the orphan; not the pending child's reply
    assert thread.approved_count == 2


DISQUS = b"""<?xml version="1.0" encoding="utf-8"?>
<disqus xmlns="http://disqus.com" xmlns:dsq="http://disqus.com/disqus-internals"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <category dsq:id="1"><forum>blog</forum><title>General</title><isDefault>true</isDefault></category>
  <thread dsq:id="100">
    <id>article-7</id><forum>blog</forum><category dsq:id="1"/>
    <link>https://blog.example.org/articles/7</link><title>Seven</title>
    <message/><createdAt>2019-05-01T10:00:00Z</createdAt>
    <author><email>owner@example.org</email><name>Owner</name><isAnonymous>false</isAnonymous></author>
    <isClosed>false</isClosed><isDeleted>false</isDeleted>
  </thread>
  <thread dsq:id="101">
    <id></id><forum>blog</forum><category dsq:id="1"/>
    <link>https://blog.example.org/articles/8/?utm_source=feed</link><title>Eight</title>
    <createdAt>2019-05-02T10:00:00Z</createdAt><isClosed>true</isClosed><isDeleted>false</isDeleted>
  </thread>
  <post dsq:id="2001">
    <id/><message><![CDATA[<p>A reply, before its parent.</p>]]></message>
    <createdAt>2019-05-01T12:00:00Z</createdAt><isDeleted>false</isDeleted><isSpam>false</isSpam>
    <author><email>bob@example.org</email><name>Bob</name><isAnonymous>false</isAnonymous><username>bob</username></author>
    <ipAddress>2001:db8:1234:5678::1</ipAddress>
    <thread dsq:id="100"/><parent dsq:id="2000"/>
  </post>
  <post dsq:id="2000">
    <id/><message><![CDATA[<p>Top-level <a href="javascript:x()">link</a></p>]]></message>
    <createdAt>2019-05-01T11:00:00Z</createdAt><isDeleted>false</isDeleted><isSpam>false</isSpam>
    <author><email>ann@example.org</email><name>Ann</name><isAnonymous>false</isAnonymous></author>
    <ipAddress>192.0.2.44</ipAddress><thread dsq:id="100"/>
  </post>
  <post dsq:id="2002">
    <message><![CDATA[spam]]></message><createdAt>2019-05-02T11:00:00Z</createdAt>
    <isDeleted>false</isDeleted><isSpam>true</isSpam>
    <author><name>Spammer</name><isAnonymous>true</isAnonymous></author><thread dsq:id="101"/>
  </post>
  <post dsq:id="2003">
    <message><![CDATA[deleted]]></message><createdAt>2019-05-02T12:00:00Z</createdAt>
    <isDeleted>true</isDeleted><isSpam>false</isSpam>
    <author><name></name></author><thread dsq:id="101"/>
  </post>
</disqus>"""


async def test_disqus_import(session: AsyncSession) -> None:
    site = await make_site(session)
    report = await run_import(session, site, ImportFormat.disqus, DISQUS)
    assert (report.created, report.threads_created, report.orphans) == (4, 2, 0)
    comments = {c.source_id: c for c in await comments_of(session, site)}
    reply, top, spam, deleted = (comments[f"disqus:{n}"] for n in (2001, 2000, 2002, 2003))
    assert (reply.parent_id, reply.depth, reply.root_id) == (top.id, 1, top.id)
    assert (reply.author_name, reply.author_email, reply.ip) == ("Bob", "bob@example.org", "2001:db8:1234::")
    assert (top.status, spam.status, deleted.status) == (
        CommentStatus.approved,
        CommentStatus.spam,
        CommentStatus.trash,
    )
    assert (spam.author_email, deleted.author_name) == ("", "Anonymous")
    assert "javascript" not in top.content_html
    assert top.created_at == datetime(2019, 5, 1, 11, 0, tzinfo=UTC)
    threads = {t.key: t for t in (await thread_map(session, site)).values()}
    assert set(threads) == {"article-7", "/articles/8"}  # the tracker parameter is not part of the key
    assert (threads["article-7"].title, threads["article-7"].approved_count) == ("Seven", 2)
    assert threads["/articles/8"].is_open is False
    again = await run_import(session, site, ImportFormat.disqus, DISQUS)
    assert (again.created, again.skipped_existing) == (0, 4)


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss xmlns:wp="http://wordpress.org/export/1.2/"><channel><item><title>&xxe;</title>
<wp:comment><wp:comment_id>1</wp:comment_id><wp:comment_content>&xxe;</wp:comment_content>
<wp:comment_date_gmt>2020-01-01 00:00:00</wp:comment_date_gmt></wp:comment></item></channel></rss>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<disqus xmlns="http://disqus.com"><thread><title>&lol9;</title></thread></disqus>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]><disqus/>"""


@pytest.mark.parametrize(
    "data", [XXE, LAUGHS, PARAMETER_ENTITY], ids=["external-entity", "billion-laughs", "parameter-entity"]
)
@pytest.mark.parametrize("fmt", [ImportFormat.wxr, ImportFormat.disqus])
async def test_hostile_xml_is_refused(session: AsyncSession, data: bytes, fmt: ImportFormat) -> None:
    site = await make_site(session)
    site_id = site.id
    with pytest.raises(UnsafeXML, match="Refused") as caught:
        await run_import(session, site, fmt, data)
    assert "Nothing was imported" in caught.value.detail
    assert await count(session, Comment, site_id) == 0
    assert await count(session, Thread, site_id) == 0


async def test_malformed_xml_imports_nothing_and_names_the_line(session: AsyncSession) -> None:
    site = await make_site(session)
    site_id = site.id
    good = wxr_file("".join(wp_comment(i) for i in range(1, 9)))
    broken = good.replace(b"</wp:comment_author>", b"</wp:comment_autor>", 1)
    with pytest.raises(ImportFailed, match=r"not well-formed XML at line 15, column \d+: mismatched tag"):
        await run_import(session, site, ImportFormat.wxr, broken)
    truncated = good[: len(good) - 40]
    with pytest.raises(ImportFailed, match="not well-formed XML at line"):
        await run_import(session, site, ImportFormat.wxr, truncated)
    assert await count(session, Comment, site_id) == 0
    assert await count(session, Thread, site_id) == 0


async def test_a_bad_element_late_in_the_file_imports_nothing(session: AsyncSession, monkeypatch) -> None:
    monkeypatch.setattr(service, "IMPORT_BATCH", 2)  # earlier batches are already inserted when the error comes
    site = await make_site(session)
    site_id = site.id
    later = (
        "<item><title>Later</title><link>https://old.example.org/later/</link>"
        + wp_comment(8)
        .replace("<wp:comment_date_gmt><![CDATA[2020-01-09 13:00:00]]></wp:comment_date_gmt>", "")
        .replace(
            "<wp:comment_date><![CDATA[2020-01-09 14:00:00]]></wp:comment_date>",
            "<wp:comment_date>soon</wp:comment_date>",
        )
        + "</item>"
    )
    data = wxr_file("".join(wp_comment(i) for i in range(1, 6)), extra_item=later)
    with pytest.raises(
        ImportFailed, match=r"<wp:comment> #6 \(in <item> #2, 'https://old.example.org/later/'\) \(wp:comment_id 8\)"
    ):
        await run_import(session, site, ImportFormat.wxr, data)
    assert await count(session, Comment, site_id) == 0
    assert await count(session, Thread, site_id) == 0


async def test_malformed_jsonl_names_the_line(session: AsyncSession, populated: Populated) -> None:
    lines = (await export_bytes(session, populated.site, ExportFormat.jsonl)).splitlines()
    copy = await make_site(session, slug="copy")
    copy_id = copy.id
    for bad, message in [
        (b"{not json", "line 4: "),
        (json.dumps({"id": 9, "thread_key": "t"}).encode(), "line 4: .*content_raw"),
        (json.dumps({**json.loads(lines[0]), "status": "published"}).encode(), "line 4: .*status"),
    ]:
        data = b"\n".join([*lines[:3], bad, *lines[3:]])
        with pytest.raises(ImportFailed, match=message):
            await run_import(session, copy, ImportFormat.jsonl, data)
        assert await count(session, Comment, copy_id) == 0


async def test_reply_cycles_are_refused(session: AsyncSession) -> None:
    site = await make_site(session)
    site_id = site.id
    data = wxr_file(wp_comment(1, parent=2) + wp_comment(2, parent=1))
    with pytest.raises(ImportFailed, match="cycle"):
        await run_import(session, site, ImportFormat.wxr, data)
    assert await count(session, Comment, site_id) == 0


async def test_jsonl_import_strips_nul_and_resanitizes(session: AsyncSession) -> None:
    site = await make_site(session)
    record = {
        "id": 1, "site": "old", "thread_key": "/a", "content_raw": "hi\u0000 <img src=x onerror=alert(1)>",
        "content_html": "<img src=x onerror=alert(1)>", "created_at": "2026-01-01T00:00:00Z", "status": "approved",
        "author_name": "Nul\u0000l", "author_email": "n@example.org",
    }  # fmt: skip
    await run_import(session, site, ImportFormat.jsonl, json.dumps(record).encode())
    (comment,) = await comments_of(session, site)
    assert (comment.content_raw, comment.author_name) == ("hi <img src=x onerror=alert(1)>", "Null")
    assert "<img" not in comment.content_html  # the file's html is ignored; the raw text is escaped


async def test_imported_threads_use_canonical_keys_and_aliases(session: AsyncSession) -> None:
    site = await make_site(session)
    merged = Thread(site_id=site.id, key="/2020/01/hello")  # type: ignore[arg-type]
    session.add(merged)
    await session.flush()
    session.add(ThreadAlias(site_id=site.id, key="/old/hello", thread_id=merged.id))  # type: ignore[arg-type]
    await session.commit()
    when = "2020-01-01T00:00:00Z"
    records = [
        {"id": 1, "site": "old", "thread_key": "/old/hello/", "content_raw": "via the alias", "created_at": when},
        {"id": 2, "site": "old", "thread_key": "https://blog.example.org/2020/01/hello/index.html?fbclid=x",
         "content_raw": "via a noisy URL", "created_at": when},
    ]  # fmt: skip
    report = await run_import(session, site, ImportFormat.jsonl, "\n".join(json.dumps(r) for r in records).encode())
    assert (report.created, report.threads_created) == (2, 0)
    assert {c.thread_id for c in await comments_of(session, site)} == {merged.id}
