"""TEMPORARY stand-in for the sanitizer landing on main from another branch (same API); deleted on merge."""

from __future__ import annotations

from urllib.parse import urlsplit

import bleach
from bleach.linkifier import LinkifyFilter

ALLOWED_TAGS = frozenset({"a", "b", "blockquote", "br", "code", "em", "i", "li", "ol", "p", "pre", "strong", "ul"})
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})


def _nofollow(attrs: dict[tuple[str | None, str], str], new: bool = False) -> dict[tuple[str | None, str], str]:
    attrs[(None, "rel")] = "nofollow ugc"
    return attrs


_cleaner = bleach.Cleaner(
    tags=ALLOWED_TAGS,
    attributes={"a": ["href"]},
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    filters=[lambda source: LinkifyFilter(source, callbacks=[_nofollow])],
)


def clean(raw: str) -> str:
    """Sanitized html of a comment's raw text, paragraphs from blank lines."""
    paragraphs = [p.strip().replace("\n", "<br>") for p in raw.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return str(_cleaner.clean("".join(f"<p>{p}</p>" for p in paragraphs)))


def clean_url(url: str) -> str | None:
    """The URL when it is a plain http(s) URL, else None."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c in url for c in "<>\"' "):
        return None
    return url
