"""Hostile and malformed input: each gets one specific 4xx and leaves the database exactly as it was.

NUL bytes, invalid UTF-8, lone surrogates, oversized and deeply nested bodies, wrong types,
out-of-range ids, invisible and bidirectional characters in names, header injection in the
email and website fields. Every case runs on both backends (PostgreSQL is the stricter one:
it refuses NUL bytes outright, so a missed check shows up there as a 500).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.factories import make_comment, make_site, make_thread, reply_body

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
MB = 1024 * 1024
THREAD = "/2026/11/article"
NOT_TEXT = "This field contains characters that are not valid text."
INVISIBLE = "Your name may not contain control, zero-width or text-direction characters."
BAD_EMAIL = "Please enter a valid email address."
BAD_URL = "Please enter a valid website address (http or https)."
BAD_PARENT = "The comment you are replying to does not exist or is not approved yet."


@dataclass(frozen=True)
class Bad:
    """One hostile request and the one answer it must get."""

    status: int
    code: str | None = None
    errors: list[dict[str, str]] | None = None  # exactly these field errors, when given
    method: str = "POST"
    path: str = "/api/comments"
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] | None = None
    html: bool = False  # a form post answers with the HTML error page


def post(status: int, code: str | None = "validation_error", **overrides: Any) -> Bad:
    """A JSON reply that is valid except for `overrides`."""
    errors = overrides.pop("errors", None)
    return Bad(status, code, errors, json_body=reply_body(**overrides))


def fails(field_name: str, message: str, **overrides: Any) -> Bad:
    """A JSON reply refused with exactly one field error."""
    return post(400, errors=[{"field": field_name, "message": message}], **overrides)


def raw(status: int, code: str, content: bytes, headers: dict[str, str] = JSON) -> Bad:
    return Bad(status, code, content=content, headers=headers)


def form(status: int, code: str | None, content: bytes, *, html: bool = False) -> Bad:
    return Bad(status, code, content=content, headers=FORM, html=html)


def get(path: str, status: int, code: str, errors: list[dict[str, str]] | None = None) -> Bad:
    return Bad(status, code, errors, method="GET", path=path)


def field_error(field_name: str, message: str) -> list[dict[str, str]]:
    return [{"field": field_name, "message": message}]


VALID_FORM = b"site=blog&thread=%2F2026%2F11%2Farticle&name=Ada&email=ada%40example.org"

CASES: dict[str, Bad] = {
    # NUL bytes: refused as "not valid text" (PostgreSQL could not store them anyway).
    "nul in content": fails("content", NOT_TEXT, content="Nice\x00 post"),
    "nul in name": fails("name", NOT_TEXT, name="Ada\x00"),
    "nul in email": fails("email", NOT_TEXT, email="ada@example.org\x00"),
    "nul in url": fails("url", NOT_TEXT, url="https://example.org/\x00"),
    "nul in thread": fails("thread", NOT_TEXT, thread="/a\x00b"),
    "nul in thread title": fails("thread_title", NOT_TEXT, thread_title="T\x00"),
    "nul in site": post(404, "not_found", site="blog\x00"),
    "nul in a form field": form(400, None, VALID_FORM + b"&content=a%00b", html=True),
    # Invalid UTF-8 and lone surrogates: refused, never "repaired" into U+FFFD.
    "invalid utf-8 json": raw(
        400, "validation_error", b'{"site":"blog","thread":"t","content":"\xff\xfe","name":"A","email":"a@b.org"}'
    ),
    "overlong utf-8 json": raw(
        400, "validation_error", b'{"site":"blog","thread":"t","content":"\xc0\xaf","name":"A","email":"a@b.org"}'
    ),
    "invalid utf-8 form (percent-encoded)": form(400, "validation_error", VALID_FORM + b"&content=%FF%FE"),
    "invalid utf-8 form (raw bytes)": form(400, "validation_error", VALID_FORM + b"&content=\xff\xfe"),
    "invalid utf-8 multipart": Bad(
        400, "validation_error", files={"site": (None, b"blog"), "content": (None, b"caf\xe9")}
    ),
    "lone high surrogate": raw(
        400, "validation_error", json.dumps(reply_body(content="x")).replace("x", "\\ud800").encode()
    ),
    "lone low surrogate": raw(
        400, "validation_error", json.dumps(reply_body(name="x")).replace('"x"', '"\\udc00"').encode()
    ),
    "reversed surrogate pair": raw(
        400, "validation_error", json.dumps(reply_body(content="x")).replace("x", "\\udc00\\ud800").encode()
    ),
    # Size: the body limit (256 KiB) answers 413 before anything is parsed.
    "1 MB json": raw(413, "too_large", json.dumps(reply_body(content="a" * MB)).encode()),
    "1 MB form": form(413, "too_large", VALID_FORM + b"&content=" + b"a" * MB),
    "1 MB multipart": Bad(413, "too_large", files={"site": (None, b"blog"), "content": ("c.txt", b"a" * MB)}),
    "comment over 65,525 bytes": fails(
        "content", "Your comment is too long (the limit is 65,525 bytes).", content="é" * 40_000
    ),
    "more form fields than the form has": form(400, "validation_error", b"&".join([VALID_FORM] + [b"x=1"] * 200)),
    # Structure: deep nesting, wrong shapes, wrong types.
    "deeply nested arrays": raw(400, "validation_error", b'{"site":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "deeply nested objects": raw(400, "validation_error", b'{"a":' * 40_000 + b"1" + b"}" * 40_000),
    "empty body": raw(400, "validation_error", b""),
    "body is null": raw(400, "validation_error", b"null"),
    "body is an array": raw(400, "validation_error", b"[1, 2]"),
    "body is a string": raw(400, "validation_error", b'"Great article"'),
    "truncated json": raw(400, "validation_error", json.dumps(reply_body()).encode()[:-5]),
    "content is a number": post(400, content=42),
    "content is an object": post(400, content={"html": "<b>x</b>"}),
    "name is null": post(400, name=None),
    "email is a list": post(400, email=["ada@example.org"]),
    "site is an object": post(400, site={"slug": "blog"}),
    "parent_id is a string": post(400, parent_id="1"),
    "parent_id is a float": post(400, parent_id=1.5),
    "parent_id is a boolean": post(400, parent_id=True),
    "parent_id in a form is not a number": form(400, "validation_error", VALID_FORM + b"&content=Hi&parent_id=abc"),
    # Ids out of range: no lookup can match them; a clear error, not an overflow.
    "parent_id negative": fails("parent_id", BAD_PARENT, parent_id=-1),
    "parent_id zero": fails("parent_id", BAD_PARENT, parent_id=0),
    "parent_id past 32 bits": fails("parent_id", BAD_PARENT, parent_id=2**31),
    "parent_id past 64 bits": fails("parent_id", BAD_PARENT, parent_id=2**64 + 1),
    "parent_id of 30 digits": fails("parent_id", BAD_PARENT, parent_id=10**30),
    "limit negative": get(f"/api/comments?site=blog&thread={THREAD}&limit=-1", 400, "validation_error"),
    "limit huge": get(f"/api/comments?site=blog&thread={THREAD}&limit={10**30}", 400, "validation_error"),
    "limit not a number": get(f"/api/comments?site=blog&thread={THREAD}&limit=ten", 400, "validation_error"),
    "cursor forged": get(
        f"/api/comments?site=blog&thread={THREAD}&cursor=AAAA",
        400,
        "validation_error",
        field_error("cursor", "This cursor is not valid; start again from the first page."),
    ),
    "thread key with nul (read)": get(
        "/api/comments?site=blog&thread=a%00b", 400, "validation_error", field_error("thread", NOT_TEXT)
    ),
    "embed thread with nul": get(
        "/embed?site=blog&thread=a%00b", 400, "validation_error", field_error("thread", NOT_TEXT)
    ),
    "counts thread with nul": get(
        "/api/counts?site=blog&thread=a&thread=b%00", 400, "validation_error", field_error("thread", NOT_TEXT)
    ),
    "counts of 101 threads": get(
        "/api/counts?site=blog&" + "&".join(f"thread=t{i}" for i in range(101)), 400, "validation_error"
    ),
    "site slug of 10 kB (read)": get(f"/api/comments?site={'s' * 10_000}&thread=t", 400, "validation_error"),
    "site slug with nul (read)": get("/api/comments?site=bl%00og&thread=t", 404, "not_found"),
    # Invisible and bidirectional characters in names: they spoof who said what.
    "right-to-left override in name": fails("name", INVISIBLE, name="\u202eecilA"),
    "right-to-left isolate in name": fails("name", INVISIBLE, name="Ada \u2067Admin\u2069"),
    "zero-width space in name": fails("name", INVISIBLE, name="Ad\u200ba"),
    "zero-width joiner in name": fails("name", INVISIBLE, name="Ada\u200d"),
    "byte order mark in name": fails("name", INVISIBLE, name="\ufeffAda"),
    "soft hyphen in name": fails("name", INVISIBLE, name="Ad\u00ada"),
    "bell in content": fails(
        "content", "Your comment contains control characters; please remove them.", content="Ding\x07 dong"
    ),
    # Header injection: CR/LF smuggled into fields that might end up in a mail header or a redirect.
    "crlf bcc in email": fails("email", BAD_EMAIL, email="ada@example.org\r\nBcc: victim@example.com"),
    "lf bcc in email": fails("email", BAD_EMAIL, email="ada@example.org\nBcc: victim@example.com"),
    "encoded crlf in email": fails("email", BAD_EMAIL, email="ada@example.org%0d%0aBcc:victim@example.com"),
    "crlf in quoted local part": fails("email", BAD_EMAIL, email='"ada\r\nBcc: v@example.com"@example.org'),
    "second address in email": fails("email", BAD_EMAIL, email="ada@example.org, victim@example.com"),
    "angle-addr in email": fails("email", BAD_EMAIL, email="Ada <ada@example.org>"),
    "crlf in name": fails("name", INVISIBLE, name="Ada\r\nBcc: victim@example.com"),
    "crlf in website": fails("url", BAD_URL, url="https://example.org/\r\nSet-Cookie: a=b"),
    "idempotency key over 200 characters": Bad(
        400,
        "validation_error",
        field_error("Idempotency-Key", "Use at most 200 characters."),
        json_body=reply_body(),
        headers={"Idempotency-Key": "k" * 201},
    ),
}


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table.name: (await connection.execute(select(func.count()).select_from(table))).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


@pytest.fixture
async def seeded(session: AsyncSession) -> None:
    """A site with a thread holding one approved comment, so ids and threads have something to miss."""
    site = await make_site(session)
    thread = await make_thread(session, site=site, key=THREAD)
    await make_comment(session, thread=thread)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_bad_input_gets_a_specific_4xx_and_changes_nothing(
    case: Bad, seeded: None, engine: AsyncEngine, client: AsyncTestClient[Litestar]
) -> None:
    before = await row_counts(engine)
    response = await client.request(
        case.method,
        case.path,
        json=case.json_body,
        content=case.content,
        headers=case.headers,
        files=case.files,
        follow_redirects=False,
    )
    assert response.status_code == case.status, response.text
    if case.html:
        assert response.headers["content-type"].startswith("text/html")
        assert "Your comment could not be posted" in response.text
    else:
        body = response.json()
        assert body["code"] == case.code
        assert body["detail"]
        if case.errors is not None:
            assert body["errors"] == case.errors
    assert await row_counts(engine) == before


async def test_a_non_ascii_moderation_proof_is_simply_wrong(seeded: None, client: AsyncTestClient[Litestar]) -> None:
    """Found by the fuzzer: hmac.compare_digest raised TypeError (a 500) on a non-ASCII str."""
    response = await client.get(f"/embed?site=blog&thread={THREAD}&unapproved=1&moderation-hash=%C3%A9")
    assert response.status_code == 200
    assert "awaiting moderation" not in response.text


def test_the_table_covers_every_kind_of_bad_input() -> None:
    statuses = {case.status for case in CASES.values()}
    assert statuses == {400, 404, 413}
    assert len(CASES) >= 60
