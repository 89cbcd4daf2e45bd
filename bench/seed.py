"""Build a benchmark database from the peer-bench seed (the same content Isso is seeded with).

    python -m bench.seed --database-url URL [--seed PATH] [--origin URL] [--filler N]

The seed's comments go through our own write path, `submission.service.post_reply`
(validation, sanitizing, duplicate check, insert), and are then approved the way a
moderator does it (status + `refresh_thread`, one transaction), so root_id, depth,
approved_count and version hold exactly as in production. Seed comments without an
email get a synthetic `anon-N@example.com` (ours requires one; Isso does not).

`--filler N` adds N more comments in 2,000 other threads of the same site with one
bulk INSERT ... SELECT (roots only, so root_id = id and depth = 0 hold; 80 % approved,
15 % pending, 5 % spam, spread over a year), then recounts those threads in one
UPDATE (for roots only, the visible count is the approved count). That is how the
1,000,000-comment database is made in about a minute instead of hours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from sqlalchemy import text
from sqlmodel import col, select

from comments import db, migrations, sites
from comments.config import Settings
from comments.models import Comment, CommentStatus, Site
from comments.submission import service as submission
from comments.submission.schemas import ReplyCreate
from comments.threads import refresh_thread

DEFAULT_SEED = Path(__file__).resolve().parents[2] / "shared" / "peer-bench" / "seed_comments.json"
SITE = "bench"
FILLER_THREADS = 2000


def settings_for(url: str) -> Settings:
    """Settings for seeding: flood and hourly limits off (one process posts everything)."""
    return Settings(
        database_url=url, secret_key="bench-seed", flood_seconds=0, rate_limit_per_hour=0, base_url="http://127.0.0.1"
    )


async def seed(url: str, seed_path: Path, origins: list[str]) -> int:
    """Create the `bench` site and post + approve every seed comment; returns how many."""
    settings = settings_for(url)
    await migrations.upgrade_to_head(settings)
    engine = db.create_engine(settings)
    data = json.loads(seed_path.read_text())
    total = 0
    try:
        async with db.session_scope(engine) as session:
            if (await session.exec(select(Site.id).where(col(Site.slug) == SITE))).first() is not None:
                sys.exit(f"site {SITE!r} already exists in {url}: seed an empty database")
            await sites.create_site(session, slug=SITE, name="Benchmark", origins=origins)
        for thread in data["threads"]:
            ids: list[int] = []
            for i, c in enumerate(thread["comments"]):
                async with db.session_maker(engine)() as session:
                    reply = ReplyCreate(
                        site=SITE,
                        thread=thread["uri"],
                        thread_title=thread["title"] if i == 0 else None,
                        parent_id=ids[c["parent"]] if c["parent"] is not None else None,
                        content=c["text"],
                        name=c["author"],
                        email=c["email"] or f"anon-{total}@example.com",
                        url=c["website"],
                    )
                    client = submission.ClientInfo(
                        ip=c["remote_addr"], user_agent="bench-seed", origin=None, token=None, idempotency_key=None
                    )
                    stored = await submission.post_reply(session, settings=settings, data=reply, client=client)
                    if isinstance(stored, submission.Refusal):
                        sys.exit(f"seed comment {total} was refused: {stored.error}")
                    # What a moderator's approval does: status and the thread's count/version, one transaction.
                    await db.begin_write(session)
                    comment = await session.get_one(Comment, stored.comment.id)
                    comment.status = CommentStatus.approved
                    session.add(comment)
                    await session.flush()
                    await refresh_thread(session, comment.thread_id)
                    await session.commit()
                    assert comment.id is not None
                    ids.append(comment.id)
                    total += 1
    finally:
        await engine.dispose()
    return total


async def add_filler(url: str, count: int) -> None:
    """Bulk-insert `count` root comments in FILLER_THREADS other threads of the bench site."""
    settings = settings_for(url)
    engine = db.create_engine(settings)
    postgres = engine.dialect.name == "postgresql"
    try:
        async with engine.begin() as conn:
            site_id = (await conn.execute(text("SELECT id FROM site WHERE slug = :s"), {"s": SITE})).scalar_one()
            base = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM comment"))).scalar_one()
            first_thread = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM thread"))).scalar_one() + 1
            now = "now()" if postgres else "CURRENT_TIMESTAMP || '.000000'"
            if postgres:
                series = "SELECT generate_series(1, :n) AS x"
                thread_series = "SELECT generate_series(1, :threads) AS t"
                created = "now() - (x % 31536000) * interval '1 second'"
                thread_key = "'/filler/' || lpad(t::text, 5, '0')"
                content = "'Filler comment ' || x || ' about sqlite postgres latency cache index query server.'"
            else:
                series = "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < :n) SELECT x FROM s"
                thread_series = (
                    "WITH RECURSIVE s(t) AS (SELECT 1 UNION ALL SELECT t + 1 FROM s WHERE t < :threads) SELECT t FROM s"
                )
                # The format SQLAlchemy writes for SQLite DateTime columns (sorts as text).
                created = "datetime('now', '-' || (x % 31536000) || ' seconds') || '.000000'"
                thread_key = "'/filler/' || printf('%05d', t)"
                content = "'Filler comment ' || x || ' about sqlite postgres latency cache index query server.'"
            await conn.execute(
                text(
                    "INSERT INTO thread (id, site_id, key, title, url, is_open, approved_count, version, created_at) "
                    f"SELECT :first + t - 1, :site, {thread_key}, 'Filler ' || t, NULL, true, 0, 1, "
                    f"{now} "
                    f"FROM ({thread_series}) AS g"
                ),
                {"first": first_thread, "site": site_id, "threads": FILLER_THREADS},
            )
            status = "CASE WHEN x % 20 = 0 THEN 'spam' WHEN x % 20 < 4 THEN 'pending' ELSE 'approved' END"
            await conn.execute(
                text(
                    "INSERT INTO comment (id, site_id, thread_id, parent_id, root_id, depth, status, reason, "
                    "author_name, author_email, author_url, content_raw, content_html, ip, user_agent, "
                    "created_at, updated_at) "
                    f"SELECT :base + x, :site, :first + (x % :threads), NULL, :base + x, 0, {status}, 'filler', "
                    "'Filler ' || (x % 1000), 'filler' || (x % 1000) || '@example.com', NULL, "
                    f"{content}, '<p>' || {content} || '</p>', '10.0.' || (x % 250) || '.0', 'bench', "
                    f"{created}, {created} FROM ({series}) AS g"
                ),
                {"base": base, "site": site_id, "first": first_thread, "threads": FILLER_THREADS, "n": count},
            )
            await conn.execute(
                text(
                    "UPDATE thread SET version = version + 1, approved_count = (SELECT count(*) FROM comment "
                    "WHERE comment.thread_id = thread.id AND comment.status = 'approved') WHERE id >= :first"
                ),
                {"first": first_thread},
            )
            if postgres:
                for table in ("comment", "thread"):
                    await conn.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                    )
        # Fresh statistics, as autovacuum / a routine ANALYZE would give a long-lived database.
        async with engine.connect() as conn:
            if postgres:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE comment"))
                await conn.execute(text("VACUUM ANALYZE thread"))
            else:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Seed a fresh database from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed", type=Path, default=DEFAULT_SEED)
    parser.add_argument("--origin", action="append", default=[], help="origins of the bench site (repeatable)")
    parser.add_argument("--filler", type=int, default=0, help="extra comments in other threads (e.g. 1000000)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    total = asyncio.run(seed(args.database_url, args.seed, args.origin or ["http://127.0.0.1"]))
    print(f"seeded {total} comments through post_reply in {time.monotonic() - started:.1f}s")
    if args.filler:
        started = time.monotonic()
        asyncio.run(add_filler(args.database_url, args.filler))
        print(f"added {args.filler} filler comments in {FILLER_THREADS} threads in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
