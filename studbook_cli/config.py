"""What the command line reads from the environment (`STUDBOOK_*`), lazily.

The client has its own settings, not the server's: it must not import `registry`, and it needs
only where the server is, who the caller is and which key signs. The server's URL is
`STUDBOOK_URL`, or, when that is unset, `http://STUDBOOK_HOST:STUDBOOK_PORT`, the address
`studbook serve` binds by the same variables, so one `export STUDBOOK_PORT=8001` moves both.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# A server bound to every interface is reached on the loopback one.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class ClientSettings(BaseSettings):
    """The client's view of `STUDBOOK_*`."""

    model_config = SettingsConfigDict(env_prefix="STUDBOOK_", extra="ignore")

    url: str | None = Field(default=None, description="Server URL; default from host and port.")
    host: str = Field(default="127.0.0.1", description="Server host when no URL is set.")
    port: int = Field(default=8000, ge=1, le=65535, description="Server port when no URL is set.")
    token: str | None = Field(default=None, description="API token.")
    key_file: Path | None = Field(default=None, description="Private signing key (PEM).")
    data_dir: Path = Field(
        default=Path("studbook-data"),
        description="The server's data folder, where a local CLI finds the first admin's token.",
    )

    @property
    def server_url(self) -> str:
        """`STUDBOOK_URL`, else `http://STUDBOOK_HOST:STUDBOOK_PORT`."""
        if self.url:
            return self.url
        host = _ANY_ADDRESS.get(self.host.strip(), self.host.strip())
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def admin_token_file(self) -> Path:
        """Where `studbook serve` writes the first admin's token."""
        return self.data_dir / "admin-token"

    @property
    def default_key_file(self) -> Path:
        """`STUDBOOK_KEY_FILE`, else the data folder's `signing-key.pem`."""
        return self.key_file or self.data_dir / "signing-key.pem"


def load() -> ClientSettings:
    """Read the settings now (never at import time)."""
    return ClientSettings()
