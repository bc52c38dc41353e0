"""Principals and their API tokens."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from lineage.private_files import ensure_private_dir, write_private

from ..auth import Role, hash_token, new_token
from ..db import begin_write
from ..errors import ConflictError, NotFoundError
from ..models import ApiToken, Principal


def get_principal(session: Session, name: str) -> Principal:
    """The principal called `name`.

    Raises:
        NotFoundError: there is none.
    """
    row = session.scalars(select(Principal).where(Principal.name == name)).first()  # type: ignore[arg-type]
    if row is None:
        raise NotFoundError(f"no principal named {name!r}", field="name")
    return row


def list_principals(session: Session) -> list[Principal]:
    """Every principal, by name."""
    return list(session.scalars(select(Principal).order_by(Principal.name)))  # type: ignore[arg-type]


def create_principal(session: Session, name: str, role: Role) -> tuple[Principal, str]:
    """Create a principal with a first token; commits.

    Raises:
        ConflictError: the name is taken.
    """
    begin_write(session)
    if session.scalars(select(Principal.id).where(Principal.name == name)).first() is not None:  # type: ignore[arg-type]
        raise ConflictError(f"a principal named {name!r} already exists", field="name")
    principal = Principal(name=name, role=role.value)
    session.add(principal)
    session.flush()
    token = new_token()
    session.add(ApiToken(principal_id=principal.id, token_hash=hash_token(token)))
    session.commit()
    return principal, token


def issue_token(session: Session, name: str) -> tuple[Principal, str]:
    """Issue another token for an existing principal; commits."""
    begin_write(session)
    principal = get_principal(session, name)
    token = new_token()
    session.add(ApiToken(principal_id=principal.id, token_hash=hash_token(token)))
    session.commit()
    return principal, token


def bootstrap_admin(session: Session, token_file: Path) -> str | None:
    """On first start (no principals at all) create `admin` and write its token to `token_file`.

    The file is private from the moment it exists (`lineage.private_files.write_private`: a
    fresh randomly named temporary file created 0600, renamed into place), so neither a reader
    racing the write nor a leftover temporary file from an earlier crash (`admin-token.tmp` was
    once reused with its old mode) can expose the token. A missing folder is created 0700.
    Returns the token when one was created, else None."""
    begin_write(session)
    if session.scalar(select(func.count()).select_from(Principal)):
        session.rollback()
        return None
    principal = Principal(name="admin", role=Role.ADMIN.value)
    session.add(principal)
    session.flush()
    token = new_token()
    session.add(ApiToken(principal_id=principal.id, token_hash=hash_token(token)))
    if not token_file.parent.exists():
        ensure_private_dir(token_file.parent)
    write_private(token_file, (token + "\n").encode("ascii"), overwrite=True)
    session.commit()
    return token
