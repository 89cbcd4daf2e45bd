"""The `comments` command as an operator runs it: real subprocesses, real databases."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from comments.config import Settings
from comments.models import Membership, Role, User
from tests.conftest import free_port

pytestmark = pytest.mark.anyio

COMMENTS = [sys.executable, "-m", "comments"]


def run_cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMENTS, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTS_")}
    env.update(
        COMMENTS_DATABASE_URL=settings.resolved_database_url,
        COMMENTS_DATA_DIR=str(settings.data_dir),
        COMMENTS_SECRET_KEY=settings.secret_key,
    )
    return env


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    """A brand-new SQLite data directory, as on a fresh clone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMENTS_")}
    env["COMMENTS_DATA_DIR"] = str(tmp_path / "var")
    return env


def wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.fixture
def served(fresh_env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        [*COMMENTS, "serve", "--port", str(port)],
        env=fresh_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            wait_for(f"{base}/healthz", proc)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def test_serve_on_a_fresh_clone_answers_health_and_demo(served: str) -> None:
    assert httpx.get(f"{served}/healthz").json() == {"status": "ok"}
    demo = httpx.get(f"{served}/demo")
    assert demo.status_code == 200
    assert f'src="{served}/widget.js"' in demo.text


def test_serve_creates_the_secret_key_once_with_private_mode(served: str, fresh_env: dict[str, str]) -> None:
    key = Path(fresh_env["COMMENTS_DATA_DIR"]) / "secret_key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(key.read_text()) >= 40


def test_help_documents_every_command(fresh_env: dict[str, str]) -> None:
    out = run_cli("--help", env=fresh_env).stdout
    for name in ("serve", "migrate", "site", "user"):
        assert name in out


def test_site_add_and_list(fresh_env: dict[str, str]) -> None:
    added = run_cli(
        "site",
        "add",
        "news",
        "--name",
        "The News",
        "--origin",
        "https://News.Example.org:443/",
        "--origin",
        "http://localhost:3000",
        env=fresh_env,
    )
    assert added.returncode == 0, added.stderr
    listed = run_cli("site", "list", env=fresh_env)
    assert "news\tThe News\thttp://localhost:3000 https://news.example.org" in listed.stdout


def test_site_add_refuses_a_bad_origin_and_a_taken_slug(fresh_env: dict[str, str]) -> None:
    bad = run_cli("site", "add", "news", "--name", "N", "--origin", "javascript:alert(1)", env=fresh_env)
    assert bad.returncode == 1
    assert "Not an http(s) origin" in bad.stderr
    assert run_cli("site", "add", "news", "--name", "N", "--origin", "https://a.example", env=fresh_env).returncode == 0
    taken = run_cli("site", "add", "news", "--name", "N", "--origin", "https://a.example", env=fresh_env)
    assert taken.returncode == 1
    assert "already exists" in taken.stderr


async def test_user_add_stores_a_verifiable_argon2id_hash(settings: Settings, session: AsyncSession) -> None:
    env = cli_env(settings)
    assert run_cli("site", "add", "blog", "--name", "Blog", "--origin", "https://b.example", env=env).returncode == 0
    result = run_cli(
        "user",
        "add",
        "Mod@Example.org",
        "--site",
        "blog",
        "--role",
        "moderator",
        "--password-stdin",
        env=env,
        stdin="correct horse battery\n",
    )
    assert result.returncode == 0, result.stderr
    user = (await session.exec(select(User).where(col(User.email) == "mod@example.org"))).one()
    assert user.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(user.password_hash, "correct horse battery")
    membership = (await session.exec(select(Membership).where(col(Membership.user_id) == user.id))).one()
    assert membership.role == Role.moderator


def test_user_add_refuses_unknown_site_and_short_password(fresh_env: dict[str, str]) -> None:
    unknown = run_cli(
        "user",
        "add",
        "a@example.org",
        "--site",
        "nope",
        "--role",
        "owner",
        "--password-stdin",
        env=fresh_env,
        stdin="long enough password\n",
    )
    assert unknown.returncode == 1
    assert "Unknown site" in unknown.stderr
    run_cli("site", "add", "blog", "--name", "Blog", "--origin", "https://b.example", env=fresh_env)
    short = run_cli(
        "user",
        "add",
        "a@example.org",
        "--site",
        "blog",
        "--role",
        "owner",
        "--password-stdin",
        env=fresh_env,
        stdin="short\n",
    )
    assert short.returncode == 1
    assert "at least 10 characters" in short.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"COMMENTS_DATABASE_URL": "postgresql+asyncpg://u:secretpw@127.0.0.1:1/db"}, "cannot use the database at"),
        ({"COMMENTS_DATA_DIR": "/proc/comments-cannot-write-here"}, "data directory is not writable"),
        ({"COMMENTS_FLOOD_SECONDS": "soon"}, "bad setting COMMENTS_FLOOD_SECONDS"),
    ],
)
def test_bad_configuration_fails_with_one_clear_line(
    fresh_env: dict[str, str], override: dict[str, str], expected: str
) -> None:
    result = run_cli("serve", "--port", str(free_port()), env={**fresh_env, **override})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert "secretpw" not in result.stderr
