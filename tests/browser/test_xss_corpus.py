"""The XSS corpus through the whole path, in a real browser against a real `comments serve`.

Every vector of tests/data/xss/vectors.jsonl is posted with `POST /api/comments` three times over: as
the comment, as the author's name and as their website (one comment carries all three; a field the
server refuses with 400 is replaced by a harmless value and the comment sent again, so every vector
is tried in every field). A moderator sees each batch in the /admin queue, approves it through the
moderation API, and a reader loads the demo article, where the widget renders the thread, and the
server-rendered no-JS thread (`/embed`, which /demo includes until the widget replaces it). Every
payload that runs sets `window.__xss`; it must stay unset on every page. Nothing is clicked: instead no
element may carry an on* attribute or a link to any scheme but http(s) and mailto, and comment bodies
may hold only the sanitizer's tags and attributes, as the browser parsed them.

Both browser contexts bypass the pages' Content-Security-Policy: the CSP would block inline handlers
and `javascript:` URLs on its own, and a blog that embeds the widget usually has none, so the markup
itself must be inert. A positive control at the end shows that, so configured, an injected handler
does run and is seen by the checks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from comments import sites
from comments.models import Role
from comments.moderation import accounts
from comments.sanitize import ALLOWED_TAGS
from tests.browser.conftest import TIMEOUT_MS, Server, new_reader

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

VECTORS_PATH = Path(__file__).parent.parent / "data" / "xss" / "vectors.jsonl"
VECTORS = [json.loads(line)["payload"] for line in VECTORS_PATH.read_text(encoding="ascii").splitlines()]
BATCH = 40  # comments per page load; the widget shows 50 roots a page, /admin 25 entries
MODERATOR, PASSWORD = "xss-moderator@demo.example", "a moderator's long password"
# What the server may answer a hostile field with, instead of storing it.
REFUSALS = {
    "content": {
        "This field contains characters that are not valid text.",
        "Your comment contains control characters; please remove them.",
    },
    "name": {
        "This field contains characters that are not valid text.",
        "Your name may not contain control, zero-width or text-direction characters.",
    },
    "url": {
        "This field contains characters that are not valid text.",
        "Please enter a valid website address (http or https).",
        "Your website address is too long (the limit is 200 characters).",
    },
}
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# Runs in the page: everything that would make a payload dangerous, whether or not it fired yet.
INSPECT = """([contentSelector, allowedTags]) => {
  const found = {xss: typeof window.__xss !== 'undefined', handlers: [], urls: [], scripts: [], tags: [], attrs: [],
                 frames: document.querySelectorAll('iframe,frame,object,embed,base,meta[http-equiv],portal').length};
  const URL_ATTRS = ['href', 'src', 'action', 'formaction', 'xlink:href', 'data', 'poster', 'background',
                     'codebase', 'cite', 'longdesc', 'lowsrc', 'dynsrc', 'ping', 'srcset', 'srcdoc'];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const name = a.name.toLowerCase();
      if (name.startsWith('on')) found.handlers.push(`<${el.localName} ${a.name}="${a.value}">`);
      if (!URL_ATTRS.includes(name) || (el.localName === 'link' && a.value === 'data:,')) continue;  // the favicon
      let scheme;
      try { scheme = new URL(a.value, document.baseURI).protocol; } catch { scheme = 'unparsable:'; }
      if (!['http:', 'https:', 'mailto:'].includes(scheme) || name === 'srcdoc' || name === 'srcset')
        found.urls.push(`<${el.localName} ${a.name}="${a.value}">`);
    }
  }
  for (const s of document.scripts) if (!s.src) found.scripts.push(s.outerHTML.slice(0, 200));
  const attrsOk = {a: ['href', 'rel'], abbr: ['title']};
  for (const el of document.querySelectorAll(contentSelector + ' *')) {
    if (!allowedTags.includes(el.localName)) found.tags.push(el.outerHTML.slice(0, 200));
    for (const a of el.attributes)
      if (!(attrsOk[el.localName] || []).includes(a.name)) found.attrs.push(`<${el.localName} ${a.name}>`);
  }
  return found;
}"""


@dataclass
class Posted:
    """One stored comment and which of its fields carry the vector."""

    index: int
    id: int
    status: str
    name: str  # the name as stored (the vector, or a stand-in when it was refused)
    url: str | None  # the website as stored (normalized by the server)


@dataclass
class Tally:
    """The figures of a run, written to tests/artifacts/xss-browser-BACKEND.json."""

    stored: dict[str, int] = field(default_factory=lambda: {"content": 0, "name": 0, "url": 0})
    refused: dict[str, int] = field(default_factory=lambda: {"content": 0, "name": 0, "url": 0})
    page_loads: dict[str, int] = field(default_factory=lambda: {"widget": 0, "embed": 0, "admin": 0})


async def submit(http: httpx.AsyncClient, index: int, tally: Tally) -> Posted:
    """Post the vector in every field; refused fields get a stand-in, and the refusal must be a proper one."""
    vector = VECTORS[index]
    body: dict[str, Any] = {
        "site": sites.DEMO_SLUG,
        "thread": "/demo",
        "content": vector,
        "name": vector,
        "email": f"reader{index}@example.org",
        "url": vector,
    }
    response = await http.post("/api/comments", json=body)
    if response.status_code == 400:
        errors = response.json()["errors"]
        refused = {e["field"] for e in errors}
        assert refused <= set(REFUSALS), (vector, errors)
        for error in errors:
            assert error["message"] in REFUSALS[error["field"]], (vector, error)
        if "content" in refused:  # only text a browser could not have typed: NUL and control characters
            assert CONTROL.search(vector), (vector, errors)
        for name in refused:
            tally.refused[name] += 1
        stand_in = {"content": f"Stand-in comment {index}", "name": f"Reader {index}", "url": None}
        body |= {name: stand_in[name] for name in refused}
        response = await http.post("/api/comments", json=body)
    assert response.status_code == 201, (vector, response.text)
    comment = response.json()["comment"]
    for name in ("content", "name", "url"):
        tally.stored[name] += body[name] == vector
    if body["name"] == vector:  # stored as typed: what the pages render is the hostile text itself
        assert comment["author"]["name"] == vector.strip(), vector
    url = comment["author"]["url"]
    if body["url"] == vector:
        assert url.startswith(("http://", "https://")), (vector, url)
    return Posted(index=index, id=comment["id"], status=comment["status"], name=comment["author"]["name"], url=url)


# The author line of every rendered comment: [id, name as text, link href or null].
AUTHORS = """([entries, author]) => [...document.querySelectorAll(entries)].map(e => {
  const a = e.querySelector(author), link = a.querySelector('a');
  return [Number(e.id.replace(/\\D/g, '')), a.textContent.trim(), link && link.getAttribute('href')];
})"""


async def inspect(page: Any, content_selector: str) -> dict[str, Any]:
    await page.wait_for_timeout(300)  # onerror, onload, animations and refreshes fire within a moment
    return dict(await page.evaluate(INSPECT, [content_selector, sorted(ALLOWED_TAGS)]))


def assert_inert(found: dict[str, Any], where: str, batch: list[Posted]) -> None:
    payloads = [VECTORS[p.index] for p in batch]
    clean = {"xss": False, "handlers": [], "urls": [], "scripts": [], "tags": [], "attrs": [], "frames": 0}
    assert found == clean, f"{where}: {found}\nbatch: {payloads}"


async def authors(page: Any, entries: str, author: str) -> dict[int, tuple[str, str | None]]:
    """Names render as text and websites as the stored http(s) link, whatever the vector looked like."""
    return {row[0]: (row[1], row[2]) for row in await page.evaluate(AUTHORS, [entries, author])}


async def check_widget(browser: Any, server: Server, batch: list[Posted], tally: Tally) -> None:
    """(a) The demo article as the widget shows it, and the server-rendered thread (`/embed`) it replaces."""
    context = await new_reader(browser, server, bypass_csp=True)
    expected = {p.id: (p.name, p.url) for p in batch}
    try:
        page = await context.new_page()
        await page.goto("/demo")
        await page.locator("#comments-form[novalidate]").wait_for()  # the widget has replaced the fallback
        await page.locator(f"#comment-{batch[-1].id}").wait_for()
        assert page.url == f"{server.base}/demo"  # no refresh or redirect happened
        assert_inert(await inspect(page, "li.comment .comment-content"), "widget", batch)
        assert await authors(page, "li.comment", ".comment-author") == expected
        # The no-JS fragment, kept in the page this time (on /demo the widget replaces it at once).
        await page.goto(f"/embed?site={sites.DEMO_SLUG}&thread=/demo")
        assert_inert(await inspect(page, "li.comment .comment-content"), "embed", batch)
        assert await authors(page, "li.comment", ".comment-author") == expected
        tally.page_loads["widget"] += 1
        tally.page_loads["embed"] += 1
    finally:
        await context.close()


async def check_admin(page: Any, batch: list[Posted], tally: Tally) -> None:
    """(b) The moderator's queue, every status tab the batch landed in, following "Older comments"."""
    shown: dict[int, tuple[str, str | None]] = {}
    for status in sorted({p.status for p in batch}):
        url: str | None = f"/admin/queue?site={sites.DEMO_SLUG}&status={status}"
        while url:
            await page.goto(url)
            tally.page_loads["admin"] += 1
            assert_inert(await inspect(page, "li.entry .content"), f"admin {url}", batch)
            shown |= await authors(page, "li.entry", "label.author")
            older = page.get_by_role("link", name="Older comments →")
            url = await older.get_attribute("href") if await older.count() else None
    assert shown == {p.id: (p.name, p.url) for p in batch}


async def test_xss_corpus_is_inert_in_the_widget_and_in_admin(
    browser: Any, server: Server, backend: str, artifacts_dir: Path
) -> None:
    demo = await sites.get_site(server.session, slug=sites.DEMO_SLUG)
    await accounts.add_user(server.session, email=MODERATOR, password=PASSWORD, site=demo, role=Role.moderator)
    await server.session.commit()
    tally = Tally()

    admin = await new_reader(browser, server, bypass_csp=True)
    admin_page = await admin.new_page()
    timeout = TIMEOUT_MS / 1000
    async with (
        httpx.AsyncClient(base_url=server.base, timeout=timeout) as reader,
        httpx.AsyncClient(base_url=server.base, timeout=timeout) as moderator,
    ):
        try:
            # The moderator, in the browser through the login form, and over the API for the approvals.
            await admin_page.goto("/admin/login")
            await admin_page.get_by_label("Email").fill(MODERATOR)
            await admin_page.get_by_label("Password").fill(PASSWORD)
            await admin_page.get_by_role("button", name="Log in").click()
            await admin_page.wait_for_url("**/admin/queue?site=demo**")
            login = await moderator.post("/api/auth/login", json={"email": MODERATOR, "password": PASSWORD})
            assert login.status_code == 200
            await moderator.get("/api/auth/me")  # hands out the csrftoken cookie
            csrf = {"x-csrftoken": moderator.cookies["csrftoken"]}

            for start in range(0, len(VECTORS), BATCH):
                batch = [await submit(reader, i, tally) for i in range(start, min(start + BATCH, len(VECTORS)))]
                ids = [p.id for p in batch]
                await check_admin(admin_page, batch, tally)
                approve = {"ids": ids, "status": "approved"}
                response = await moderator.post("/api/moderation/comments/bulk", json=approve, headers=csrf)
                assert response.status_code == 200, response.text
                await check_widget(browser, server, batch, tally)
                # Out of the thread, so that the next batch is shown on its own.
                trash = {"ids": ids, "status": "trash"}
                response = await moderator.post("/api/moderation/comments/bulk", json=trash, headers=csrf)
                assert response.status_code == 200, response.text

            # Positive control: with the CSP bypassed, an injected handler runs and the checks see it.
            await admin_page.goto(f"/admin/queue?site={sites.DEMO_SLUG}&status=trash")
            await assert_control_fires(admin_page, "li.entry .content")
            demo_page = await admin.new_page()
            await demo_page.goto("/demo")
            await demo_page.locator("#comments-form[novalidate]").wait_for()
            await assert_control_fires(demo_page, "#comments")
        finally:
            await admin.close()

    (artifacts_dir / f"xss-browser-{backend}.json").write_text(
        json.dumps({"vectors": len(VECTORS), **tally.__dict__}, indent=2) + "\n"
    )
    for name in ("content", "name", "url"):
        assert tally.stored[name] + tally.refused[name] == len(VECTORS)


async def assert_control_fires(page: Any, selector: str) -> None:
    await page.locator(selector).first.evaluate(
        """e => { e.innerHTML += '<p><img src="/no-such-image" onerror="window.__xss=1"></p>'; }"""
    )
    found = await inspect(page, selector)
    assert found["xss"] is True
    assert found["handlers"] == ['<img onerror="window.__xss=1">']
