"""Typed settings, read lazily from `STUDBOOK_*` environment variables.

Nothing is read at import time: `get_settings()` is cached and injected where needed, and tests
clear the cache to switch databases. The default needs no server: SQLite in a local folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service and client configuration."""

    model_config = SettingsConfigDict(env_prefix="STUDBOOK_", extra="ignore")

    data_dir: Path = Field(
        default=Path("studbook-data"),
        description="Where the embedded database, the admin token and local keys live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file in data_dir. "
        "PostgreSQL: postgresql+psycopg://user@host/db",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(default=1 << 20, description="Largest accepted request body.")
    log_origin: str = Field(
        default="studbook.local/log",
        description="Origin line of the transparency log's checkpoints.",
    )
    log_key_file: Path | None = Field(
        default=None,
        description="PEM file of the log's Ed25519 checkpoint key, created on first start; "
        "default: the key is kept in the database.",
    )
    # Client side
    url: str = Field(default="http://127.0.0.1:8000", description="Server the CLI talks to.")
    token: str | None = Field(default=None, description="API token for the CLI.")
    key_file: Path | None = Field(
        default=None, description="Private signing key (PEM) for the CLI."
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to `<data_dir>/studbook.db`."""
        if self.database_url:
            url = self.database_url
            # Accept the URL forms people paste from other tools.
            if url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url[len("postgres://") :]
            elif url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.data_dir / 'studbook.db').resolve()}"

    @property
    def admin_token_file(self) -> Path:
        """Where first-run admin credentials are written."""
        return self.data_dir / "admin-token"

    @property
    def default_key_file(self) -> Path:
        """Where `studbook keygen` writes the user's private key by default."""
        return self.key_file or self.data_dir / "signing-key.pem"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
