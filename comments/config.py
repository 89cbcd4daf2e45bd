"""Settings read from `COMMENTS_*` environment variables.

Built once per process and passed explicitly to `create_app`, so tests never
have to patch `os.environ` before importing the package.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATA_DIR = Path("var")


class Settings(BaseSettings):
    """Everything an operator can set; the defaults run the demo on SQLite."""

    model_config = SettingsConfigDict(env_prefix="COMMENTS_", frozen=True, extra="ignore")

    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite under data_dir.")
    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="Where the SQLite file and the secret key live.")
    secret_key: str = Field(default="", description="Signs CSRF tokens; generated into data_dir when empty.")
    base_url: str = Field(default="http://127.0.0.1:8000", description="Public URL of this service.")
    flood_seconds: int = Field(default=15, ge=0, description="Minimum seconds between two comments of one author.")
    rate_limit_per_hour: int = Field(default=60, ge=0, description="Comments one IP may post per hour; 0 = off.")
    db_pool_size: int = Field(default=10, ge=1)
    maintenance_interval: float = Field(
        default=3600, ge=0, description="Seconds between retention passes inside `serve`; 0 = off."
    )
    debug: bool = False

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file inside data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'comments.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        """True when the configured backend is SQLite."""
        return make_url(self.resolved_database_url).get_backend_name() == "sqlite"

    @property
    def secure_cookies(self) -> bool:
        """Cookies get the Secure flag when the service is served over TLS."""
        return self.base_url.startswith("https://")

    def with_secret(self) -> Settings:
        """Return settings whose secret key is set, generating and persisting one on first run.

        The key is written beside the database (mode 0600) so restarts keep
        CSRF tokens valid. Several app instances must share COMMENTS_SECRET_KEY.
        """
        if self.secret_key:
            return self
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return self.model_copy(update={"secret_key": path.read_text().strip()})
