"""Sites: lookups every feature needs, and the set-up the CLI does."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import bindparam
from sqlmodel import col, select

from comments import db
from comments.errors import Conflict, FieldError, InvalidInput, NotFound
from comments.models import Site

if TYPE_CHECKING:
    from sqlmodel import Session
    from sqlmodel.ext.asyncio.session import AsyncSession

DEMO_SLUG = "demo"
MAX_SLUG = 64


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of a URL, lowercased, or None when it is not http(s)."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port and parts.port != {"http": 80, "https": 443}[parts.scheme.lower()] else ""
    return f"{parts.scheme.lower()}://{parts.hostname.lower()}{port}"


def allows_origin(site: Site, origin: str | None, *, own_origin: str | None) -> bool:
    """True when pages of `origin` may use this site's comments: its own origins, or this service's pages."""
    return origin is not None and (origin in site.origins or origin == own_origin)


def is_slug(slug: str) -> bool:
    """1 to 64 letters, digits, '-' or '_': what `create_site` accepts."""
    return 0 < len(slug) <= MAX_SLUG and all(c.isalnum() or c in "-_" for c in slug)


# Built once: constructing select(Site) (every column) costs more than running it.
_BY_SLUG = select(Site).where(col(Site.slug) == bindparam("slug"))


async def get_site(session: AsyncSession, *, slug: str) -> Site:
    """The site with this slug.

    Raises:
        NotFound: no such site.
    """
    return await db.run_sync(session, find_site, slug=slug)


def find_site(session: Session, *, slug: str) -> Site:
    """get_site() for synchronous callers (db.run_sync, db.read_then_write).

    Raises:
        NotFound: no such site.
    """
    # A slug no site can have (NUL bytes, surrogates, 10 kB) is answered without a query.
    site = session.exec(_BY_SLUG, params={"slug": slug}).first() if is_slug(slug) else None
    if site is None:
        raise NotFound(f"Unknown site: {slug!r}.")
    return site


async def origin_is_known(session: AsyncSession, *, origin: str, own_origin: str | None) -> bool:
    """True when any site lists this origin (CORS preflights carry no site to check against)."""
    if origin == own_origin:
        return True
    return any(origin in origins for origins in (await session.exec(select(Site.origins))).all())


async def list_sites(session: AsyncSession) -> list[Site]:
    """Every site, by slug."""
    return list((await session.exec(select(Site).order_by(col(Site.slug)))).all())


async def create_site(session: AsyncSession, *, slug: str, name: str, origins: list[str]) -> Site:
    """Register a site and the origins its pages are served from.

    Raises:
        InvalidInput: a slug or origin is malformed.
        Conflict: the slug is taken.
    """
    errors: list[FieldError] = []
    if not is_slug(slug):
        errors.append(FieldError("slug", "Use 1 to 64 letters, digits, '-' or '_'."))
    normalized = [origin_of(o) for o in origins]
    for given, origin in zip(origins, normalized, strict=True):
        if origin is None:
            errors.append(FieldError("origin", f"Not an http(s) origin: {given!r}."))
    if errors:
        raise InvalidInput(errors)
    if (await session.exec(select(Site.id).where(col(Site.slug) == slug))).first() is not None:
        raise Conflict(f"A site with the slug {slug!r} already exists.")
    site = Site(slug=slug, name=name or slug, origins=sorted({o for o in normalized if o}))
    session.add(site)
    await session.flush()
    return site


async def ensure_demo_site(session: AsyncSession, *, base_url: str) -> Site | None:
    """Create the demo site on an empty database; returns it only when it was created now."""
    if (await session.exec(select(Site.id).limit(1))).first() is not None:
        return None
    return await create_site(session, slug=DEMO_SLUG, name="Demo", origins=[base_url])
