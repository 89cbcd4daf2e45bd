"""Abuse checks on the write path: origin, flood, rate limit, duplicates.

Counters live in the database (RateEvent rows and the comments themselves), never
only in process memory, so every app instance enforces the same limits.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, func, insert
from sqlmodel import col, select

from comments import security, sites
from comments.errors import Duplicate, Forbidden, TooManyRequests
from comments.models import Comment, RateEvent, text_digest, utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlmodel import Session

    from comments.config import Settings
    from comments.models import Site

FLOOD_MESSAGE = "You are posting comments too quickly. Slow down."
RATE_MESSAGE = "Too many comments from your network in the last hour. Please try again later."
DUPLICATE_MESSAGE = "Duplicate comment detected; it looks as though you've already said that!"
ORIGIN_MESSAGE = "Comments for this site can only be posted from its own pages."
RATE_WINDOW = timedelta(hours=1)


def anonymize_ip(ip: str | None) -> str | None:
    """Keep only the network (IPv4 /24, IPv6 /48): enough to spot a flood, not to identify a reader."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def check_origin(site: Site, origin: str | None, *, own_origin: str | None) -> None:
    """Browser posts must come from the site's pages; clients that send no Origin/Referer are not browsers.

    Raises:
        Forbidden: the post came from a page of another origin.
    """
    if origin is not None and not sites.allows_origin(site, origin, own_origin=own_origin):
        raise Forbidden(ORIGIN_MESSAGE)


def _ip_limits_on(settings: Settings) -> bool:
    """Whether any per-IP limit is set; with none, no rate events are read or written."""
    return bool(settings.flood_seconds or settings.rate_limit_per_hour)


def _ip_bucket(settings: Settings, ip: str) -> str:
    # Keyed hash: the table never holds a raw address, and cannot be reversed without the secret.
    return "reply-ip:" + security.keyed_token(settings.secret_key, "reply-ip", ip)[:40]


def check_rate(session: Session, *, settings: Settings, site_id: int, ip: str | None, email: str) -> None:
    """Flood control per IP and per email, and the hourly per-IP limit.

    Raises:
        TooManyRequests: too soon after the last comment, or over the hourly limit.
    """
    now = utcnow()
    if settings.flood_seconds:
        since = now - timedelta(seconds=settings.flood_seconds)
        last_by_email = session.exec(
            select(func.max(Comment.created_at)).where(
                col(Comment.author_email) == email, col(Comment.site_id) == site_id, col(Comment.created_at) > since
            )
        ).one()
        if last_by_email is not None:
            raise TooManyRequests(FLOOD_MESSAGE, retry_after=_seconds_left(last_by_email, settings.flood_seconds))
    if not ip or not _ip_limits_on(settings):
        return
    bucket = _ip_bucket(settings, ip)
    recent = (col(RateEvent.bucket) == bucket, col(RateEvent.created_at) > now - RATE_WINDOW)
    if settings.flood_seconds:
        # Newest event first along ix_rate_event_bucket_created: one index probe, however busy the IP.
        last = session.exec(
            select(RateEvent.created_at).where(*recent).order_by(col(RateEvent.created_at).desc()).limit(1)
        ).first()
        if last is not None and (now - last).total_seconds() < settings.flood_seconds:
            raise TooManyRequests(FLOOD_MESSAGE, retry_after=_seconds_left(last, settings.flood_seconds))
    if settings.rate_limit_per_hour:
        # Count no further than the limit: the cost stays bounded by the limit, not by the traffic.
        window = select(RateEvent.id).where(*recent).limit(settings.rate_limit_per_hour).subquery()
        count = session.exec(select(func.count()).select_from(window)).one()
        if count >= settings.rate_limit_per_hour:
            raise TooManyRequests(RATE_MESSAGE, retry_after=int(RATE_WINDOW.total_seconds()))


def _seconds_left(last: datetime, window: int) -> int:
    return int(window - (utcnow() - last).total_seconds()) + 1


def record_post(session: Session, *, settings: Settings, ip: str | None) -> None:
    """Count this post against the IP's limits and forget events older than the window.

    Nothing to count when both limits are off (check_rate then reads no events either).
    """
    if not ip or not _ip_limits_on(settings):
        return
    bucket = _ip_bucket(settings, ip)
    session.exec(
        delete(RateEvent).where(col(RateEvent.bucket) == bucket, col(RateEvent.created_at) < utcnow() - RATE_WINDOW)
    )
    session.exec(insert(RateEvent).values(bucket=bucket, created_at=utcnow()))


_SAME_TEXT = (
    select(Comment.id)
    .where(
        col(Comment.thread_id) == bindparam("thread_id"),
        col(Comment.content_hash) == bindparam("digest"),
        col(Comment.author_email) == bindparam("email"),
        col(Comment.content_raw) == bindparam("content"),
    )
    .limit(1)
)


def check_duplicate(session: Session, *, thread_id: int, email: str, content: str) -> None:
    """Refuse the same text from the same author in the same thread (a double click, a replayed bot).

    Raises:
        Duplicate: it was already said.
    """
    params = {"thread_id": thread_id, "digest": text_digest(content), "email": email, "content": content}
    found = session.connection().execute(_SAME_TEXT, params).first()  # Core: no ORM objects to load
    if found is not None:
        raise Duplicate(DUPLICATE_MESSAGE)
