"""The benchmark's seeding (bench/seed.py) goes through the real write path and stays in step with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bench.seed import SITE, seed
from comments.config import Settings
from comments.models import Comment, CommentStatus, Thread

pytestmark = pytest.mark.anyio

URI = "/bench/article"


def _seed_file(tmp_path: Path) -> Path:
    comment = {"website": None, "remote_addr": "10.0.0.1"}
    threads = [
        {
            "uri": URI,
            "title": "Benchmark article",
            "comments": [
                {
                    **comment,
                    "author": "Ada",
                    "email": "ada@example.org",
                    "text": "First, with **markup**.",
                    "parent": None,
                },
                {**comment, "author": "Bob", "email": None, "text": "A reply to Ada.", "parent": 0},
                {**comment, "author": "Cy", "email": "cy@example.org", "text": "Second root.", "parent": None},
            ],
        }
    ]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps({"threads": threads}))
    return path


async def test_seeded_comments_are_approved_threaded_and_public(
    settings: Settings, session: AsyncSession, client: Any, tmp_path: Path
) -> None:
    assert await seed(settings.resolved_database_url, _seed_file(tmp_path), ["http://127.0.0.1"]) == 3
    stored = (await session.exec(select(Comment).order_by(col(Comment.id)))).all()
    assert [c.status for c in stored] == [CommentStatus.approved] * 3
    assert stored[1].parent_id == stored[0].id
    assert stored[1].depth == 1
    assert stored[1].author_email == "anon-1@example.com"  # the seed had none; ours requires one
    thread = (await session.exec(select(Thread).where(col(Thread.key) == URI))).one()
    assert (thread.title, thread.approved_count) == ("Benchmark article", 3)
    page = (await client.get(f"/api/comments?site={SITE}&thread={URI}")).json()
    assert [c["author"]["name"] for c in page["comments"]] == ["Ada", "Bob", "Cy"]
    assert page["thread"]["count"] == 3
