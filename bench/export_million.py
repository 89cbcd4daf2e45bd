"""Build a million-comment SQLite database, then time `comments export` in every format.

usage: .venv/bin/python bench/export_million.py [--comments 1000000] [--threads 20000] [--workdir DIR] [--keep]

The schema comes from `comments migrate`; rows go in through the sqlite3 module's
executemany (minutes faster than the ORM). Each export runs as its own `comments
export` subprocess, timed wall-clock from spawn to exit (interpreter start-up and the
migration check included), and its peak RSS is read from os.wait4's rusage for that
child alone (RUSAGE_CHILDREN would report the largest child so far, not this one).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

STATUSES = ["approved"] * 80 + ["pending"] * 10 + ["spam"] * 7 + ["trash"] * 3
# Plain words plus what the formats must survive: a formula, a CDATA terminator, markup, non-ASCII.
WORDS = [
    *[
        "the",
        "a",
        "comment",
        "article",
        "great",
        "point",
        "agree",
        "disagree",
        "thanks",
        "reading",
        "however",
        "although",
        "because",
        "source",
        "link",
    ],
    *[
        "interesting",
        "question",
        "answer",
        "example",
        "data",
        "really",
        "think",
        "would",
        "could",
        "should",
        "more",
        "less",
        "about",
        "this",
        "that",
    ],
    *["=SUM(A1)", "]]>", "<b>bold</b>", "&", "<", ">", '"', "'", "café", "naïve", "😀"],
]
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
]
FORMATS = [("jsonl", "jsonl"), ("csv", "csv"), ("wxr", "xml")]


def cli(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "comments", *args], env=env, check=True, capture_output=True)


def stamp(moment: datetime) -> str:
    """How SQLAlchemy's DateTime stores a value on SQLite (naive UTC)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def build(db_path: Path, *, comments: int, threads: int, seed: int = 6) -> None:
    rng = random.Random(seed)
    connection = sqlite3.connect(db_path)
    connection.execute("PRAGMA synchronous=OFF")
    site_id = connection.execute("SELECT id FROM site WHERE slug = 'bench'").fetchone()[0]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    connection.executemany(
        "INSERT INTO thread (id, site_id, key, title, url, is_open, approved_count, version, created_at)"
        " VALUES (?, ?, ?, ?, ?, 1, 0, 1, ?)",
        (
            (t, site_id, f"/articles/{t}", f"Article {t}", f"https://bench.example.org/articles/{t}", stamp(start))
            for t in range(1, threads + 1)
        ),
    )
    latest: dict[int, list[int]] = {}  # thread -> a few recent comment ids to reply to
    roots: list[int] = [0] * (comments + 1)
    depths: list[int] = [0] * (comments + 1)
    step = timedelta(seconds=(6 * 365 * 86400) / comments)
    batch: list[tuple[object, ...]] = []
    for comment_id in range(1, comments + 1):
        thread = rng.randint(1, threads)
        recent = latest.setdefault(thread, [])
        parent = rng.choice(recent) if recent and rng.random() < 0.3 else None
        roots[comment_id] = roots[parent] if parent else comment_id
        depths[comment_id] = depths[parent] + 1 if parent else 0
        recent.append(comment_id)
        del recent[:-5]
        text = " ".join(rng.choices(WORDS, k=rng.randint(10, 60)))
        created = stamp(start + step * comment_id)
        status = rng.choice(STATUSES)
        batch.append(
            (
                comment_id, site_id, thread, parent, roots[comment_id], depths[comment_id], status,
                f"Reader {comment_id % 50_000}", f"reader{comment_id % 50_000}@example.org",
                f"https://reader{comment_id % 997}.example.net" if comment_id % 4 == 0 else None,
                text, f"<p>{text.replace('&', '&amp;').replace('<', '&lt;')}</p>",
                f"198.51.{comment_id % 256}.0", AGENTS[comment_id % 3], created, created,
                created if status != "pending" else None,
            )
        )  # fmt: skip
        if len(batch) == 50_000:
            _insert(connection, batch)
            batch.clear()
    _insert(connection, batch)
    connection.commit()
    connection.close()


def _insert(connection: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    connection.executemany(
        "INSERT INTO comment (id, site_id, thread_id, parent_id, root_id, depth, status, author_name, author_email,"
        " author_url, content_raw, content_html, ip, user_agent, created_at, updated_at, moderated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def time_export(env: dict[str, str], fmt: str, target: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, every thread) and peak RSS (MB) of one `comments export` process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "comments", "export", "--site", "bench", "--format", fmt, "--output", str(target)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"export {fmt} failed: {stderr}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comments", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, help="Where the database and exports go (default: a temp dir).")
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    parser.add_argument("--repeat", type=int, default=1, help="Exports per format; the fastest run is reported.")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="comments-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "comments.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTS_")}
    env |= {
        "COMMENTS_DATA_DIR": str(workdir),
        "COMMENTS_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "COMMENTS_SECRET_KEY": "bench-secret-key",
    }
    try:
        if args.build_only:
            build(db_path, comments=args.comments, threads=args.threads)
            return
        if not db_path.exists():
            started = time.perf_counter()
            cli(env, "migrate")
            cli(env, "site", "add", "bench", "--name", "Bench", "--origin", "https://bench.example.org")
            # In a child process: the export children are forked from this one, and a child's peak
            # RSS counts the parent's pages it held before exec, so this process must stay small.
            subprocess.run(
                [sys.executable, __file__, "--build-only", "--workdir", str(workdir), "--comments", str(args.comments),
                 "--threads", str(args.threads)],
                check=True,
            )  # fmt: skip
            print(f"built {args.comments:,} comments in {time.perf_counter() - started:.1f}s ({db_path})")
        print(
            f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, "
            f"database {db_path.stat().st_size / 2**20:.0f} MB"
        )
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        print("| format | wall s | comments/s (wall) | CPU s | comments per CPU-second | peak RSS (MB) | output (MB) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for fmt, ext in FORMATS:
            target = workdir / f"export.{ext}"
            runs = [time_export(env, fmt, target) for _ in range(args.repeat)]
            elapsed, cpu, _ = min(runs)
            peak = max(r[2] for r in runs)
            size = target.stat().st_size / 2**20
            print(
                f"| {fmt} | {elapsed:.1f} | {args.comments / elapsed:,.0f} | {cpu:.1f} | {args.comments / cpu:,.0f} "
                f"| {peak:.0f} | {size:,.0f} |"
            )
            target.unlink()
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
