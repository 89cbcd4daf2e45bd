"""`comments export | import | privacy` as an operator runs them: real subprocesses on both backends."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.config import Settings
from comments.models import Comment
from tests.export.conftest import Populated
from tests.export.test_import import LAUGHS
from tests.factories import make_site
from tests.test_cli import cli_env, run_cli

pytestmark = pytest.mark.anyio


async def site_count(session: AsyncSession, slug_id: int | None) -> int:
    await session.rollback()  # a fresh snapshot: the CLI wrote from another process
    return int(
        (await session.exec(select(func.count()).select_from(Comment).where(col(Comment.site_id) == slug_id))).one()
    )


async def test_export_every_format_to_a_file(settings: Settings, populated: Populated, tmp_path: Path) -> None:
    env = cli_env(settings)
    for fmt, ext in (("jsonl", "jsonl"), ("csv", "csv"), ("wxr", "xml")):
        target = tmp_path / f"out.{ext}"
        done = run_cli("export", "--site", "blog", "--format", fmt, "--output", str(target), env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout == ""
        # Not a terminal: no progress bar, just the summary, on stderr.
        assert done.stderr.strip() == f"exported 7 comments to {target}"
        assert target.read_bytes()
        assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [c.id for c in populated.comments]


async def test_export_filters_to_stdout(settings: Settings, populated: Populated) -> None:
    done = run_cli(
        "export", "--site", "blog", "--status", "approved", "--status", "trash", "--thread", "post-42",
        "--since", "2026-11-05", "--until", "2026-11-06", "--no-personal-data", env=cli_env(settings),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    # created on Nov 5 and 6 (a bare --until date includes that day), in post-42, approved or trash
    assert [r["id"] for r in records] == [populated.comments[4].id, populated.comments[5].id]
    assert all("author_email" not in r and "ip" not in r and "user_agent" not in r for r in records)
    assert done.stderr.strip() == "exported 2 comments"


async def test_export_errors_are_one_line(settings: Settings, populated: Populated, tmp_path: Path) -> None:
    env = cli_env(settings)
    unknown = run_cli("export", "--site", "nope", "--output", str(tmp_path / "x.jsonl"), env=env)
    assert unknown.returncode == 1
    assert "Unknown site: 'nope'" in unknown.stderr
    assert os.listdir(tmp_path) == []  # no partial file left behind
    bad_date = run_cli("export", "--site", "blog", "--since", "yesterday", env=env)
    assert bad_date.returncode == 2
    assert "not an ISO date" in bad_date.stderr


async def test_import_round_trip_idempotent_and_all_or_nothing(
    settings: Settings, session: AsyncSession, populated: Populated, tmp_path: Path
) -> None:
    env = cli_env(settings)
    copy = await make_site(session, slug="copy")
    copy_id = copy.id
    exported = tmp_path / "blog.jsonl"
    assert run_cli("export", "--site", "blog", "-o", str(exported), env=env).returncode == 0

    broken = tmp_path / "broken.jsonl"
    lines = exported.read_text().splitlines()
    broken.write_text("\n".join([*lines[:5], '{"id": 99, "thread_key": "x"', *lines[5:]]) + "\n")
    failed = run_cli("import", "--site", "copy", "--format", "jsonl", str(broken), env=env)
    assert failed.returncode == 1
    assert "line 6:" in failed.stderr
    assert await site_count(session, copy_id) == 0

    hostile = tmp_path / "laughs.xml"
    hostile.write_bytes(LAUGHS)
    refused = run_cli("import", "--site", "copy", "--format", "disqus", str(hostile), env=env)
    assert refused.returncode == 1
    assert "Refused the Disqus file" in refused.stderr

    first = run_cli("import", "--site", "copy", "--format", "jsonl", str(exported), env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("imported 7 comments into 2 threads (2 new); 0 already there")
    again = run_cli("import", "--site", "copy", "--format", "jsonl", str(exported), env=env)
    assert again.stdout.startswith("imported 0 comments into 0 threads (0 new); 7 already there")
    assert await site_count(session, copy_id) == 7


async def test_privacy_export_and_erase(settings: Settings, populated: Populated, tmp_path: Path) -> None:
    env = cli_env(settings)
    exported = run_cli("privacy", "export", "Ada@Example.org", env=env)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert len(data["comments"]) == 3
    assert data["account"] is None

    erased = run_cli("privacy", "erase", "ada@example.org", "--site", "blog", env=env)
    assert erased.returncode == 0, erased.stderr
    assert erased.stdout.strip() == "anonymized 3 comments in 2 threads"
    assert json.loads(run_cli("privacy", "export", "ada@example.org", env=env).stdout)["comments"] == []

    deleted = run_cli("privacy", "erase", "eve@example.org", "--delete", env=env)
    assert deleted.stdout.strip() == "deleted 1 comments in 1 threads"
    invalid = run_cli("privacy", "erase", "", env=env)
    assert invalid.returncode == 1
    assert "valid email" in invalid.stderr
