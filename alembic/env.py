"""Alembic environment: async on both backends, URL from the app's own settings."""

import asyncio

from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import comments.models  # noqa: F401  (registers every table on the metadata)
from alembic import context
from comments import db
from comments.config import Settings
from comments.models import UTCDateTime

config = context.config
target_metadata = SQLModel.metadata


def _settings() -> Settings:
    # Callers (the CLI, the tests) may hand over their own settings; otherwise read the environment.
    given = config.attributes.get("settings")
    return given if isinstance(given, Settings) else Settings()


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations must not import app code that may move: UTCDateTime is a plain aware DateTime in DDL.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = db.create_engine(_settings())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run migrations on a live connection; a connection given by the caller is reused."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=_settings().resolved_database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
