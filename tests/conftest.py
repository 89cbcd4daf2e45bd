"""Shared fixtures: one migrated database per backend, a clean slate per test, an HTTP client per app."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from alembic import command
from comments import db, migrations
from comments.app import create_app
from comments.config import Settings

POSTGRES_URL = os.environ.get("COMMENTS_TEST_POSTGRES_URL", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
]


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_url_or_skip() -> str:
    """The test server's URL; under CI a missing server is a failure, not a skip."""
    if POSTGRES_URL:
        return POSTGRES_URL
    if IN_CI:
        pytest.fail("CI=true but COMMENTS_TEST_POSTGRES_URL is not set: the PostgreSQL half must run in CI")
    pytest.skip("PostgreSQL tests need COMMENTS_TEST_POSTGRES_URL (e.g. postgresql+asyncpg://u:p@127.0.0.1/db)")


def make_settings(backend: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for one backend; SQLite lives in `data_dir`, PostgreSQL at COMMENTS_TEST_POSTGRES_URL."""
    url = postgres_url_or_skip() if backend == "postgres" else ""
    values: dict[str, object] = {
        "database_url": url,
        "data_dir": data_dir,
        "secret_key": "test-secret-key-not-for-production",
        "base_url": "http://testserver.local",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def reset_postgres_schema(url: str) -> None:
    """Start PostgreSQL runs from an empty schema, whatever an earlier run left behind."""
    engine = db.create_engine(Settings(database_url=url))
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
async def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a freshly migrated database (alembic upgrade head, never create_all)."""
    backend = request.param
    built = make_settings(backend, tmp_path_factory.mktemp(f"data-{backend}"))
    if backend == "postgres":
        await reset_postgres_schema(built.resolved_database_url)
    await migrations.upgrade_to_head(built)
    return built


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    created = db.create_engine(settings)
    yield created
    await created.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session for factories and assertions; every table is emptied afterwards."""
    async with db.session_maker(engine)() as opened:
        yield opened
    async with engine.begin() as connection:
        for table in reversed(SQLModel.metadata.sorted_tables):
            if table.name != "alembic_version":
                await connection.execute(delete(table))


@pytest.fixture
def app(settings: Settings, session: AsyncSession) -> Litestar:
    """The app on the test database (depends on `session` so tables are cleaned after each test)."""
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
def backend(settings: Settings) -> str:
    return make_url(settings.resolved_database_url).get_backend_name()


def alembic_command(settings: Settings, name: str, *args: str) -> None:
    getattr(command, name)(migrations.alembic_config(settings), *args)


@pytest.fixture
def artifacts_dir() -> Path:
    """Where browser tests leave screenshots (git-ignored)."""
    path = Path(__file__).parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def make_client(settings: Settings, session: AsyncSession) -> Any:
    """Open a client on an app with some settings changed (flood control off, limits lowered...)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def opened(asgi: Any = None, **overrides: Any) -> AsyncIterator[AsyncTestClient[Any]]:
        app = create_app(settings.model_copy(update=overrides))
        async with AsyncTestClient(app=asgi(app) if asgi else app, base_url="http://testserver.local") as test_client:
            yield test_client

    return opened


CHROMIUM = Path(os.environ.get("COMMENTS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _unavailable(reason: str) -> None:
    """No browser: a failure under CI=true (the browser half must run there), a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}: the browser tests must run in CI (.ci/run installs chromium)")
    pytest.skip(f"browser tests need {reason}")


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium (Playwright's own browser download cannot work offline)."""
    if not CHROMIUM.is_file():
        _unavailable(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Any]:
    """One headless Chromium for the whole session (each test opens its own contexts)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("the playwright package (pip install -r requirements-dev.lock)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
