"""Many writers at once against real servers: nothing is lost, nothing is stored twice, no 5xx.

200 submissions come from 20 threads spread over 4 client processes, against `comments serve`
with 2 workers on SQLite (WAL), and against two separate app instances sharing one PostgreSQL
database. 20 of them are also retried concurrently with the same Idempotency-Key through the
other instance, as a client whose first attempt timed out would.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.config import Settings
from comments.models import Comment, Thread
from tests.factories import make_site
from tests.servers import Sent, Server, post_reply, server_env, start_server

pytestmark = pytest.mark.anyio

PROCESSES = 4
THREADS_PER_PROCESS = 5
PER_THREAD = 10  # 4 x 5 x 10 = 200 submissions
RETRY_EVERY = 10  # every 10th submission is also retried with its Idempotency-Key: 20 retries
ARTICLES = [f"/2026/11/load-{n}" for n in range(5)]


def client_process(bases: list[str], process: int) -> list[Sent]:
    """One client process: THREADS_PER_PROCESS threads posting PER_THREAD replies each, round-robin over servers."""

    def thread_work(thread: int) -> list[Sent]:
        sent: list[Sent] = []
        with httpx.Client(timeout=60) as http:
            for n in range(PER_THREAD):
                index = (process * THREADS_PER_PROCESS + thread) * PER_THREAD + n
                tag = f"p{process}t{thread}n{n}"
                key = f"key-{tag}" if index % RETRY_EVERY == 0 else None
                base = bases[index % len(bases)]
                article = ARTICLES[index % len(ARTICLES)]
                if key is None:
                    sent.append(post_reply(http, base, "blog", article, tag))
                    continue
                # The retry races the first attempt, through the other instance when there is one.
                other = bases[(index + 1) % len(bases)]
                with ThreadPoolExecutor(2) as pair:
                    first = pair.submit(post_reply, http, base, "blog", article, tag, key)
                    retry = pair.submit(post_reply, http, other, "blog", article, tag, key)
                    sent += [first.result(), retry.result()]
        return sent

    with ThreadPoolExecutor(THREADS_PER_PROCESS) as pool:
        return [s for batch in pool.map(thread_work, range(THREADS_PER_PROCESS)) for s in batch]


@pytest.fixture
def servers(settings: Settings, session: AsyncSession, backend: str, tmp_path: Path) -> Iterator[list[Server]]:
    """SQLite: one server, 2 workers. PostgreSQL: two single-worker instances sharing the database."""
    env = server_env(settings)
    started: list[Server] = []
    try:
        if backend == "sqlite":
            started.append(start_server(env, tmp_path, workers=2, name="sqlite"))
        else:
            started += [start_server(env, tmp_path, name=f"pg-{n}") for n in range(2)]
        yield started
    finally:
        for server in started:
            server.stop()


async def test_concurrent_submissions_are_each_stored_exactly_once(
    session: AsyncSession, servers: list[Server]
) -> None:
    await make_site(session)
    bases = [server.base for server in servers]
    with ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = [s for batch in pool.map(client_process, [bases] * PROCESSES, range(PROCESSES)) for s in batch]

    statuses = Counter(s.status for s in results)
    assert statuses == {201: 220}, f"{statuses}\n" + "\n".join(server.output()[-3000:] for server in servers)

    # A retried submission answers with the first one's comment, whichever instance got there first.
    by_tag: dict[str, set[int | None]] = {}
    for s in results:
        by_tag.setdefault(s.tag, set()).add(s.comment_id)
    assert len(by_tag) == 200
    assert all(len(ids) == 1 for ids in by_tag.values()), {t: i for t, i in by_tag.items() if len(i) > 1}

    session.expire_all()
    rows = (await session.exec(select(Comment).order_by(col(Comment.id)))).all()
    assert len(rows) == 200
    stored = {row.id: row for row in rows}
    for tag, (comment_id,) in by_tag.items():
        row = stored[comment_id]
        assert row.content_raw == f"Load test comment {tag}."
        assert row.author_email == f"{tag}@example.org"
    assert Counter(row.content_raw for row in rows).most_common(1)[0][1] == 1

    # Counts add up: each article got its share, and each article is one thread however many raced to create it.
    threads = {t.id: t.key for t in (await session.exec(select(Thread))).all()}
    assert sorted(threads.values()) == ARTICLES
    per_article = Counter(threads[row.thread_id] for row in rows)
    assert per_article == Counter({s.tag: s.thread for s in results}.values())
    assert per_article == Counter(dict.fromkeys(ARTICLES, 40))
