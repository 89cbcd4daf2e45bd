"""The `comments` command: serve, migrate, and manage sites and users."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, TypeVar

import click
import uvicorn
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from comments import db, maintenance, migrations, sites, threads
from comments.config import Settings
from comments.errors import CommentsError
from comments.models import Role, ident
from comments.moderation import accounts

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

T = TypeVar("T")
log = logging.getLogger("comments")


def _settings() -> Settings:
    try:
        return Settings().with_secret()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise click.ClickException(f"bad setting COMMENTS_{str(first['loc'][0]).upper()}: {first['msg']}") from exc
    except OSError as exc:
        raise click.ClickException(f"data directory is not writable: {exc}") from exc


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]], settings: Settings | None = None) -> T:
    """Run one async CLI action, turning infrastructure failures into one clear line instead of a traceback."""
    settings = settings or _settings()
    try:
        return asyncio.run(work(settings))
    except CommentsError as exc:
        raise click.ClickException(exc.detail + "".join(f"\n  {e.field}: {e.message}" for e in exc.errors)) from exc
    except (OperationalError, DBAPIError, OSError) as exc:
        target = _safe_url(settings)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(f"cannot use the database at {target}: {reason}") from exc


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


async def _session_call(settings: Settings, action: Callable[[Any], Awaitable[T]]) -> T:
    """Run one unit of work on an up-to-date schema, so no command trips over a missing table."""
    await migrations.upgrade_to_head(settings)
    engine = db.create_engine(settings)
    try:
        async with db.session_scope(engine) as session:
            return await action(session)
    finally:
        await engine.dispose()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Self-hosted comments: reader replies, moderation and export.

    Configuration comes from COMMENTS_* environment variables (see the README):
    COMMENTS_DATABASE_URL (default: SQLite under ./var), COMMENTS_SECRET_KEY,
    COMMENTS_BASE_URL.
    """


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the newest revision."""
    _run(migrations.upgrade_to_head)
    click.echo("database is at the newest schema")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="COMMENTS_HOST", help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, envvar="COMMENTS_PORT", help="TCP port.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="COMMENTS_WORKERS",
    help="Worker processes.",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Migrate the database, create the demo site on an empty one, then serve."""
    started = time.monotonic()
    if not os.environ.get("COMMENTS_BASE_URL"):
        # Workers re-read the environment, so the URL the demo page links to must be set there.
        os.environ["COMMENTS_BASE_URL"] = f"http://{host}:{port}"
    settings = _settings()

    async def prepare(settings: Settings) -> bool:
        created = await _session_call(settings, lambda s: sites.ensure_demo_site(s, base_url=settings.base_url))
        return created is not None

    demo_created = _run(prepare, settings)
    base = settings.base_url.rstrip("/")
    if demo_created:
        click.echo(f"created the demo site 'demo' (origin {base})")
    click.echo(f"comments: demo article at {base}/demo, admin at {base}/admin, API docs at {base}/schema")
    click.echo(f"ready to start after {time.monotonic() - started:.2f}s; serving on http://{host}:{port}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        "comments.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        server_header=False,
        proxy_headers=True,
        timeout_keep_alive=5,
        log_level="info",
    )


@main.group()
def site() -> None:
    """Manage the sites that embed the widget."""


@site.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="Human-readable site name.")
@click.option("--origin", "origins", multiple=True, required=True, help="Origin pages are served from; repeatable.")
def site_add(slug: str, name: str, origins: tuple[str, ...]) -> None:
    """Register a site and the origins allowed to post to it."""
    created = _run(
        lambda s: _session_call(s, lambda db_: sites.create_site(db_, slug=slug, name=name, origins=list(origins)))
    )
    click.echo(f"site {created.slug}: {created.name} ({', '.join(created.origins)})")


@site.command("list")
def site_list() -> None:
    """List the sites with their origins."""
    for found in _run(lambda s: _session_call(s, sites.list_sites)):
        click.echo(f"{found.slug}\t{found.name}\t{' '.join(found.origins)}")


@site.command("set")
@click.argument("slug")
@click.option("--max-depth", type=click.IntRange(1, 20), help="Deepest reply level (WordPress default: 5).")
@click.option(
    "--thread-param",
    "thread_params",
    multiple=True,
    help="Query parameter that identifies an article (repeatable); others are ignored in thread keys.",
)
@click.option("--spam-threshold", type=click.FloatRange(0, 1), help="Spam score at which a comment goes to spam.")
@click.option("--spam-hold", type=click.FloatRange(0, 1), help="Spam score at which an auto-approval is held.")
@click.option(
    "--retention-personal-days", type=click.IntRange(0), help="Forget IP and user agent after N days (0: keep)."
)
@click.option("--retention-purge-days", type=click.IntRange(0), help="Delete spam and trash after N days (0: keep).")
def site_set(slug: str, thread_params: tuple[str, ...], **values: Any) -> None:
    """Change a site's settings; options not given stay as they are."""
    changes = {k: v for k, v in values.items() if v is not None}
    for key in ("retention_personal_days", "retention_purge_days"):
        if changes.get(key) == 0:
            changes[key] = None
    if thread_params:
        changes["thread_query_params"] = sorted(set(thread_params))

    async def update(session: Any) -> str:
        found = await sites.get_site(session, slug=slug)
        for key, value in changes.items():
            setattr(found, key, value)
        return ", ".join(f"{k}={v}" for k, v in changes.items()) or "nothing changed"

    click.echo(f"{slug}: {_run(lambda s: _session_call(s, update))}")


@main.command("maintenance")
@click.option("--site", "site_slug", help="Only this site.")
def maintenance_command(site_slug: str | None) -> None:
    """Apply the retention settings now (serve also does it every COMMENTS_MAINTENANCE_INTERVAL seconds)."""

    async def apply(session: Any) -> list[maintenance.Report]:
        return await maintenance.apply_retention(session, site_slug=site_slug)

    for report in _run(lambda s: _session_call(s, apply)):
        click.echo(
            f"{report.site}: personal data cleared from {report.personal_data_cleared} comments, "
            f"{report.comments_purged} spam/trash comments purged"
        )


@main.group()
def thread() -> None:
    """Manage threads (articles' comment sections)."""


@thread.command("merge")
@click.option("--site", "site_slug", required=True, help="Site of both threads.")
@click.argument("source")
@click.argument("target")
def thread_merge(site_slug: str, source: str, target: str) -> None:
    """Move every comment of thread SOURCE into TARGET; SOURCE's key keeps resolving to TARGET."""

    async def merge(session: Any) -> int:
        found = await sites.get_site(session, slug=site_slug)
        merged = await threads.merge_threads(
            session,
            site_id=ident(found),
            source_key=threads.canonical_key(source, keep_params=found.thread_query_params),
            target_key=threads.canonical_key(target, keep_params=found.thread_query_params),
        )
        return merged.approved_count

    count = _run(lambda s: _session_call(s, merge))
    click.echo(f"merged {source} into {target} ({count} public comments)")


@main.group()
def user() -> None:
    """Manage moderator and owner accounts."""


@user.command("add")
@click.argument("email")
@click.option("--site", "site_slug", required=True, help="Site the account gets a role on.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True, help="owner or moderator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting.")
def user_add(email: str, site_slug: str, role: str, password_stdin: bool) -> None:
    """Create an account (or reset its password) and give it a role on a site."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def add(session: Any) -> str:
        target = await sites.get_site(session, slug=site_slug)
        account = await accounts.add_user(session, email=email, password=password, site=target, role=Role(role))
        return account.email

    address = _run(lambda s: _session_call(s, add))
    click.echo(f"{address} is {role} of {site_slug}")
