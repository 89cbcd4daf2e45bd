"""Streamed export: every format parsed back by a standard reader, filters, and personal data left out."""
# ruff: noqa: S314  (the standard library parser checks our own output; hostile input is tested in test_import)

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.errors import NotFound
from comments.export import csv_format, wxr
from comments.export.schemas import PERSONAL_COLUMNS, RECORD_COLUMNS, ExportFormat, ExportOptions
from comments.models import CommentStatus
from tests.export.conftest import BASE, Populated, export_bytes

pytestmark = pytest.mark.anyio

WP = "{http://wordpress.org/export/1.2/}"
WXR_COMMENT_FIELDS = [
    "id", "author", "author_email", "author_url", "author_IP", "date", "date_gmt",
    "content", "approved", "type", "parent", "user_id",
]  # fmt: skip


def iso(value) -> str:
    """How exports write times: RFC 3339, UTC, always with microseconds."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_jsonl_has_every_field_of_every_comment(session: AsyncSession, populated: Populated) -> None:
    lines = (await export_bytes(session, populated.site, ExportFormat.jsonl)).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [c.id for c in populated.comments]
    for record, comment in zip(records, populated.comments, strict=True):
        assert list(record) == list(RECORD_COLUMNS)
        thread = next(t for t in populated.threads if t.id == comment.thread_id)
        assert record["site"] == "blog"
        assert (record["thread_key"], record["thread_title"], record["thread_url"]) == (
            thread.key,
            thread.title,
            thread.url,
        )
        assert record["thread_is_open"] is thread.is_open
        assert record["status"] == comment.status.value
        assert (record["parent_id"], record["root_id"], record["depth"]) == (
            comment.parent_id,
            comment.root_id,
            comment.depth,
        )
        assert (record["author_name"], record["author_email"], record["author_url"]) == (
            comment.author_name, comment.author_email, comment.author_url,
        )  # fmt: skip
        assert (record["ip"], record["user_agent"]) == (comment.ip, comment.user_agent)
        assert (record["content_raw"], record["content_html"]) == (comment.content_raw, comment.content_html)
        assert record["created_at"] == iso(comment.created_at)
        assert record["updated_at"] == iso(comment.updated_at)
        assert record["moderated_at"] == (iso(comment.moderated_at) if comment.moderated_at else None)


async def test_csv_round_trips_and_neutralizes_formulas(session: AsyncSession, populated: Populated) -> None:
    data = await export_bytes(session, populated.site, ExportFormat.csv)
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == list(RECORD_COLUMNS)
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert len(body) == len(populated.comments)
    for row in body:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value
    by_id = {int(row["id"]): row for row in body}
    for comment in populated.comments:
        row = by_id[comment.id]  # type: ignore[index]
        for name in ("author_name", "content_raw"):
            value = getattr(comment, name)
            expected = "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
            assert row[name] == expected
        assert row["status"] == comment.status.value
        assert row["parent_id"] == (str(comment.parent_id) if comment.parent_id else "")
        assert row["created_at"] == iso(comment.created_at)
    assert by_id[populated.comments[1].id]["author_name"] == '\'=HYPERLINK("http://evil")'  # type: ignore[index]
    assert by_id[populated.comments[4].id]["content_raw"] == "'\tstarts with a tab\r\nand CRLF"  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
        ("\rx", "'\rx"), ("plain", "plain"), ("", ""), (" =1", " =1"), ("a=1", "a=1"),
    ],
)  # fmt: skip
def test_csv_cell_neutralization(value: str, expected: str) -> None:
    assert csv_format.cell(value) == expected


async def test_wxr_is_valid_xml_with_the_wordpress_fields(session: AsyncSession, populated: Populated) -> None:
    data = await export_bytes(session, populated.site, ExportFormat.wxr)
    root = ET.fromstring(data)
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext(f"{WP}wxr_version") == "1.2"
    items = channel.findall("item")
    assert len(items) == len(populated.threads)
    approved = {"approved": "1", "pending": "0", "spam": "spam", "trash": "trash"}
    by_id = {c.id: c for c in populated.comments}
    seen = 0
    for item, thread in zip(items, populated.threads, strict=True):
        assert item.findtext(f"{WP}post_type") == "post"
        assert item.findtext(f"{WP}comment_status") == ("open" if thread.is_open else "closed")
        assert item.findtext("{urn:x-comments:wxr:1}thread_key") == thread.key
        assert item.findtext("title") == (thread.title or thread.key)
        for element in item.findall(f"{WP}comment"):
            seen += 1
            fields = {name: element.findtext(f"{WP}comment_{name}") for name in WXR_COMMENT_FIELDS}
            assert None not in fields.values(), fields
            comment = by_id[int(fields["id"])]  # type: ignore[arg-type]
            assert comment.thread_id == thread.id
            assert fields["author"] == wxr.xml_chars(comment.author_name)
            assert fields["author_email"] == comment.author_email
            assert fields["author_url"] == (comment.author_url or "")
            assert fields["author_IP"] == comment.ip
            assert fields["date_gmt"] == comment.created_at.strftime("%Y-%m-%d %H:%M:%S") == fields["date"]
            # XML parsers normalize CR LF to LF; characters XML 1.0 forbids are dropped.
            assert fields["content"] == wxr.xml_chars(comment.content_raw).replace("\r\n", "\n")
            assert fields["approved"] == approved[comment.status.value]
            assert fields["type"] == "comment"
            assert fields["parent"] == str(comment.parent_id or 0)
            assert fields["user_id"] == "0"
    assert seen == len(populated.comments)


def test_cdata_splits_the_terminator_and_drops_forbidden_characters() -> None:
    hostile = "a]]>b]]]]>c\x00\x08\x0b\x0c\x1f\ufffe\uffff\ud800 ok\t\n\r😀"
    element = ET.fromstring(f"<x>{wxr.cdata(hostile)}</x>")
    assert element.text == "a]]>b]]]]>c ok\t\n\n😀"
    assert wxr.cdata("") == "<![CDATA[]]>"


async def test_no_personal_data_drops_email_ip_and_user_agent(session: AsyncSession, populated: Populated) -> None:
    options = ExportOptions(personal_data=False)
    for line in (await export_bytes(session, populated.site, ExportFormat.jsonl, options)).splitlines():
        record = json.loads(line)
        assert PERSONAL_COLUMNS.isdisjoint(record)
        assert "author_name" in record
    csv_data = (await export_bytes(session, populated.site, ExportFormat.csv, options)).decode()
    header = next(csv.reader(io.StringIO(csv_data)))
    assert PERSONAL_COLUMNS.isdisjoint(header)
    wxr_data = await export_bytes(session, populated.site, ExportFormat.wxr, options)
    for element in ET.fromstring(wxr_data).iter(f"{WP}comment"):
        assert element.findtext(f"{WP}comment_author_email") == ""
        assert element.findtext(f"{WP}comment_author_IP") == ""
    for data in (csv_data.encode(), wxr_data):
        assert b"@example.org" not in data.replace(b"@SUM", b"")
        assert b"203.0.113.0" not in data
        assert b"Mozilla" not in data


async def test_filters_status_thread_and_dates(session: AsyncSession, populated: Populated) -> None:
    async def ids(options: ExportOptions) -> list[int]:
        data = await export_bytes(session, populated.site, ExportFormat.jsonl, options)
        return [json.loads(line)["id"] for line in data.splitlines()]

    c = populated.comments
    assert await ids(ExportOptions(statuses=(CommentStatus.approved,))) == [c[0].id, c[1].id, c[5].id, c[6].id]
    assert await ids(ExportOptions(statuses=(CommentStatus.spam, CommentStatus.trash))) == [c[3].id, c[4].id]
    assert await ids(ExportOptions(thread_keys=("post-42",))) == [c[4].id, c[5].id, c[6].id]
    window = ExportOptions(since=BASE + timedelta(days=2), until=BASE + timedelta(days=4))
    assert await ids(window) == [c[2].id, c[3].id]
    with pytest.raises(NotFound, match="no-such-thread"):
        await ids(ExportOptions(thread_keys=("no-such-thread",)))


async def test_empty_site_exports_valid_empty_documents(session: AsyncSession, populated: Populated) -> None:
    only = ExportOptions(statuses=(CommentStatus.pending,), thread_keys=("post-42",))
    assert await export_bytes(session, populated.site, ExportFormat.jsonl, only) == b""
    assert (
        ET.fromstring(await export_bytes(session, populated.site, ExportFormat.wxr, only)).find("channel") is not None
    )
    assert (await export_bytes(session, populated.site, ExportFormat.csv, only)).decode().count("\n") == 1


async def test_export_streams_in_batches(session: AsyncSession, populated: Populated, monkeypatch) -> None:
    from comments.export import service

    monkeypatch.setattr(service, "EXPORT_BATCH", 2)
    writer = service.make_writer(ExportFormat.wxr, site=populated.site)
    counts: list[int] = []
    chunks = [
        chunk
        async for chunk in service.export_comments(
            session, site=populated.site, writer=writer, options=ExportOptions(), fmt=ExportFormat.wxr,
            on_progress=counts.append,
        )
    ]  # fmt: skip
    assert counts == [2, 2, 2, 1]
    assert len(chunks) == 6  # header, four batches, footer
    assert len(ET.fromstring(b"".join(chunks)).findall("channel/item")) == 2


def test_csv_quoting_matches_the_csv_module() -> None:
    columns = ["id", "author_name", "content_raw", "thread_is_open", "parent_id"]
    tricky = [
        (1, 'He said "hi", twice', "line one\nline two", True, None),
        (2, "comma, inside", "cr\ronly", False, 7),
        (3, "", None, True, 0),
        (4, "=1+1", '"=quoted"', False, None),
        (5, "😀 ünïcode", 'a\r\nb,c"d', True, 3),
    ]
    data = csv_format.CsvWriter(columns).begin() + csv_format.CsvWriter(columns).rows(tricky)
    parsed = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert parsed[0] == columns
    expected = [
        [str(i), csv_format.cell(name), csv_format.cell(content), "true" if flag else "false", csv_format.cell(parent)]
        for i, name, content, flag, parent in tricky
    ]
    assert parsed[1:] == expected
    reference = io.StringIO(newline="")
    csv.writer(reference).writerows(expected)
    assert data.decode().split("\r\n", 1)[1] == reference.getvalue()


async def test_a_consumer_that_stops_early_leaves_a_usable_session(
    session: AsyncSession, populated: Populated, monkeypatch
) -> None:
    from comments.export import service

    monkeypatch.setattr(service, "EXPORT_BATCH", 2)
    writer = service.make_writer(ExportFormat.jsonl, site=populated.site)
    chunks = service.export_comments(
        session, site=populated.site, writer=writer, options=ExportOptions(), fmt=ExportFormat.jsonl
    )
    assert await anext(chunks) == b""  # header (none for JSONL)
    assert (await anext(chunks)).count(b"\n") == 2
    await chunks.aclose()  # e.g. the HTTP client went away mid-download
    await session.rollback()
    await session.refresh(populated.site)
    assert len(await export_bytes(session, populated.site, ExportFormat.jsonl)) > 0
