"""The `comments` command: serve, migrate, manage sites and users, export, import, personal-data requests."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import click
import msgspec
import uvicorn
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from uvicorn.supervisors import Multiprocess

from comments import db, listening, maintenance, migrations, sites, threads
from comments.config import Settings
from comments.errors import CommentsError
from comments.export import privacy
from comments.export import service as export_service
from comments.export.schemas import ExportFormat, ExportOptions, ImportFormat, ImportReport, parse_moment
from comments.models import CommentStatus, Role, ident
from comments.moderation import accounts

if TYPE_CHECKING:
    import socket
    from collections.abc import Awaitable, Callable, Coroutine
    from datetime import datetime

T = TypeVar("T")
M_ARENA_MAX = -8  # mallopt() parameter number in glibc's malloc.h
log = logging.getLogger("comments")

# What uvicorn offers against slow and greedy clients, and what it lacks added (SECURITY.md explains each).
SERVER_LIMITS: dict[str, Any] = {
    # httptools, plus a 10 s deadline and a 64 KiB cap on each request head (slowloris): comments/server.py.
    "http": "comments.server:GuardedHttpToolsProtocol",
    # Idle keep-alive connections are closed after 5 s, so idle sockets cannot pile up.
    "timeout_keep_alive": 5,
    # Per worker: past this many open connections or running requests, answer 503 at once
    # instead of queueing without bound. Stays below the usual 1024 open-files limit.
    "limit_concurrency": 512,
    # h11 (when used instead of httptools) buffers at most 16 KiB of an incomplete request head.
    "h11_max_incomplete_event_size": 16 * 1024,
    # On SIGTERM, in-flight requests get 10 s to finish; then the worker exits.
    "timeout_graceful_shutdown": 10,
}


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
    _limit_malloc_arenas()
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
    config = uvicorn.Config(
        "comments.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        server_header=False,
        proxy_headers=True,
        log_level="info",
        **SERVER_LIMITS,
    )
    if workers == 1:
        uvicorn.Server(config).run()
        return
    try:
        # Each worker listens on a socket of its own: comments/listening.py says why.
        sockets: list[socket.socket] = [listening.reuse_port_socket(host, port)]
    except listening.AddressInUse as exc:
        raise click.ClickException(f"{exc.strerror} (is another server running there?)") from exc
    Multiprocess(config, sockets=sockets).run()


def _limit_malloc_arenas() -> None:
    """Two glibc malloc arenas per process unless MALLOC_ARENA_MAX says otherwise.

    glibc gives each thread that allocates its own arena (up to 8 per core); a worker's
    database hand-off threads then keep about 3 MB more resident (measured: 117-119 MB
    per worker instead of 120-122 MB after the benchmark runs, same throughput). Workers
    are new processes and read the variable at start; this process is told directly.
    """
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    with contextlib.suppress(OSError, AttributeError, ValueError):
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, int(os.environ["MALLOC_ARENA_MAX"]))


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


def _moment(value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """`--since`/`--until` as UTC; a bare `--until` date includes that whole day."""
    if value is None:
        return None
    try:
        return parse_moment(value, end_of_day=end_of_day)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@main.command("export")
@click.option("--site", "site_slug", required=True, help="Site to export.")
@click.option("--format", "fmt", type=click.Choice([f.value for f in ExportFormat]), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output). Written to FILE.partial, renamed when complete.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in CommentStatus]),
    help="Only comments with this status; repeatable (default: all).",
)
@click.option("--thread", "threads", multiple=True, help="Only this thread (its key); repeatable.")
@click.option("--since", help="Only comments created at or after this UTC date/time.")
@click.option("--until", help="Only comments created before this UTC time; a bare date includes that day.")
@click.option(
    "--personal-data/--no-personal-data", default=True, show_default=True, help="Include email, IP and user agent."
)
def export_command(
    site_slug: str,
    fmt: str,
    output: Path | None,
    statuses: tuple[str, ...],
    threads: tuple[str, ...],
    since: str | None,
    until: str | None,
    personal_data: bool,
) -> None:
    """Export a site's comments as JSON Lines, CSV or WordPress WXR, streamed."""
    export_format = ExportFormat(fmt)
    options = ExportOptions(
        statuses=tuple(CommentStatus(s) for s in statuses),
        thread_keys=threads,
        since=_moment(since),
        until=_moment(until, end_of_day=True),
        personal_data=personal_data,
    )
    partial = output.with_name(output.name + ".partial") if output else None
    # Progress goes to stderr, and only for a person watching: never into a pipe or a log.
    show_progress = sys.stderr.isatty()

    async def work(session: Any) -> int:
        target = await sites.get_site(session, slug=site_slug)
        writer = export_service.make_writer(export_format, site=target, personal_data=personal_data)
        total = await export_service.count_comments(session, site=target, options=options) if show_progress else 0
        written = 0
        bar = click.progressbar(length=total, label="exporting", file=sys.stderr) if show_progress else None
        with (
            open(partial, "wb") if partial else _StdoutSink() as sink,  # noqa: ASYNC230 (a blocking sink is fine in the CLI)
            bar or contextlib.nullcontext(),
        ):

            def progress(count: int) -> None:
                nonlocal written
                written += count
                if bar is not None:
                    bar.update(count)

            chunks = export_service.export_comments(
                session, site=target, writer=writer, options=options, fmt=export_format, on_progress=progress
            )
            async for chunk in chunks:
                sink.write(chunk)
        return written

    try:
        count = _run(lambda s: _session_call(s, work))
    except BaseException:
        if partial:
            partial.unlink(missing_ok=True)
        raise
    if output and partial:
        partial.replace(output)
    click.echo(f"exported {count} comments" + (f" to {output}" if output else ""), err=True)


class _StdoutSink:
    """Standard output's binary stream, not closed on exit."""

    def __enter__(self) -> BinaryIO:
        return sys.stdout.buffer

    def __exit__(self, *_exc: object) -> None:
        sys.stdout.buffer.flush()


@main.command("import")
@click.option("--site", "site_slug", required=True, help="Site to import into.")
@click.option("--format", "fmt", type=click.Choice([f.value for f in ImportFormat]), required=True)
@click.argument("file", type=click.File("rb"))
def import_command(site_slug: str, fmt: str, file: BinaryIO) -> None:
    """Import comments from a WordPress WXR, Disqus XML or our JSON Lines file, all or nothing.

    Threads are created from the file; re-running the same import adds nothing new.
    """

    async def work(session: Any) -> ImportReport:
        await db.begin_write(session)  # before the first query: SQLite takes the write lock up front
        target = await sites.get_site(session, slug=site_slug)
        return await export_service.import_comments(session, site=target, fmt=ImportFormat(fmt), source=file)

    report = _run(lambda s: _session_call(s, work))
    click.echo(
        f"imported {report.created} comments into {len(report.thread_ids)} threads "
        f"({report.threads_created} new); {report.skipped_existing} already there, "
        f"{report.skipped_other} pingbacks/trackbacks skipped, {report.orphans} replies without parent kept top-level"
    )


@main.group("privacy")
def privacy_group() -> None:
    """Personal-data requests: export or erase what is stored about an email address."""


@privacy_group.command("export")
@click.argument("email")
@click.option("--site", "site_slug", help="Only this site (default: every site).")
@click.option("--output", "-o", type=click.File("wb"), default="-", help="File to write (default: standard output).")
def privacy_export(email: str, site_slug: str | None, output: BinaryIO) -> None:
    """Everything stored about EMAIL (comments, account, audit log), as JSON."""

    async def work(session: Any) -> dict[str, Any]:
        target = await sites.get_site(session, slug=site_slug) if site_slug else None
        return await privacy.export_personal_data(session, email=email, site=target)

    data = _run(lambda s: _session_call(s, work))
    output.write(msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n")


@privacy_group.command("erase")
@click.argument("email")
@click.option("--site", "site_slug", help="Only this site (default: every site).")
@click.option("--delete", "delete_comments", is_flag=True, help="Delete the comments instead of anonymizing them.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def privacy_erase(email: str, site_slug: str | None, delete_comments: bool, yes: bool) -> None:
    """Anonymize (or --delete) every comment written with EMAIL; recorded in the audit log."""
    if not yes and sys.stdin.isatty():
        verb = "delete" if delete_comments else "anonymize"
        click.confirm(f"{verb} every comment written with {email}?", abort=True)

    async def work(session: Any) -> Any:
        await db.begin_write(session)
        target = await sites.get_site(session, slug=site_slug) if site_slug else None
        return await privacy.erase_personal_data(session, email=email, site=target, delete_comments=delete_comments)

    report = _run(lambda s: _session_call(s, work))
    done = f"deleted {report.deleted}" if delete_comments else f"anonymized {report.anonymized}"
    click.echo(f"{done} comments in {report.threads} threads")
