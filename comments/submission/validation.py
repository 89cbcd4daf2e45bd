"""The "Leave a Reply" rules: every failing field reported at once, in words a reader understands."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from email_validator import EmailNotValidError, validate_email

from comments import sanitize, sites
from comments.errors import FieldError, InvalidInput
from comments.threads import canonical_key

if TYPE_CHECKING:
    from comments.models import Site
    from comments.submission.schemas import ReplyCreate

# WordPress's limits (wp_get_comment_fields_max_lengths), so imports and exports round-trip.
MAX_NAME = 245
MAX_EMAIL = 100
MAX_URL = 200
MAX_CONTENT_BYTES = 65_525
MAX_THREAD_KEY = 500
MAX_THREAD_TITLE = 500
MAX_THREAD_URL = 2000
# html5lib's tree building grows faster than linearly with nesting; this bounds sanitizing to ~70 ms.
MAX_TAGS = 2000

MESSAGES = {
    "content_required": "Please type your comment text.",
    "name_required": "Please fill the required field: name.",
    "email_required": "Please fill the required field: email.",
    "email_invalid": "Please enter a valid email address.",
    "url_invalid": "Please enter a valid website address (http or https).",
    "content_long": f"Your comment is too long (the limit is {MAX_CONTENT_BYTES:,} bytes).",
    "name_long": f"Your name is too long (the limit is {MAX_NAME} characters).",
    "email_long": f"Your email address is too long (the limit is {MAX_EMAIL} characters).",
    "url_long": f"Your website address is too long (the limit is {MAX_URL} characters).",
    "name_invisible": "Your name may not contain control, zero-width or text-direction characters.",
    "content_markup": f"Your comment contains too much HTML markup (the limit is {MAX_TAGS:,} tags).",
    "content_control": "Your comment contains control characters; please remove them.",
    "invalid_text": "This field contains characters that are not valid text.",
    "thread_required": "The thread (the article's identifier) is missing.",
    "thread_long": f"The thread identifier is too long (the limit is {MAX_THREAD_KEY} characters).",
    "thread_title_long": f"The article title is too long (the limit is {MAX_THREAD_TITLE} characters).",
    "thread_url_invalid": "The article URL must be an http(s) address on one of this site's origins.",
    "site_required": "The site is missing.",
}

# Controls other than tab/newline/CR, plus the invisible characters used to spoof names.
_CONTENT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TAG = re.compile(r"<[A-Za-z/!?]")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u00ad]")


@dataclass(frozen=True)
class CleanReply:
    """A reply whose fields passed every rule, trimmed and normalized."""

    thread: str
    thread_title: str | None
    thread_url: str | None
    parent_id: int | None
    content: str
    name: str
    email: str
    url: str | None


def validate_reply(data: ReplyCreate, *, site: Site, own_origin: str | None) -> CleanReply:
    """Apply the form's rules; whitespace-only counts as empty and nothing is ever silently cut.

    Raises:
        InvalidInput: one FieldError per failing field, in form order.
    """
    errors: list[FieldError] = []
    for field in ("thread", "thread_title", "thread_url", "content", "name", "email", "url"):
        value = getattr(data, field)
        if value is not None and not _is_valid_text(value):
            errors.append(FieldError(field, MESSAGES["invalid_text"]))
    if errors:
        raise InvalidInput(errors)

    content = data.content.strip()
    name = data.name.strip()
    email = data.email.strip()
    url = (data.url or "").strip()

    if not content:
        errors.append(FieldError("content", MESSAGES["content_required"]))
    elif len(content.encode()) > MAX_CONTENT_BYTES:
        errors.append(FieldError("content", MESSAGES["content_long"]))
    elif _CONTENT_CONTROL.search(content):
        errors.append(FieldError("content", MESSAGES["content_control"]))
    elif len(_TAG.findall(content)) > MAX_TAGS:
        errors.append(FieldError("content", MESSAGES["content_markup"]))

    if not name:
        errors.append(FieldError("name", MESSAGES["name_required"]))
    elif len(name) > MAX_NAME:
        errors.append(FieldError("name", MESSAGES["name_long"]))
    elif _has_invisible(name):
        errors.append(FieldError("name", MESSAGES["name_invisible"]))

    normalized_email = _check_email(email, errors)
    normalized_url = _check_url(url, errors)
    thread, title, thread_url = _check_thread(data, site=site, own_origin=own_origin, errors=errors)
    if errors:
        raise InvalidInput(errors)
    return CleanReply(
        thread=thread,
        thread_title=title,
        thread_url=thread_url,
        parent_id=data.parent_id,
        content=content,
        name=name,
        email=normalized_email,
        url=normalized_url,
    )


def _is_valid_text(value: str) -> bool:
    """False for NUL bytes and lone surrogates, which no database column can store faithfully."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_invisible(name: str) -> bool:
    return bool(_INVISIBLE.search(name)) or any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name)


def _check_email(email: str, errors: list[FieldError]) -> str:
    if not email:
        errors.append(FieldError("email", MESSAGES["email_required"]))
        return ""
    if len(email) > MAX_EMAIL:
        errors.append(FieldError("email", MESSAGES["email_long"]))
        return ""
    try:
        # Syntax only: a DNS lookup per comment would leak the address and stall the request.
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        errors.append(FieldError("email", MESSAGES["email_invalid"]))
        return ""


def _check_url(url: str, errors: list[FieldError]) -> str | None:
    if not url:
        return None
    if len(url) > MAX_URL:
        errors.append(FieldError("url", MESSAGES["url_long"]))
        return None
    normalized = sanitize.clean_url(url)
    if normalized is None:
        errors.append(FieldError("url", MESSAGES["url_invalid"]))
    elif len(normalized) > MAX_URL:
        errors.append(FieldError("url", MESSAGES["url_long"]))
        return None
    return normalized


def _check_thread(
    data: ReplyCreate, *, site: Site, own_origin: str | None, errors: list[FieldError]
) -> tuple[str, str | None, str | None]:
    title = (data.thread_title or "").strip() or None
    if title and len(title) > MAX_THREAD_TITLE:
        errors.append(FieldError("thread_title", MESSAGES["thread_title_long"]))
    thread_url = (data.thread_url or "").strip() or None
    if thread_url is not None:
        origin = sites.origin_of(thread_url) if len(thread_url) <= MAX_THREAD_URL else None
        if origin is None or not sites.allows_origin(site, origin, own_origin=own_origin):
            errors.append(FieldError("thread_url", MESSAGES["thread_url_invalid"]))
    # The thread is the article's stable key; without one, the article's URL stands in for it.
    given = data.thread.strip() or thread_url or ""
    thread = canonical_key(given, keep_params=site.thread_query_params) if given else ""
    if not thread:
        errors.append(FieldError("thread", MESSAGES["thread_required"]))
    elif len(thread) > MAX_THREAD_KEY:
        errors.append(FieldError("thread", MESSAGES["thread_long"]))
    return thread, title, thread_url
