"""Time the moderation-queue page query and the public thread query on a big database, with their plans.

    python -m bench.queue_timer --database-url URL [--pages 20] [--repeat 200]

The queue API (moderation branch) lists one site's comments of one status, newest
first, 50 at a time, with keyset pagination on (created_at, id). This runs exactly that
SQL through SQLAlchemy's async engine, first page and the following pages, and prints
p50/p99 in ms plus the query plan (EXPLAIN QUERY PLAN / EXPLAIN). It does the same for
the public read's roots query of /bench/article.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from comments import db
from comments.config import Settings
from comments.models import Comment
from comments.widget import service

PAGE = 50


def queue_query(site_id: int, status: str, after: tuple[Any, int] | None) -> Any:
    """The queue page: site + status, newest first, keyset after the previous page's last row."""
    query = (
        select(col(Comment.id), col(Comment.created_at), col(Comment.author_name), col(Comment.content_html))
        .where(col(Comment.site_id) == site_id, col(Comment.status) == status)
        .order_by(col(Comment.created_at).desc(), col(Comment.id).desc())
        .limit(PAGE)
    )
    if after is not None:
        query = query.where(tuple_(col(Comment.created_at), col(Comment.id)) < tuple_(*after))
    return query


async def explain(conn: Any, query: Any) -> str:
    """The backend's plan for a query, as text."""
    dialect = conn.dialect.name
    compiled = query.compile(
        dialect=postgresql.dialect() if dialect == "postgresql" else sqlite.dialect(),
        compile_kwargs={"literal_binds": True},
    )
    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)" if dialect == "postgresql" else "EXPLAIN QUERY PLAN"
    rows = (await conn.execute(text(f"{prefix} {compiled}"))).all()
    return "\n".join(" | ".join(str(v) for v in row) for row in rows)


def stats(samples: list[float]) -> str:
    """p50/p99/max of samples in seconds, as milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"n={len(ordered)} p50 {statistics.median(ordered) * 1e3:.2f} ms  p99 {p99 * 1e3:.2f} ms"
        f"  max {ordered[-1] * 1e3:.2f} ms"
    )


async def run(url: str, pages: int, repeat: int) -> None:
    """Print row counts, plans and timings."""
    engine = db.create_engine(Settings(database_url=url, secret_key="bench"))
    try:
        async with engine.connect() as conn:
            site_id = (await conn.execute(text("SELECT id FROM site WHERE slug = 'bench'"))).scalar_one()
            thread_id = (
                await conn.execute(
                    text("SELECT id FROM thread WHERE key = '/bench/article' AND site_id = :s"), {"s": site_id}
                )
            ).scalar_one()
            total = (await conn.execute(text("SELECT count(*) FROM comment"))).scalar_one()
            pending = (await conn.execute(text("SELECT count(*) FROM comment WHERE status = 'pending'"))).scalar_one()
            print(f"backend {engine.dialect.name}: {total} comments, {pending} pending")
            first = queue_query(site_id, "pending", None)
            print("-- queue page plan (first page):\n" + await explain(conn, first))
            last = (await conn.execute(first)).all()[-1]
            print(
                "-- queue page plan (next page, keyset):\n"
                + await explain(conn, queue_query(site_id, "pending", (last[1], last[0])))
            )
            print("-- public read roots plan:\n" + await explain(conn, service.roots_statement(thread_id, 201, None)))
        for status in ("pending", "approved", "spam"):
            samples: list[float] = []
            for _ in range(max(1, repeat // pages)):
                after = None
                for _ in range(pages):
                    started = time.perf_counter()
                    async with engine.connect() as conn:
                        rows = (await conn.execute(queue_query(site_id, status, after))).all()
                    samples.append(time.perf_counter() - started)
                    if len(rows) < PAGE:
                        break
                    after = (rows[-1][1], rows[-1][0])
            print(f"queue page ({status}, {PAGE} rows, pages 1..{pages}): {stats(samples)}")
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            async with engine.connect() as conn:
                (await conn.execute(service.roots_statement(thread_id, 201, None))).all()
            samples.append(time.perf_counter() - started)
        print(f"public read roots query: {stats(samples)}")
    finally:
        await engine.dispose()


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.pages, args.repeat))


if __name__ == "__main__":
    main()
