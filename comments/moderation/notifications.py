"""Tell moderators that a comment waits: a signed webhook per site, and email when SMTP is configured.

How the submission service calls it, once the new comment's transaction has committed:

    from comments.moderation import notifications

    submitted = await db.read_then_write(session, admit, store)  # committed when it returns
    await notifications.notify_pending(session, site=submitted.site, comment=submitted.comment, settings=settings)

It does nothing for a comment that is not `pending`. Otherwise it reads what the messages need
and starts an asyncio task, so the reader's response never waits for a webhook or a mail
server; a comment whose transaction failed never gets here, so it is never announced.
Deliveries are retried with back-off (RETRY_DELAYS); failures are logged, never raised.

Webhook: `POST webhook_url` with a JSON body (no author email: webhooks end up in chat rooms),
`Content-Type: application/json`, `X-Comments-Event: comment.pending`, and when the site has a
secret `X-Comments-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed with the secret>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import anyio.to_thread
from sqlmodel import col, select

from comments.models import CommentStatus, Membership, PostedComment, Site, Thread, User, utcnow

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from comments.config import Settings

log = logging.getLogger("comments.notifications")

RETRY_DELAYS: tuple[float, ...] = (2.0, 10.0, 60.0, 300.0, 1800.0)
"""Seconds to wait before each retry; one first attempt plus len(RETRY_DELAYS) retries."""
TIMEOUT_SECONDS = 10.0

_tasks: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class PendingNotice:
    """What a notification says about one waiting comment."""

    site: str
    site_name: str
    comment_id: int
    thread_key: str
    thread_title: str | None
    thread_url: str | None
    author_name: str
    author_url: str | None
    reason: str | None
    html: str
    created_at: str
    admin_url: str | None

    def webhook_body(self) -> bytes:
        """The JSON the webhook receives (and the bytes its signature covers)."""
        payload = {"event": "comment.pending", "sent_at": utcnow().isoformat(), "comment": asdict(self)}
        return json.dumps(payload, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Mail:
    """An email to the site's members, with the server to send it through."""

    settings: Settings
    recipients: list[str]
    author_email: str
    content_raw: str


def sign(secret: str, body: bytes) -> str:
    """The `X-Comments-Signature` value of a body: `sha256=` + hex HMAC-SHA256 keyed with the site's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def notify_pending(
    session: AsyncSession, *, site: Site, comment: PostedComment, settings: Settings | None = None
) -> None:
    """Announce a committed pending comment to the site's webhook and moderators (in the background)."""
    if comment.status != CommentStatus.pending or comment.id is None:
        return
    mail_to = await _member_emails(session, site_id=int(site.id or 0)) if settings and settings.smtp_host else []
    if not site.webhook_url and not mail_to:
        return
    thread = await session.get_one(Thread, comment.thread_id)
    admin_url = None
    if settings is not None:
        query = urlencode({"site": site.slug, "status": "pending"})
        admin_url = f"{settings.base_url.rstrip('/')}/admin/queue?{query}#c{comment.id}"
    notice = PendingNotice(
        site=site.slug,
        site_name=site.name,
        comment_id=comment.id,
        thread_key=thread.key,
        thread_title=thread.title,
        thread_url=thread.url,
        author_name=comment.author_name,
        author_url=comment.author_url,
        reason=comment.reason,
        html=comment.content_html,
        created_at=comment.created_at.isoformat(),
        admin_url=admin_url,
    )
    webhook = (site.webhook_url, site.webhook_secret) if site.webhook_url else None
    mail = (
        Mail(settings=settings, recipients=mail_to, author_email=comment.author_email, content_raw=comment.content_raw)
        if settings and mail_to
        else None
    )
    _spawn(deliver(notice, webhook=webhook, mail=mail))


def _spawn(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain() -> None:
    """Wait for the deliveries in flight (tests, and a graceful shutdown; wrap it in a timeout).

    Polls rather than awaits: the tasks may run on another event loop (a test client's portal).
    """
    while True:
        if all(task.done() for task in list(_tasks)):
            return
        await asyncio.sleep(0.01)


async def _member_emails(session: AsyncSession, *, site_id: int) -> list[str]:
    rows = await session.exec(
        select(User.email)
        .join(Membership, col(Membership.user_id) == col(User.id))
        .where(col(Membership.site_id) == site_id, col(User.is_active).is_(True))
        .order_by(col(User.email))
    )
    return list(rows.all())


async def deliver(notice: PendingNotice, *, webhook: tuple[str, str | None] | None, mail: Mail | None) -> None:
    """Send the webhook and the email, each retried on its own with back-off; never raises."""
    jobs = []
    if webhook is not None:
        url, secret = webhook
        jobs.append(_with_retries(f"webhook of site {notice.site}", lambda: _post_webhook(url, secret, notice)))
    if mail is not None:
        jobs.append(_with_retries(f"email for site {notice.site}", lambda: _send_mail(mail, notice)))
    await asyncio.gather(*jobs)


async def _with_retries(what: str, attempt: Any) -> bool:
    for number, delay in enumerate((0.0, *RETRY_DELAYS), start=1):
        if delay:
            await asyncio.sleep(delay)
        try:
            await anyio.to_thread.run_sync(attempt)
        except (OSError, smtplib.SMTPException, urllib.error.URLError, ValueError) as exc:
            log.warning("%s failed (attempt %d): %s", what, number, type(exc).__name__)
        else:
            return True
    log.error("%s abandoned after %d attempts", what, len(RETRY_DELAYS) + 1)
    return False


def _post_webhook(url: str, secret: str | None, notice: PendingNotice) -> None:
    body = notice.webhook_body()
    headers = {"Content-Type": "application/json", "User-Agent": "comments", "X-Comments-Event": "comment.pending"}
    if secret:
        headers["X-Comments-Signature"] = sign(secret, body)
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("webhook URL must be http(s)")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310  (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310  (scheme checked above)
            if not 200 <= response.status < 300:
                raise OSError(f"HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection; left open it leaks a socket per failed attempt
        raise OSError(f"HTTP {exc.code}") from None


def _send_mail(mail: Mail, notice: PendingNotice) -> None:
    settings = mail.settings
    message = EmailMessage()
    message["Subject"] = f"[{notice.site_name}] New comment awaiting moderation"
    message["From"] = settings.smtp_from
    message["To"] = settings.smtp_from
    where = notice.thread_title or notice.thread_key
    lines = [
        f"{notice.author_name} <{mail.author_email}> commented on {where}",
        f"{notice.thread_url or ''}",
        f"Held because: {notice.reason or 'manual approval'}",
        "",
        mail.content_raw,
        "",
        f"Moderate it: {notice.admin_url or '/admin'}",
    ]
    message.set_content("\n".join(lines))
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message, to_addrs=mail.recipients)
