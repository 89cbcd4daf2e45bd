"""Run the Alembic migrations from code (the CLI, `serve`, the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread
from alembic.config import Config

from alembic import command

if TYPE_CHECKING:
    from comments.config import Settings

ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def alembic_config(settings: Settings) -> Config:
    """An Alembic config pointing at our scripts, carrying the app's settings to env.py."""
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["settings"] = settings
    return config


async def upgrade_to_head(settings: Settings) -> None:
    """Bring the database to the newest schema (env.py runs its own event loop, hence the thread)."""
    await anyio.to_thread.run_sync(command.upgrade, alembic_config(settings), "head")
