"""`Ctx`: what every command receives (`@click.pass_obj`): settings, client, signer, resolver.

Everything is built on first use, so `studbook --help` or a bad option costs no connection and
reads no key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lineage import dsse

from . import config
from .client import ApiError, Client
from .output import ExitCode, exit_code_for_status, fail

T = TypeVar("T")

_HEX_PREFIX = re.compile(r"(sha256:)?[0-9a-f]{12,64}")


class Ctx:
    """Lazily built settings and client shared by subcommands."""

    def __init__(self, url: str | None, token: str | None, as_json: bool = False) -> None:
        self._url = url
        self._token = token
        self.json = as_json
        self._settings: config.ClientSettings | None = None
        self._client: Client | None = None

    @property
    def settings(self) -> config.ClientSettings:
        """`STUDBOOK_*`, read on first use; a malformed value is a usage error."""
        if self._settings is None:
            from pydantic import ValidationError

            try:
                self._settings = config.load()
            except ValidationError as exc:
                problems = "; ".join(
                    f"STUDBOOK_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                    for e in exc.errors()
                )
                fail(f"bad setting: {problems}", ExitCode.USAGE)
        return self._settings

    @property
    def url(self) -> str:
        """`--url`, `STUDBOOK_URL`, or `http://STUDBOOK_HOST:STUDBOOK_PORT`."""
        return self._url or self.settings.server_url

    def token(self) -> str | None:
        """`--token`, `STUDBOOK_TOKEN`, or the first admin's token file in the data folder."""
        if self._token or self.settings.token:
            return self._token or self.settings.token
        path = self.settings.admin_token_file
        return path.read_text().strip() if path.is_file() else None

    @property
    def client(self) -> Client:
        """The API client."""
        if self._client is None:
            self._client = Client(self.url, self.token())
        return self._client

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run an API call; a refusal prints the server's message and exits with its code."""
        try:
            return fn(*args, **kw)
        except ApiError as exc:
            fail(_explain(exc, self.url), exit_code_for_status(exc.status))

    # ------------------------------------------------------------------------- signing

    def key_path(self, key_file: str | Path | None) -> Path:
        """The signing key file: `--key-file`, `STUDBOOK_KEY_FILE`, or the data folder's."""
        # click hands over a str from an option or the environment; a Path from a default.
        return Path(key_file) if key_file else self.settings.default_key_file

    def signer(self, key_file: str | Path | None) -> dsse.Signer:
        """Load the private key that signs for the caller.

        Exits with `ExitCode.USAGE` when the file is missing or not a private key.
        """
        path = self.key_path(key_file)
        if not path.is_file():
            fail(f"no signing key at {path}; create one with `studbook keygen`", ExitCode.USAGE)
        try:
            return dsse.Signer(dsse.load_private_key(path.read_bytes()))
        except Exception as exc:  # ValueError, OSError or a LineageError: all say what is wrong
            fail(f"{path} is not a usable private key: {exc}", ExitCode.USAGE)

    # ------------------------------------------------------------------------- references

    def artifact(self, ref: str) -> dict[str, Any]:
        """The artifact a reference names, or exit with a message that says what would work.

        A bare name (`acme/base`) is answered with its versions instead of a 404 about a view.
        """
        ref = ref.strip()
        if _is_bare_name(ref):
            self._bare_name(ref)
        return dict(self.call(self.client.artifact, ref))

    def check_versioned(self, ref: str) -> None:
        """Exit with the versions of a bare name (`acme/base`) before the server refuses it."""
        if _is_bare_name(ref.strip()):
            self._bare_name(ref.strip())

    def _bare_name(self, name: str) -> None:
        found = self.call(self.client.get, "/v1/artifacts", q=name, limit=500)
        versions = [a for a in found["data"] if a["name"] == name]
        if not versions:
            fail(
                f"no artifact named {name!r}; a reference is name@version, an id or a digest "
                "prefix (12+ hex characters); `studbook search` finds names",
                ExitCode.NOT_FOUND,
            )
        refs = [a["ref"] for a in versions]  # newest first
        fail(
            f"{name!r} is a name; give a version: {', '.join(refs)} "
            f"(the latest registered is {refs[0]})",
            ExitCode.USAGE,
        )


def _is_bare_name(ref: str) -> bool:
    """A reference that is neither an id, a digest (prefix) nor name@version."""
    return not (ref.isdigit() or "@" in ref or _HEX_PREFIX.fullmatch(ref))


def _explain(exc: ApiError, url: str) -> str:
    if exc.status == 0:
        return (
            f"{exc.detail}; is `studbook serve` running there? Set STUDBOOK_URL (or "
            "STUDBOOK_HOST and STUDBOOK_PORT) to the server's address"
        )
    if exc.status == 401:
        return (
            f"{exc} (set STUDBOOK_TOKEN or --token; a local server's first admin token is in "
            "studbook-data/admin-token)"
        )
    return str(exc)
