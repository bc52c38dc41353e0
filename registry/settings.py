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
    web_session_ttl_s: int = Field(
        default=8 * 3600, ge=60, le=30 * 86400, description="Lifetime of a browser sign-in."
    )
    log_origin: str | None = Field(
        default=None,
        description="Origin line (and key name) of the transparency log's checkpoints, fixed at "
        "the log's first start and stored with its public key; default: studbook/<random id>, "
        "so every deployment's checkpoints name their own log.",
    )
    log_key_file: Path | None = Field(
        default=None,
        description="PEM file of the log's Ed25519 checkpoint key (mode 0600, created on first "
        "start); default: <data_dir>/log-key.pem. Replicas sharing a database share this file. "
        "The database holds only the public key.",
    )
    # Ecosystem imports (registry/imports/)
    sigstore_trust_root: Path | None = Field(
        default=None,
        description="Sigstore client trust configuration (JSON) against which keyless "
        "model-signing bundles are verified offline; without it they are refused.",
    )
    # Evals (registry/evals/)
    eval_local_worker: bool = Field(
        default=True,
        description="On SQLite, `studbook serve` starts a local eval worker process.",
    )
    eval_worker_principal: str = Field(
        default="eval-worker",
        description="Principal (role registrar, created on first start) that signs what eval "
        "workers register.",
    )
    eval_worker_key_file: Path | None = Field(
        default=None,
        description="The worker's Ed25519 signing key (PEM, created with mode 0600 on first "
        "start); default: <data_dir>/eval-worker-key.pem.",
    )
    eval_runs_dir: Path | None = Field(
        default=None,
        description="Where workers write run directories; default: <data_dir>/eval-runs.",
    )
    eval_model_dir: Path | None = Field(
        default=None,
        description="Where workers find the files of registered base models, by content "
        "digest: any file directly in it, or any folder in it holding files, whose artifact "
        "digest is the model's (a folder named by the digest is tried first). Names are never "
        "made into paths; symlinks are not followed.",
    )
    eval_heartbeat_s: float = Field(default=2.0, gt=0, description="Worker heartbeat period.")
    eval_stale_after_s: float = Field(
        default=60.0, gt=0, description="A running run without a heartbeat this long has failed."
    )
    eval_reap_interval_s: float = Field(
        default=15.0, gt=0, description="How often the API and workers look for dead runs."
    )
    eval_poll_s: float = Field(default=1.0, gt=0, description="Queue poll period (SQLite).")
    eval_cancel_grace_s: float = Field(
        default=15.0, ge=0, description="How long a cancelled eval may take to stop by itself."
    )
    eval_nice: int = Field(
        default=10, ge=0, le=19, description="Niceness of eval processes, so the API stays fast."
    )
    eval_idle_priority: bool = Field(
        default=True,
        description="Run eval processes in Linux's idle scheduling class: they get the CPU time "
        "the API and ingest leave, and all of it when those are idle.",
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
    def log_key_path(self) -> Path:
        """The log's private checkpoint key file."""
        return self.log_key_file or self.data_dir / "log-key.pem"

    @property
    def eval_worker_key_path(self) -> Path:
        """The eval worker's signing key file."""
        return self.eval_worker_key_file or self.data_dir / "eval-worker-key.pem"

    @property
    def eval_runs_path(self) -> Path:
        """Where eval workers write run directories."""
        return self.eval_runs_dir or self.data_dir / "eval-runs"

    @property
    def default_key_file(self) -> Path:
        """Where `studbook keygen` writes the user's private key by default."""
        return self.key_file or self.data_dir / "signing-key.pem"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
